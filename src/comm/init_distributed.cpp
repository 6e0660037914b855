// Building the job's process group: rendezvous through a TCPStore hosted by rank 0, then a
// Gloo (CPU) or NCCL (GPU) backend over it.
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/cuda.h>

#include <deepspeed/comm.h>
#include <deepspeed/errors.h>

#include "comm/backend_factory.h"
#include "comm/deepspeed_timeout.h"
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

using Clock = std::chrono::steady_clock;

std::string rendezvous_place(const DistributedEnvironment& env) {
  std::string place = env.master_addr + ":" + std::to_string(env.master_port);
  if (!env.run_id.empty()) place += " (run " + env.run_id + ")";
  return place;
}

// A rank missing at the rendezvous: the usual reason it times out, and what the user can act on.
CommError rendezvous_timeout(const DistributedEnvironment& env, std::chrono::milliseconds timeout,
                             const std::string& what) {
  return CommError("rank " + std::to_string(env.rank) + ": the rendezvous at " + rendezvous_place(env) +
                   " did not complete within " + describe_duration(timeout) + ": not all " +
                   std::to_string(env.world_size) + " ranks (WORLD_SIZE) joined: " + what +
                   " (a rank did not start, failed before init_distributed, or uses another "
                   "MASTER_ADDR/MASTER_PORT). Set DEEPSPEED_TIMEOUT (minutes) to wait longer.");
}

// LibTorch 1.13's connect loop counts whole seconds and gives up one to two seconds before its
// timeout (a 3 s timeout fails after 2 s, a 1.5 s one at once): this much more makes it give
// up within a second after the deadline.
#if DS_TORCH_AT_LEAST(2, 0)
constexpr std::chrono::milliseconds kConnectSlack{0};
#else
constexpr std::chrono::milliseconds kConnectSlack{2000};
#endif

bool is_port_in_use_text(const std::string& text) {
  const std::string lowered = ascii_lower(text);
  return lowered.find("address already in use") != std::string::npos || lowered.find("errno: 98") != std::string::npos;
}

// Connects to rank 0's TCPStore (rank 0 starts it), until `deadline`. Only the connection is
// waited for here; the ranks of the job find each other in wait_for_every_rank, under the
// job's own prefix. c10d logs each connect that times out, so it is called once for what is
// left of the timeout, and again only should it give up before the deadline.
c10::intrusive_ptr<c10d::Store> connect_store(const DistributedEnvironment& env, Clock::time_point deadline,
                                              std::chrono::milliseconds timeout) {
  if (env.world_size == 1) return c10::make_intrusive<c10d::HashStore>();
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(env.master_port);
  opts.isServer = env.rank == 0;
  opts.numWorkers = static_cast<std::size_t>(env.world_size);
  // Not TCPStore's own wait for the workers: it counts every client of the port (a rank of
  // another job on the same port too), and LibTorch 1.13's gives up silently at the timeout,
  // leaving the backend to wait a second one.
  opts.waitWorkers = false;
  const std::string port = std::to_string(env.master_port);
  c10::intrusive_ptr<c10d::TCPStore> store;
  while (!store) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    opts.timeout = std::max(left, std::chrono::milliseconds(0)) + kConnectSlack;
    try {
      store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
    } catch (const std::exception& e) {
      const std::string cause = error_text(e);
      if (env.rank == 0 && is_port_in_use_text(cause)) {
        throw CommError("rank 0: cannot host the rendezvous store on port " + port + ": port " + port +
                        " is already in use (by another job started with the same --master_port/MASTER_PORT, or "
                        "another program); start this job on another port. [c10d: " + cause + "]");
      }
      if (!is_timeout_text(cause)) {
        throw CommError("rank " + std::to_string(env.rank) + ": rendezvous at " + rendezvous_place(env) +
                        " failed: " + cause);
      }
      const auto now = Clock::now();
      if (now >= deadline) {
        throw rendezvous_timeout(env, timeout, "rank 0's store at " + env.master_addr + ":" + port +
                                               " could not be reached");
      }
      std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(50), deadline - now));
    }
  }
  // The store's own timeout bounds the backend's store reads later: the whole timeout again.
  store->setTimeout(timeout);
  // Every key of the job, the backend's included, lives under a prefix of its own: with a
  // run id, ranks of two jobs that reach one store (two jobs on one port) never pair.
  const std::string prefix = env.run_id.empty() ? "deepspeed" : "deepspeed/" + env.run_id;
  return c10::make_intrusive<c10d::PrefixStore>(prefix, store);
}

// Every rank counts itself in, then waits, until `deadline`, for the count to reach the world
// size: the rendezvous keeps the one deadline that started with init_distributed. Polled (a
// few requests a second per rank at most) rather than a store wait that times out: LibTorch
// 1.13's TCPStore cannot be used again after one, and the count says how many ranks came.
void wait_for_every_rank(c10d::Store& store, const DistributedEnvironment& env, Clock::time_point deadline,
                         std::chrono::milliseconds timeout) {
  if (env.world_size == 1) return;
  const std::string key = "rendezvous/joined";
  try {
    int64_t joined = store.add(key, 1);
    auto pause = std::chrono::milliseconds(5);
    while (joined < env.world_size) {
      const auto now = Clock::now();
      if (now >= deadline) {
        throw rendezvous_timeout(env, timeout,
                                 "only " + std::to_string(joined) + " of them did, this one included");
      }
      std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, std::chrono::milliseconds(100));
      joined = store.add(key, 0);
    }
  } catch (const CommError&) {
    throw;
  } catch (const std::exception& e) {
    const std::string cause = error_text(e);
    if (is_peer_gone_text(cause)) {
      throw CommError("rank " + std::to_string(env.rank) + ": the rendezvous at " + rendezvous_place(env) +
                      " failed: rank 0, which hosts the store, closed its connection (it exited or was killed; "
                      "its own output says why). [c10d: " + cause + "]");
    }
    throw CommError("rank " + std::to_string(env.rank) + ": the rendezvous at " + rendezvous_place(env) +
                    " failed: " + cause);
  }
}

}  // namespace

std::shared_ptr<ProcessGroup> init_distributed(const InitOptions& options) {
  // One deadline for the whole rendezvous, from here: the store connection and the count of
  // ranks share it (the backend is then created between ranks that are all there).
  const auto started = Clock::now();
  if (options.timeout && *options.timeout <= std::chrono::milliseconds::zero()) {
    throw CommError("InitOptions::timeout is " + std::to_string(options.timeout->count()) +
                    " ms: expected more than 0");
  }
  auto& state = world_state();
  std::lock_guard<std::mutex> lock(state.mutex);
  if (state.group) return state.group;

  auto env = discover_environment();
  if (env.source != "deepspeed" && env.source != "none" && !std::getenv("MASTER_PORT")) {
    env.master_port = options.distributed_port;
  }
  const auto timeout = options.timeout ? *options.timeout : deepspeed_timeout_from_environment();
  auto backend_name = choose_backend(options.backend);
  torch::Device device(torch::kCPU);
  if (backend_name == "nccl") {
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  }
  auto store = connect_store(env, started + timeout, timeout);
  wait_for_every_rank(*store, env, started + timeout, timeout);
  compat::BackendPtr backend;
  try {
    backend = make_backend(backend_name, store, env.rank, env.world_size, env.master_addr, timeout);
  } catch (const CommError&) {
    throw;
  } catch (const std::exception& e) {
    const std::string cause = error_text(e);
    // The backend connects every pair of ranks through the store: a rank missing there is
    // the usual reason, and what the user can act on.
    if (is_timeout_text(cause)) {
      throw CommError("rank " + std::to_string(env.rank) + ": creating the " + backend_name +
                      " process group timed out after " + describe_duration(timeout) +
                      ", although every rank had joined the rendezvous: a rank stopped answering while the "
                      "ranks connected to each other (or the ranks cannot reach each other's addresses: "
                      "GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME choose the interface). [c10d: " + cause + "]");
    }
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
