#include <fmt/format.h>
#include <fmt/ranges.h>

#include "launcher/runners/multinode_runner.h"
#include "launcher/shell_quote.h"

namespace deepspeed::launcher {

// pdsh -S -f 1024 -w h1,h2 <launcher_args> "export K=V; ...; cd <cwd>; deepspeed --launch ... --node_rank=%n ..."
// pdsh substitutes each host's index in the -w list for %n.
std::vector<Command> pdsh_commands(const MultiNodeContext& ctx) {
  const auto& o = ctx.options;
  std::vector<std::string> hosts;
  for (const auto& h : ctx.active) hosts.push_back(h.host);
  Command c;
  c.argv = {"pdsh", "-S", "-f", "1024", "-w", fmt::format("{}", fmt::join(hosts, ","))};
  for (auto& a : shell_split(o.launcher_args)) c.argv.push_back(a);
  auto launch = node_launcher_argv(o, ctx.self_exe, ctx.world_info, "%n", ctx.master_addr,
                                   ctx.master_port, ctx.runner_pid, false);
  c.argv.push_back(remote_shell_prefix(ctx) + shell_join(launch));
  c.env.emplace_back("PDSH_RCMD_TYPE", "ssh");
  if (o.ssh_port > 0) c.env.emplace_back("PDSH_SSH_ARGS_APPEND", fmt::format("-p {}", o.ssh_port));
  return {c};
}

}  // namespace deepspeed::launcher
