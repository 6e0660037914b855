// The MPI-family backends: openmpi, mpich, impi, mvapich. mpirun starts every rank itself,
// so no node launcher runs; the job is sized from the whole hostfile, and include/exclude
// and --num_nodes/--num_gpus are refused, as DeepSpeed does.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "deepspeed/errors.h"
#include "launcher/core_binding.h"
#include "launcher/runners/multinode_runner.h"
#include "launcher/shell_quote.h"

namespace deepspeed::launcher {
namespace {

void refuse_filters(const MultiNodeContext& ctx, const std::string& name) {
  const auto& o = ctx.options;
  if (!o.include.empty() || !o.exclude.empty())
    throw LaunchError(fmt::format("--launcher={}: {} backend does not support worker include/exclusion", o.launcher, name));
  if (o.num_nodes != -1 || o.num_gpus != -1)
    throw LaunchError(fmt::format("--launcher={}: {} backend does not support limiting num nodes/gpus", o.launcher, name));
}

// Slots per host, which mpich/impi/mvapich need to be the same everywhere.
int uniform_slots(const MultiNodeContext& ctx, const std::string& name) {
  const int per_host = ctx.pool.front().slots;
  for (const auto& h : ctx.pool)
    if (h.slots != per_host)
      throw LaunchError(fmt::format("--launcher={}: {} requires same number of devices per node (hostfile: {} has {}, {} has {})",
                                    ctx.options.launcher, name, ctx.pool.front().host, per_host, h.host, h.slots));
  return per_host;
}

std::string host_list(const MultiNodeContext& ctx) {
  std::vector<std::string> hosts;
  for (const auto& h : ctx.pool) hosts.push_back(h.host);
  return fmt::format("{}", fmt::join(hosts, ","));
}

bool has_tcp_if_include(const std::vector<std::string>& args) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if ((args[i] == "-mca" || args[i] == "--mca") && args[i + 1] == "btl_tcp_if_include") return true;
  return false;
}

}  // namespace

// mpirun -n <slots> -hostfile <hf> --mca btl ^openib --mca btl_tcp_if_include eth0
//        <launcher_args> -x K=V ... -x MASTER_ADDR=a -x MASTER_PORT=p PROGRAM ARGS
// MASTER_ADDR/PORT are ours: DeepSpeed's ranks get them from mpi4py, ours from the env.
std::vector<Command> openmpi_commands(const MultiNodeContext& ctx) {
  refuse_filters(ctx, "openmpi");
  const auto extra = shell_split(ctx.options.launcher_args);
  Command c;
  c.argv = {"mpirun", "-n", std::to_string(total_slots(ctx.pool)), "-hostfile", ctx.options.hostfile,
            "--mca", "btl", "^openib"};
  if (!has_tcp_if_include(extra)) c.argv.insert(c.argv.end(), {"--mca", "btl_tcp_if_include", "eth0"});
  c.argv.insert(c.argv.end(), extra.begin(), extra.end());
  // -x takes the value from its own argv word: no shell, so no quoting.
  for (const auto& [k, v] : ctx.exports.items()) c.argv.insert(c.argv.end(), {"-x", k + "=" + v});
  c.argv.insert(c.argv.end(), {"-x", "MASTER_ADDR=" + ctx.master_addr, "-x", fmt::format("MASTER_PORT={}", ctx.master_port)});
  auto prog = mpi_program_argv(ctx.options);
  c.argv.insert(c.argv.end(), prog.begin(), prog.end());
  c.env.emplace_back("UCX_TLS", "tcp");
  return {c};
}

// mpirun -n T -ppn P <launcher_args> -genv K=V ... -genv MASTER_ADDR a -genv MASTER_PORT p
//        -genv WORLD_SIZE T -genv LOCAL_SIZE P -hosts h1,h2 deepspeed --mpi_helper=mpich PROGRAM ARGS
std::vector<Command> mpich_commands(const MultiNodeContext& ctx) {
  refuse_filters(ctx, "MPICH");
  const int per_host = uniform_slots(ctx, "MPICH");
  const int total = total_slots(ctx.pool);
  Command c;
  c.argv = {"mpirun", "-n", std::to_string(total), "-ppn", std::to_string(per_host)};
  for (auto& a : shell_split(ctx.options.launcher_args)) c.argv.push_back(a);
  for (const auto& [k, v] : ctx.exports.items()) c.argv.insert(c.argv.end(), {"-genv", k + "=" + v});
  c.argv.insert(c.argv.end(), {"-genv", "MASTER_ADDR", ctx.master_addr, "-genv", "MASTER_PORT",
                               std::to_string(ctx.master_port), "-genv", "WORLD_SIZE", std::to_string(total),
                               "-genv", "LOCAL_SIZE", std::to_string(per_host), "-hosts", host_list(ctx),
                               ctx.self_exe, "--mpi_helper=mpich"});
  auto prog = mpi_program_argv(ctx.options);
  c.argv.insert(c.argv.end(), prog.begin(), prog.end());
  return {c};
}

// mpirun -ppn P <launcher_args> -genv K V ... [-genv OMP_NUM_THREADS c] -genv MASTER_ADDR a ...
//        -genv I_MPI_PIN 0 -hosts h1,h2
//        -n 1 -env RANK 0 -env LOCAL_RANK 0 [numactl ...] PROGRAM ARGS : -n 1 -env RANK 1 ...
// With --bind_cores_to_rank each rank's numactl is computed here, from this machine's cores
// and NUMA layout, as DeepSpeed does (the hosts are expected to be alike); I_MPI_PIN 0 keeps
// Intel MPI's own pinning out of the way.
std::vector<Command> impi_commands(const MultiNodeContext& ctx) {
  refuse_filters(ctx, "IMPI");
  const int per_host = uniform_slots(ctx, "Intel MPI");
  const int total = total_slots(ctx.pool);
  const auto& o = ctx.options;
  std::vector<std::vector<int>> cores;  // per local rank
  if (o.bind_cores_to_rank) {
    if (ctx.environ.count("KMP_AFFINITY"))
      throw LaunchError("--bind_cores_to_rank: KMP_AFFINITY is set and would override the binding; unset it");
    cores = assign_cores(o.bind_core_list.empty() ? ctx.default_cores : parse_core_list(o.bind_core_list), per_host);
  }
  Command c;
  c.argv = {"mpirun", "-ppn", std::to_string(per_host)};
  for (auto& a : shell_split(ctx.options.launcher_args)) c.argv.push_back(a);
  for (const auto& [k, v] : ctx.exports.items()) c.argv.insert(c.argv.end(), {"-genv", k, v});
  if (!cores.empty()) c.argv.insert(c.argv.end(), {"-genv", "OMP_NUM_THREADS", std::to_string(cores[0].size())});
  c.argv.insert(c.argv.end(), {"-genv", "MASTER_ADDR", ctx.master_addr, "-genv", "MASTER_PORT",
                               std::to_string(ctx.master_port), "-genv", "WORLD_SIZE", std::to_string(total),
                               "-genv", "LOCAL_SIZE", std::to_string(per_host), "-genv", "I_MPI_PIN", "0",
                               "-hosts", host_list(ctx)});
  const auto prog = mpi_program_argv(ctx.options);
  for (int r = 0; r < total; ++r) {
    if (r > 0) c.argv.push_back(":");
    const int local_rank = r % per_host;
    c.argv.insert(c.argv.end(), {"-n", "1", "-env", "RANK", std::to_string(r), "-env", "LOCAL_RANK",
                                 std::to_string(local_rank)});
    if (!cores.empty()) {
      const auto numactl = numactl_command(ctx.numa, cores[static_cast<size_t>(local_rank)]);
      c.argv.insert(c.argv.end(), numactl.begin(), numactl.end());
    }
    c.argv.insert(c.argv.end(), prog.begin(), prog.end());
  }
  return {c};
}

EnvList mvapich_default_exports(const Environ& environ) {
  auto acc = environ.find("DS_ACCELERATOR");
  const bool cuda = acc == environ.end() || acc->second.empty() || acc->second == "cuda";
  EnvList out;
  out.set("MV2_SMP_USE_CMA", "0");           // the CMA kernel module is missing on Ubuntu
  out.set("MV2_DEBUG_SHOW_BACKTRACE", "1");  // a failing rank prints a backtrace
  if (cuda) out.set("MV2_USE_CUDA", "1");    // CUDA-aware communication
  out.set("MV2_SUPPORT_DL", "1");            // deep-learning framework support
  out.set("MV2_ENABLE_AFFINITY", "0");       // needed for MPI_THREAD_MULTIPLE
  out.set("MV2_INTER_ALLGATHER_TUNING", "5");  // allgather tuning
  out.set("MV2_CUDA_USE_NAIVE", "0");
  return out;
}

std::string mvapich_hostfile_content(const MultiNodeContext& ctx) {
  std::string out;
  for (const auto& h : ctx.pool) out += h.host + "\n";
  return out;
}

// mpirun -np T -ppn P --hostfile /tmp/deepspeed_mvapich_hostfile <launcher_args> -env K=V ... PROGRAM ARGS
// The host list (one host per line, the whole hostfile) is written by execute_plan from
// mvapich_hostfile_content(). The MV2_* defaults come first; the user's MV2* variables and
// .deepspeed_env lines override them, as DeepSpeed's exports dict does.
std::vector<Command> mvapich_commands(const MultiNodeContext& ctx) {
  refuse_filters(ctx, "mvapich");
  const int per_host = uniform_slots(ctx, "MVAPICH");
  const int total = total_slots(ctx.pool);
  EnvList exports = mvapich_default_exports(ctx.environ);
  for (const auto& [k, v] : ctx.exports.items()) exports.set(k, v);
  exports.set("MASTER_ADDR", ctx.master_addr);
  exports.set("MASTER_PORT", std::to_string(ctx.master_port));
  Command c;
  c.argv = {"mpirun", "-np", std::to_string(total), "-ppn", std::to_string(per_host), "--hostfile", kMvapichHostfile};
  for (auto& a : shell_split(ctx.options.launcher_args)) c.argv.push_back(a);
  for (const auto& [k, v] : exports.items()) c.argv.insert(c.argv.end(), {"-env", k + "=" + v});
  auto prog = mpi_program_argv(ctx.options);
  c.argv.insert(c.argv.end(), prog.begin(), prog.end());
  return {c};
}

}  // namespace deepspeed::launcher
