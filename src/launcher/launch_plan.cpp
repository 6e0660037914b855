#include "launcher/launch_plan.h"

#include <fmt/format.h>

#include "deepspeed/errors.h"
#include "launcher/flag_checks.h"
#include "launcher/hostfile.h"
#include "launcher/local_launcher.h"
#include "launcher/pod_env.h"
#include "launcher/resource_filter.h"
#include "launcher/runners/multinode_runner.h"
#include "launcher/shell_quote.h"
#include "launcher/world_info.h"

namespace deepspeed::launcher {

const std::vector<std::string>& known_launchers() {
  static const std::vector<std::string> kLaunchers = {"pdsh", "ssh", "openmpi", "mpich", "impi", "mvapich", "slurm"};
  return kLaunchers;
}

LaunchPlan plan_launch(const RunnerOptions& o, const SystemProbe& system) {
  LaunchPlan plan;
  const Environ env = system.environ();
  const std::string cwd = system.cwd();

  // 1. The hostfile.
  std::optional<HostPool> pool = read_hostfile(o.hostfile);
  if (!pool) {
    std::string note = fmt::format(
        "Unable to find hostfile{}, will proceed with training with local resources only.",
        o.hostfile_given ? " " + o.hostfile : "");
    if (o.hostfile_given) plan.notes.push_back(note);
  }

  // 2. No hostfile: CUDA_VISIBLE_DEVICES, when set, becomes the include (DeepSpeed 0.19).
  std::string include = o.include;
  const std::string& exclude = o.exclude;
  std::vector<std::string> unset_env;
  if (!pool) {
    auto cvd = env.find("CUDA_VISIBLE_DEVICES");
    if (cvd != env.end() && !cvd->second.empty()) {
      if (!o.include.empty() || !o.exclude.empty() || o.num_nodes > 1 || o.num_gpus > 0) {
        plan.notes.push_back(fmt::format(
            "Detected VISIBLE_DEVICES={} but ignoring it because one or several of "
            "--include/--exclude/--num_gpus/--num_nodes cl args were used. If you want to use "
            "CUDA_VISIBLE_DEVICES don't pass any of these arguments to deepspeed.", cvd->second));
      } else {
        include = "localhost:" + cvd->second;
        plan.notes.push_back(fmt::format("Detected VISIBLE_DEVICES={}: setting --include={}", cvd->second, include));
      }
      unset_env.push_back("CUDA_VISIBLE_DEVICES");
    }
  }

  // 3. Conflicting selections (the user's own include/exclude only).
  if ((o.num_nodes >= 0 || o.num_gpus >= 0) && (!o.include.empty() || !o.exclude.empty()))
    throw LaunchError("Cannot specify num_nodes/gpus with include/exclude (--num_nodes/--num_gpus "
                      "with --include/--exclude)");
  if (!o.include.empty() && !o.exclude.empty())
    throw LaunchError("--include and --exclude are mutually exclusive");

  // 4. No hostfile: this machine.
  std::string master_addr = o.master_addr;
  if (!pool) {
    int gpus = system.local_gpu_count();
    // A machine without GPUs gets one slot (or --num_gpus of them): CPU ranks (ours;
    // DeepSpeed stops with "Unable to proceed, no GPU resources available").
    if (gpus <= 0) gpus = 1;
    pool = HostPool{{"localhost", gpus}};
    if (master_addr.empty()) master_addr = "127.0.0.1";
    if (o.num_nodes > 1)
      throw LaunchError(fmt::format("--num_nodes={}: Num nodes is >1 but no extra nodes available via hostfile "
                                    "(no hostfile at {})", o.num_nodes, o.hostfile));
  }

  // 5 and 8. Filters, then --num_nodes/--num_gpus.
  Resources active = parse_inclusion_exclusion(*pool, include, exclude);
  active = limit_resources(std::move(active), o.num_nodes, o.num_gpus);
  if (active.empty() || total_slots(active) == 0)
    throw LaunchError("no slots left to run on after --include/--exclude/--num_nodes/--num_gpus");

  plan.resources = active;
  plan.world_info = encode_world_info(active);
  plan.master_port = o.master_port;
  plan.multi_node = (o.force_multi || active.size() > 1) && !o.no_ssh;
  for (auto& note : check_flag_use(o, plan.multi_node)) plan.notes.push_back(std::move(note));

  // Environment for the ranks: exported prefixes (multi-node only; locally they are
  // inherited anyway) and .deepspeed_env (every run, also single-node: ours).
  EnvList env_file = read_deepspeed_env_files(env, system.home(), cwd);
  if (const std::string* id = env_file.find(kRunIdVariable)) {
    plan.run_id = *id;
  } else if (auto it = env.find(kRunIdVariable); it != env.end() && !it->second.empty()) {
    plan.run_id = it->second;
  } else if (!o.no_ssh) {
    plan.run_id = system.new_run_id();
  }
  if (!plan.run_id.empty()) env_file.set(kRunIdVariable, plan.run_id);

  if (!plan.multi_node) {
    plan.launcher = "local";
    int node_rank = 0;
    if (o.no_ssh) {
      if (o.node_rank < 0 || static_cast<size_t>(o.node_rank) >= active.size())
        throw LaunchError(fmt::format("--no_ssh needs --node_rank in [0, {}), got {}", active.size(), o.node_rank));
      node_rank = o.node_rank;
      if (master_addr.empty())
        throw LaunchError("--no_ssh needs --master_addr (the address of node 0)");
    }
    if (master_addr.empty()) master_addr = "127.0.0.1";
    plan.master_addr = master_addr;
    plan.exports = env_file;
    Command c;
    c.argv = node_launcher_argv(o, system.self_exe(), plan.world_info, std::to_string(node_rank),
                                master_addr, o.master_port, system.runner_pid(), false);
    c.env = env_file.items();
    c.unset_env = unset_env;
    plan.commands.push_back(std::move(c));
    plan.ranks = node_rank_environments(active, node_rank, master_addr, o.master_port);
    return plan;
  }

  // Multi-node.
  plan.launcher = o.launcher;
  const auto ssh_args = o.launcher == "ssh" ? shell_split(o.launcher_args) : std::vector<std::string>{};
  if (!o.dry_run) check_backend_installed(o.launcher, system);
  const std::string& first_host = active.front().host;
  const bool ssh_based = o.launcher == "pdsh" || o.launcher == "ssh";
  if (ssh_based && !o.no_ssh_check && !o.dry_run && !system.ssh_reachable(first_host, o.ssh_port, ssh_args)) {
    throw LaunchError(fmt::format(
        "Using hostfile at {} but host={} was not reachable via ssh. If you are running with a single "
        "node please remove {} or setup passwordless ssh.", o.hostfile, first_host, o.hostfile));
  }
  if (master_addr.empty() && (first_host == "localhost" || first_host.rfind("127.", 0) == 0)) {
    master_addr = "127.0.0.1";  // no need to ask ssh where this machine is
  }
  if (master_addr.empty()) {
    if (o.dry_run) {
      master_addr = first_host;
      plan.notes.push_back(fmt::format("--dry_run: master address shown as {}; a real run asks `ssh {} hostname -I`",
                                       first_host, first_host));
    } else {
      master_addr = system.ssh_first_address(first_host, o.ssh_port, ssh_args);
      if (master_addr.empty())
        throw LaunchError(fmt::format("could not find the master address with `ssh {} hostname -I`; "
                                      "give --master_addr", first_host));
    }
  }
  plan.master_addr = master_addr;

  EnvList exports = exported_environment(env, cwd);
  for (const auto& [k, v] : env_file.items()) exports.set(k, v);
  plan.exports = exports;

  MultiNodeContext ctx{o, *pool, active, exports, plan.world_info, master_addr, o.master_port,
                       cwd, system.self_exe(), system.runner_pid(), env, {}, {}};
  if (o.launcher == "impi" && o.bind_cores_to_rank) {
    // DeepSpeed computes impi's per-rank numactl on the runner machine.
    ctx.numa = system.numa_topology();
    if (o.bind_core_list.empty()) ctx.default_cores = system.default_cores();
  }
  plan.commands = multinode_commands(ctx);
  for (auto& c : plan.commands) c.unset_env = unset_env;
  if (o.launcher == "pdsh") {
    plan.cleanup = pdsh_kill_command(ctx);
    plan.cleanup->unset_env = unset_env;
  }
  if (o.launcher == "mvapich") plan.files.push_back({kMvapichHostfile, mvapich_hostfile_content(ctx)});
  if (ssh_based) {
    plan.ranks = all_rank_environments(active, master_addr, o.master_port);
    if (o.bind_cores_to_rank && o.dry_run)
      plan.notes.push_back("each node binds its ranks with its own cores and NUMA layout; the ranks above show this machine's");
  }
  return plan;
}

namespace {

nlohmann::ordered_json command_json(const Command& c) {
  nlohmann::ordered_json cj;
  if (!c.host.empty()) cj["host"] = c.host;
  cj["argv"] = c.argv;
  cj["shell"] = shell_join(c.argv);
  nlohmann::ordered_json ej = nlohmann::ordered_json::object();
  for (const auto& [k, v] : c.env) ej[k] = v;
  cj["env"] = ej;
  if (!c.unset_env.empty()) cj["unset_env"] = c.unset_env;
  return cj;
}

}  // namespace

nlohmann::ordered_json plan_to_json(const LaunchPlan& plan, const RunnerOptions& o, const SystemProbe& system) {
  nlohmann::ordered_json j;
  j["launcher"] = plan.launcher;
  j["multi_node"] = plan.multi_node;
  nlohmann::ordered_json res = nlohmann::ordered_json::object();
  for (const auto& h : plan.resources) res[h.host] = h.slots;
  j["resources"] = res;
  j["world_size"] = total_slots(plan.resources);
  j["world_info"] = plan.world_info;
  j["master_addr"] = plan.master_addr;
  j["master_port"] = plan.master_port;
  j["run_id"] = plan.run_id;
  nlohmann::ordered_json exports = nlohmann::ordered_json::object();
  for (const auto& [k, v] : plan.exports.items()) exports[k] = v;
  j["exports"] = exports;

  // Each rank's contract environment and the command its node launcher will run.
  nlohmann::ordered_json ranks = nlohmann::ordered_json::array();
  if (!plan.ranks.empty()) {
    LocalLaunchOptions lo;
    lo.world = plan.resources;
    lo.master_addr = plan.master_addr;
    lo.master_port = plan.master_port;
    lo.program = o.program;
    lo.program_args = o.program_args;
    lo.module = o.module;
    lo.no_python = o.no_python;
    lo.no_local_rank = o.no_local_rank;
    lo.each_rank_log_dir = o.enable_each_rank_log;
    lo.bind_cores_to_rank = o.bind_cores_to_rank;
    lo.bind_core_list = o.bind_core_list;
    lo.node_env = read_pod_env();
    CoreBinder binder;
    binder.numactl = o.bind_cores_to_rank && system.have_program("numactl");
    if (binder.numactl) binder.numa = system.numa_topology();
    int last_node = -1;
    std::vector<ChildSpec> children;
    for (const auto& r : plan.ranks) {
      if (r.node_rank != last_node) {
        lo.node_rank = r.node_rank;
        children = build_rank_children(lo, binder, "<YYYYmmddHHMMSS>");
        last_node = r.node_rank;
      }
      const auto& child = children.at(static_cast<size_t>(r.local_rank));
      nlohmann::ordered_json rj;
      rj["rank"] = r.rank;
      rj["local_rank"] = r.local_rank;
      rj["host"] = r.host;
      rj["node_rank"] = r.node_rank;
      nlohmann::ordered_json ej = nlohmann::ordered_json::object();
      for (const auto& [k, v] : child.env) ej[k] = v;
      rj["env"] = ej;
      rj["command"] = child.argv;
      if (!child.cpu_affinity.empty()) rj["cpu_affinity"] = child.cpu_affinity;
      if (!child.log_file.empty()) rj["log_file"] = child.log_file;
      ranks.push_back(rj);
    }
  }
  j["ranks"] = ranks;
  nlohmann::ordered_json cmds = nlohmann::ordered_json::array();
  for (const auto& c : plan.commands) cmds.push_back(command_json(c));
  j["commands"] = cmds;
  if (plan.cleanup) j["cleanup"] = command_json(*plan.cleanup);
  if (!plan.files.empty()) {
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    for (const auto& f : plan.files) files.push_back({{"path", f.path}, {"content", f.content}});
    j["files"] = files;
  }
  j["notes"] = plan.notes;
  return j;
}

}  // namespace deepspeed::launcher
