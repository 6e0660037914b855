#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string_view>

#include "launcher/runners/multinode_runner.h"
#include "launcher/shell_quote.h"

namespace deepspeed::launcher {
namespace {

// pdsh -S -f 1024 -w h1,h2 <launcher_args>, and the environment pdsh needs: shared by the
// launch and the kill command, so the kill reaches the hosts the same way.
Command pdsh_invocation(const MultiNodeContext& ctx) {
  const auto& o = ctx.options;
  std::vector<std::string> hosts;
  for (const auto& h : ctx.active) hosts.push_back(h.host);
  Command c;
  // -S: pdsh returns the largest exit code of the hosts (DeepSpeed issue #1722).
  c.argv = {"pdsh", "-S", "-f", "1024", "-w", fmt::format("{}", fmt::join(hosts, ","))};
  for (auto& a : shell_split(o.launcher_args)) c.argv.push_back(a);
  c.env.emplace_back("PDSH_RCMD_TYPE", "ssh");
  if (o.ssh_port > 0) {
    // Appended to the user's own PDSH_SSH_ARGS_APPEND (e.g. -i key), as DeepSpeed does.
    auto it = ctx.environ.find("PDSH_SSH_ARGS_APPEND");
    const std::string user = it == ctx.environ.end() ? "" : it->second;
    c.env.emplace_back("PDSH_SSH_ARGS_APPEND", fmt::format("{}{}-p {}", user, user.empty() ? "" : " ", o.ssh_port));
  }
  return c;
}

// `text` as an extended regex matching itself literally.
std::string ere_literal(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::string_view("\\.[](){}*+?^$|").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

// pdsh -S -f 1024 -w h1,h2 <launcher_args> "export K=V; ...; cd <cwd>; deepspeed --launch ... --node_rank=%n ..."
// pdsh substitutes each host's index in the -w list for %n.
std::vector<Command> pdsh_commands(const MultiNodeContext& ctx) {
  const auto& o = ctx.options;
  Command c = pdsh_invocation(ctx);
  auto launch = node_launcher_argv(o, ctx.self_exe, ctx.world_info, "%n", ctx.master_addr,
                                   ctx.master_port, ctx.runner_pid, false);
  c.argv.push_back(remote_shell_prefix(ctx) + shell_join(launch));
  // As DeepSpeed's runner: SIGINT first (pdsh reports which hosts are still running), then
  // SIGTERM, which ends pdsh. The remote launchers outlive it: that is what the kill command
  // is for.
  c.interrupt_before_term = true;
  return {c};
}

std::string pdsh_kill_pattern(const MultiNodeContext& ctx) {
  const std::string head = fmt::format("{} --launch --world_info={} --node_rank=", ctx.self_exe, ctx.world_info);
  const std::string tail = fmt::format(" --master_addr={} --master_port={} ", ctx.master_addr, ctx.master_port);
  std::string pattern = ere_literal(head) + "[0-9]+" + ere_literal(tail);
  // Bracket the first character: the regex then does not match its own text, which is on the
  // command line of the remote shell that runs pkill (pkill spares only itself).
  if (!pattern.empty() && std::string_view("\\^]-").find(pattern[0]) == std::string_view::npos)
    pattern = "[" + pattern.substr(0, 1) + "]" + pattern.substr(1);
  return pattern;
}

// pdsh -S -f 1024 -w h1,h2 <launcher_args> "pkill -f '<pattern>'"
// pkill sends SIGTERM: each node launcher then stops its ranks (SIGTERM, SIGKILL after the
// grace), and its ranks die with it in any case (PR_SET_PDEATHSIG).
Command pdsh_kill_command(const MultiNodeContext& ctx) {
  Command c = pdsh_invocation(ctx);
  c.argv.push_back("pkill -f " + shell_quote(pdsh_kill_pattern(ctx)));
  return c;
}

}  // namespace deepspeed::launcher
