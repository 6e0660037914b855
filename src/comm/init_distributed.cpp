// Building the job's process group: rendezvous through a TCPStore hosted by rank 0, then a
// Gloo (CPU) or NCCL (GPU) backend over it.
#include <cstdlib>
#include <mutex>

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/cuda.h>

#include <deepspeed/comm.h>
#include <deepspeed/errors.h>

#include "comm/backend_factory.h"
#include "comm/error_text.h"

namespace deepspeed::comm {
namespace {

// The one piece of process-wide state (see comm.h).
struct WorldState {
  std::mutex mutex;
  std::shared_ptr<ProcessGroup> group;
};
WorldState& world_state() {
  static WorldState state;
  return state;
}

std::chrono::milliseconds default_timeout() {
  constexpr int kDefaultMinutes = 10;
  int minutes = kDefaultMinutes;
  if (const char* v = std::getenv("DEEPSPEED_TIMEOUT"); v && *v) {
    try {
      minutes = std::stoi(v);
    } catch (const std::exception&) {
      throw CommError(std::string("DEEPSPEED_TIMEOUT='") + v + "': expected a number of minutes");
    }
  }
  return std::chrono::minutes(minutes);
}

std::string choose_backend(const std::string& requested) {
  if (!requested.empty()) {
    if (requested != "gloo" && requested != "nccl") {
      throw CommError("unknown distributed backend '" + requested + "': expected gloo or nccl");
    }
    return requested;
  }
  if (const char* acc = std::getenv("DS_ACCELERATOR"); acc && std::string(acc) == "cpu") {
    return "gloo";
  }
#if defined(DS_HAVE_NCCL)
  if (torch::cuda::is_available()) return "nccl";
#endif
  return "gloo";
}

// A rank missing at the rendezvous: the usual reason a store or backend times out at start-up,
// and what the user can act on.
CommError rendezvous_timeout(const DistributedEnvironment& env, std::chrono::milliseconds timeout,
                             const std::string& cause) {
  return CommError("rank " + std::to_string(env.rank) + ": the rendezvous at " + env.master_addr + ":" +
                   std::to_string(env.master_port) + " did not complete within " + describe_duration(timeout) +
                   ": not all " + std::to_string(env.world_size) +
                   " ranks (WORLD_SIZE) joined (a rank did not start, failed before init_distributed, or uses "
                   "another MASTER_ADDR/MASTER_PORT). Set DEEPSPEED_TIMEOUT (minutes) to wait longer. [c10d: " +
                   cause + "]");
}

c10::intrusive_ptr<c10d::Store> make_store(const DistributedEnvironment& env,
                                           std::chrono::milliseconds timeout) {
  if (env.world_size == 1) return c10::make_intrusive<c10d::HashStore>();
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(env.master_port);
  opts.isServer = env.rank == 0;
  opts.numWorkers = static_cast<std::size_t>(env.world_size);
  opts.waitWorkers = true;
  opts.timeout = timeout;
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
    // A prefix keeps this group's keys apart from anything else using the same store.
    return c10::make_intrusive<c10d::PrefixStore>("deepspeed", store);
  } catch (const std::exception& e) {
    const std::string cause = error_text(e);
    // LibTorch 2.x's TCPStore server waits for every worker itself (1.13's backends did).
    if (is_timeout_text(cause)) throw rendezvous_timeout(env, timeout, cause);
    throw CommError("rank " + std::to_string(env.rank) + ": rendezvous at " + env.master_addr + ":" +
                    std::to_string(env.master_port) + " failed: " + cause);
  }
}

}  // namespace

std::shared_ptr<ProcessGroup> init_distributed(const InitOptions& options) {
  auto& state = world_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  if (state.group) return state.group;

  auto env = discover_environment();
  if (env.source != "deepspeed" && env.source != "none" && !std::getenv("MASTER_PORT")) {
    env.master_port = options.distributed_port;
  }
  auto timeout = options.timeout.value_or(default_timeout());
  auto backend_name = choose_backend(options.backend);
  torch::Device device(torch::kCPU);
  if (backend_name == "nccl") {
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  }
  auto store = make_store(env, timeout);
  compat::BackendPtr backend;
  try {
    backend = make_backend(backend_name, store, env.rank, env.world_size, env.master_addr, timeout);
  } catch (const CommError&) {
    throw;
  } catch (const std::exception& e) {
    const std::string cause = error_text(e);
    // The backend connects every pair of ranks through the store: a rank missing there is
    // the usual reason, and what the user can act on.
    if (is_timeout_text(cause)) throw rendezvous_timeout(env, timeout, cause);
    if (is_peer_gone_text(cause)) {
      throw CommError("rank " + std::to_string(env.rank) + ": creating the " + backend_name +
                      " process group failed: another rank's connection closed while the group was being "
                      "created (that rank exited or was killed; its own output says why). [c10d: " + cause + "]");
    }
    throw CommError("rank " + std::to_string(env.rank) + ": creating the " + backend_name +
                    " process group failed: " + cause);
  }
  state.group = std::make_shared<ProcessGroup>(backend, store, env, backend_name, device, timeout);
  // The group is static state: released at exit by this handler, registered after the CUDA
  // runtime started (choose_backend asked it for devices), so that it runs before the
  // runtime's own teardown, as a user's destroy_process_group() at the end of main would.
  static const bool release_at_exit = [] {
    std::atexit([] { destroy_process_group(); });
    return true;
  }();
  (void)release_at_exit;
  return state.group;
}

std::shared_ptr<ProcessGroup> world_group() {
  auto& state = world_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  return state.group;
}

void destroy_process_group() {
  auto& state = world_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  state.group.reset();
}

}  // namespace deepspeed::comm
