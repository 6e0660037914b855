// Process groups: how the ranks of a job find each other and talk.
//
// init_distributed() reads the environment the `deepspeed` launcher sets (RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT), or the one MPI launchers and SLURM set
// (OMPI_COMM_WORLD_*, PMI_*, PMIX_RANK, MV2_COMM_WORLD_*, SLURM_*), rendezvous through c10d's
// TCPStore on MASTER_ADDR:MASTER_PORT (rank 0 hosts it), and builds a c10d process group:
// NCCL when CUDA is present, Gloo otherwise. A single process with none of these variables
// is world size 1 and needs no network.
//
// Contract (as c10d's): every rank calls every collective, in the same order, with tensors of
// the same shape and dtype. A peer that dies or never arrives ends in a CommError after the
// timeout (DEEPSPEED_TIMEOUT minutes, default 10; InitOptions::timeout), never in a hang; the
// error names the collective, this rank and the world size, and says whether it timed out.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <vector>

#include <torch/types.h>

#include <deepspeed/torch_compat.h>

namespace deepspeed::comm {

// Where this process sits in the job, and how to reach rank 0.
struct DistributedEnvironment {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  int64_t local_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // Which variables it came from: "deepspeed", "openmpi", "mpich", "mvapich", "slurm", "none".
  std::string source = "none";
  // The job's identity in the rendezvous (DEEPSPEED_RUN_ID, which the deepspeed launcher sets):
  // ranks with different ids never pair, even on one MASTER_PORT. Empty when not set.
  std::string run_id;
};

// Pure function of the variables given (testable without touching the process).
// Throws CommError naming the variable when one is malformed or inconsistent.
DistributedEnvironment discover_environment(const std::map<std::string, std::string>& env,
                                            int default_port = 29500);
// The same, from this process's environment.
DistributedEnvironment discover_environment();

enum class ReduceOp { Sum, Max, Min, Product };

class CommsLogger;  // <deepspeed/comms_logger.h>

struct InitOptions {
  std::string backend;  // "" = auto (nccl with CUDA, else gloo), "gloo", "nccl"
  // Unset: DEEPSPEED_TIMEOUT minutes from the environment, else 10 minutes.
  std::optional<std::chrono::milliseconds> timeout;
  int distributed_port = 29500;  // used when MPI/SLURM discovery gives no MASTER_PORT
};

// The ranks of one job and the collectives between them. Tensors live on device().
class ProcessGroup {
 public:
  // `env.rank` and `env.world_size` are this process's rank in the group and the group's size;
  // `ranks` lists the job-wide rank of each member in group-rank order (empty: the group is
  // the whole job, ranks 0..world_size-1).
  ProcessGroup(compat::BackendPtr backend, c10::intrusive_ptr<c10d::Store> store,
               DistributedEnvironment env, std::string backend_name, torch::Device device,
               std::chrono::milliseconds timeout = std::chrono::minutes(10), std::vector<int64_t> ranks = {});
  // Shuts the backend down (NCCL: finalizes its communicators), or aborts it after a
  // collective failed, so that nothing is left for the CUDA runtime's own exit.
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // This process's rank in the group, and the group's size.
  int64_t rank() const { return env_.rank; }
  int64_t size() const { return env_.world_size; }
  // The job-wide rank of each member, in group-rank order; and this process's.
  const std::vector<int64_t>& ranks() const { return ranks_; }
  int64_t global_rank() const { return ranks_[static_cast<std::size_t>(env_.rank)]; }

  // A group of some of this group's members (DeepSpeed's dist.new_group): `members` are ranks
  // in this group, given in the new group's rank order. Only members call it; they must call
  // it with the same list, and ask for groups of the same list in the same order (each
  // request makes a new group, with its own connections). A group of one needs no network.
  std::shared_ptr<ProcessGroup> new_group(const std::vector<int64_t>& members) const;
  int64_t local_rank() const { return env_.local_rank; }
  const DistributedEnvironment& environment() const { return env_; }
  const std::string& backend_name() const { return backend_name_; }
  // The device collectives run on: cuda:LOCAL_RANK with NCCL, cpu with Gloo.
  torch::Device device() const { return device_; }
  // How long a collective waits for its peers before it fails.
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Starts an all-reduce in place; wait() on the result before reading the tensor.
  // `where` (every collective takes one) names the caller in comms_logger's debug mode.
  compat::WorkPtr all_reduce_async(torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum,
                                   std::source_location where = std::source_location::current());
  void all_reduce(torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum,
                  std::source_location where = std::source_location::current());
  void broadcast(torch::Tensor& tensor, int64_t root = 0,
                 std::source_location where = std::source_location::current());
  // Waits for work an *_async call started. A peer that died or stopped answering becomes a
  // CommError naming `collective` (the name of the call that started it) and this rank.
  void wait(const compat::WorkPtr& work, const char* collective) const;
  // output[i] receives rank i's input; every output has input's shape.
  void all_gather(std::vector<torch::Tensor>& output, const torch::Tensor& input,
                  std::source_location where = std::source_location::current());
  void barrier(std::source_location where = std::source_location::current());
  // Point to point (DeepSpeed's pipeline p2p): blocking send of a contiguous tensor to group
  // rank `dst`, and receive into `tensor` (its shape and dtype must match what is sent) from
  // group rank `src`. A peer that died or went silent past timeout() is a CommError.
  void send(const torch::Tensor& tensor, int64_t dst, std::source_location where = std::source_location::current());
  void recv(torch::Tensor& tensor, int64_t src, std::source_location where = std::source_location::current());
  // Equal splits along dim 0: split i of `input` goes to rank i, and split j of `output`
  // comes from rank j (torch.distributed.all_to_all_single without split sizes). Both
  // contiguous, of the same shape and dtype, dim 0 a multiple of size(); bf16 also on Gloo
  // (moved bit for bit).
  void all_to_all_single(torch::Tensor& output, const torch::Tensor& input,
                         std::source_location where = std::source_location::current());

  // Flat, in-place collectives for partitioned buffers (ZeRO). `flat` holds size() equal
  // slices; slice r belongs to rank r. Wait on the result before reading `flat`.
  // reduce_scatter: afterwards this rank's slice holds the sum over ranks of that slice (the
  // other slices are left unspecified). NCCL reduce-scatters in place; Gloo has no
  // reduce-scatter, so there it is an all-reduce of the whole buffer: the same result,
  // twice the traffic (2(N-1)/N of the buffer per rank instead of (N-1)/N).
  compat::WorkPtr reduce_scatter_async(torch::Tensor& flat,
                                       std::source_location where = std::source_location::current());
  // all_gather: afterwards every slice r holds what rank r had in its slice.
  compat::WorkPtr all_gather_async(torch::Tensor& flat,
                                   std::source_location where = std::source_location::current());
  // Whether collectives take tensors of this dtype. Gloo in LibTorch 1.13 has no bfloat16:
  // callers then communicate in fp32 (broadcast and all_reduce do so themselves).
  bool supports(torch::ScalarType dtype) const { return !(backend_name_ == "gloo" && dtype == torch::kBFloat16); }
  // True where reduce_scatter_async is a real reduce-scatter (not the all-reduce fallback).
  bool has_native_reduce_scatter() const { return backend_name_ == "nccl"; }

  // The communication logger ("comms_logger"), or none (the default). While one is set, each
  // collective it profiles is waited for and timed as soon as it starts (comms_logger.h).
  void set_comms_logger(std::shared_ptr<CommsLogger> logger) { comms_logger_ = std::move(logger); }
  CommsLogger* comms_logger() const { return comms_logger_.get(); }
  const std::shared_ptr<CommsLogger>& shared_comms_logger() const { return comms_logger_; }

  // The underlying c10d object, for what this class does not wrap.
  const compat::BackendPtr& backend() const { return backend_; }

 private:
  compat::BackendPtr backend_;
  c10::intrusive_ptr<c10d::Store> store_;
  DistributedEnvironment env_;
  std::string backend_name_;
  torch::Device device_;
  std::shared_ptr<CommsLogger> comms_logger_;
  std::chrono::milliseconds timeout_;
  std::vector<int64_t> ranks_;
  // How many groups of each member list new_group made: the store prefix of the next one.
  mutable std::map<std::vector<int64_t>, int> groups_made_;
  // Set when a collective failed (a peer died, a timeout): the backend is then aborted, not
  // shut down, at destruction (a graceful shutdown may wait for that peer).
  mutable std::atomic<bool> failed_{false};
  friend void note_failure(const ProcessGroup& group) noexcept;
};

// Creates the job's process group, once: later calls return the same group. The group is
// the only process-wide state of deepspeed-cpp (as in DeepSpeed and torch.distributed).
std::shared_ptr<ProcessGroup> init_distributed(const InitOptions& options = {});
// The group init_distributed made, or nullptr before it was called.
std::shared_ptr<ProcessGroup> world_group();
// Forgets the group (its ranks must all do so); a later init_distributed makes a new one.
void destroy_process_group();

}  // namespace deepspeed::comm
