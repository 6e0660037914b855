#include <fmt/format.h>

#include "launcher/runners/multinode_runner.h"
#include "launcher/shell_quote.h"

namespace deepspeed::launcher {

// One `ssh [-p P] <launcher_args> host "<exports>; cd <cwd>; deepspeed --launch ... --node_rank=i
// --watch_stdin ..."` per host, run in parallel. The runner keeps each ssh's stdin open
// and never writes to it; the remote launcher (--watch_stdin) stops its ranks when that
// stdin ends, i.e. when the runner or its ssh goes away, so no remote rank is left behind.
std::vector<Command> ssh_commands(const MultiNodeContext& ctx) {
  const auto& o = ctx.options;
  const auto extra = shell_split(o.launcher_args);
  std::vector<Command> out;
  for (size_t i = 0; i < ctx.active.size(); ++i) {
    Command c;
    c.host = ctx.active[i].host;
    c.argv = {"ssh"};
    if (o.ssh_port > 0) c.argv.insert(c.argv.end(), {"-p", std::to_string(o.ssh_port)});
    c.argv.insert(c.argv.end(), extra.begin(), extra.end());
    c.argv.push_back(c.host);
    auto launch = node_launcher_argv(o, ctx.self_exe, ctx.world_info, std::to_string(i),
                                     ctx.master_addr, ctx.master_port, ctx.runner_pid, true);
    c.argv.push_back(remote_shell_prefix(ctx) + shell_join(launch));
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace deepspeed::launcher
