#include <fmt/format.h>
#include <fmt/ranges.h>

#include "deepspeed/errors.h"
#include "launcher/runners/multinode_runner.h"
#include "launcher/shell_quote.h"

namespace deepspeed::launcher {
namespace {

// srun selects whole nodes; a filter with slot lists cannot be expressed.
std::string hosts_of_filter(const std::string& filter, const std::string& flag) {
  std::vector<std::string> hosts;
  size_t start = 0;
  while (start <= filter.size()) {
    auto at = filter.find('@', start);
    std::string spec = filter.substr(start, at == std::string::npos ? std::string::npos : at - start);
    if (spec.find(':') != std::string::npos)
      throw LaunchError(fmt::format("{}: the slurm backend selects whole hosts; '{}' names slots", flag, spec));
    hosts.push_back(spec);
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return fmt::format("{}", fmt::join(hosts, ","));
}

}  // namespace

// srun -n T <launcher_args> [--comment C] [--nodelist=hosts] [--exclude=hosts] [--nodes N]
//      [--gpus G] --export=ALL,K=V,... PROGRAM ARGS
// DeepSpeed passes --include/--exclude through, which srun does not know; srun's own
// --nodelist/--exclude are used here. Ranks read SLURM_PROCID/SLURM_LOCALID/SLURM_NTASKS.
std::vector<Command> slurm_commands(const MultiNodeContext& ctx) {
  const auto& o = ctx.options;
  Command c;
  c.argv = {"srun", "-n", std::to_string(total_slots(ctx.active))};
  for (auto& a : shell_split(o.launcher_args)) c.argv.push_back(a);
  if (!o.comment.empty()) c.argv.insert(c.argv.end(), {"--comment", o.comment});
  if (!o.include.empty()) c.argv.push_back("--nodelist=" + hosts_of_filter(o.include, "--include"));
  if (!o.exclude.empty()) c.argv.push_back("--exclude=" + hosts_of_filter(o.exclude, "--exclude"));
  if (o.num_nodes > 0) c.argv.insert(c.argv.end(), {"--nodes", std::to_string(o.num_nodes)});
  if (o.num_gpus > 0) c.argv.insert(c.argv.end(), {"--gpus", std::to_string(o.num_gpus)});
  std::string exports = "--export=ALL";
  for (const auto& [k, v] : ctx.exports.items()) {
    if (v.find(',') != std::string::npos)
      throw LaunchError(fmt::format("slurm backend: the value of {} contains ',', which srun --export cannot carry", k));
    exports += "," + k + "=" + v;
  }
  exports += ",MASTER_ADDR=" + ctx.master_addr + fmt::format(",MASTER_PORT={}", ctx.master_port);
  c.argv.push_back(exports);
  auto prog = mpi_program_argv(o);
  c.argv.insert(c.argv.end(), prog.begin(), prog.end());
  return {c};
}

}  // namespace deepspeed::launcher
