// Reduces gradients across ranks while backward runs (the engine's data-parallel core, and
// ZeRO's gradient partitioning).
//
// The buckets come from a BucketPlan. A hook after each parameter's gradient accumulation
// marks it ready; when every parameter of a bucket is ready the bucket is flattened and its
// collective starts, so communication overlaps the rest of backward. Buckets are launched
// strictly in plan order on every rank, whatever order the hooks fire in, because collectives
// must be issued in the same order everywhere. finalize() launches what is left (parameters
// that got no gradient contribute zeros, so every rank reduces the same sizes) and waits.
//
// Two modes:
// - AllReduce (stage 0): every rank gets the whole averaged bucket, written back into .grad.
// - ReduceScatter (ZeRO): each rank gets only its slice of each bucket, handed to a sink in
//   plan order; .grad may be released as soon as it is copied (stage 2), and at most
//   max_in_flight buckets hold buffers at once, which bounds the memory of gradients.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <torch/types.h>

#include <deepspeed/comm.h>

#include "partitioning/bucket_plan.h"

namespace torch::autograd {
struct Node;
}  // namespace torch::autograd

namespace deepspeed {

class GradientReducer {
 public:
  enum class Mode { AllReduce, ReduceScatter };
  struct Options {
    bool average = true;             // gradient_allreduce_op "mean" (else "sum")
    bool prescale = false;           // prescale_gradients
    double predivide_factor = 1.0;   // gradient_predivide_factor
    // What "average" divides the sum by; 0: the group's size. Experts' gradients are summed
    // over their expert-data-parallel group and divided by the data-parallel size.
    double divisor = 0.0;
    torch::ScalarType comm_dtype = torch::kFloat32;
    Mode mode = Mode::AllReduce;
    bool release_gradients = false;  // reset .grad once copied into its bucket
    // Buckets launched but not yet delivered, at most; -1: no bound, and buffers are kept
    // between backwards. 0 waits for each bucket as soon as it is launched.
    int64_t max_in_flight = -1;
    // ReduceScatter mode: replaces the group's reduce-scatter (ZeRO++'s quantized reduction):
    // called with the flat bucket, it must leave in this rank's slice the sum over ranks of
    // that slice, before it returns.
    std::function<void(torch::Tensor& flat)> reduce_scatter;
  };
  // ReduceScatter mode: receives, in plan order, bucket index and this rank's averaged slice
  // of it (comm dtype, valid during the call only).
  using SliceSink = std::function<void(int64_t bucket, const torch::Tensor& slice)>;

  GradientReducer(std::vector<torch::Tensor> parameters, std::shared_ptr<comm::ProcessGroup> group,
                  Options options, BucketPlan plan, SliceSink sink = {});
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before a backward: whether its gradients are to be reduced.
  void prepare(bool reduce);
  // After that backward: completes the reduction (a no-op if prepare(false)).
  void finalize();

  const BucketPlan& plan() const { return plan_; }
  int64_t num_buckets() const { return static_cast<int64_t>(plan_.buckets.size()); }
  // Seconds finalize() spent waiting for communication in the last reduction.
  double last_wait_seconds() const { return last_wait_seconds_; }
  // Bytes of bucket buffers currently allocated.
  int64_t buffer_bytes() const;

 private:
  double divisor() const { return options_.divisor > 0 ? options_.divisor : static_cast<double>(group_->size()); }
  struct BucketState {
    torch::Tensor buffer;            // flat, comm dtype, on the group's device
    int64_t pending = 0;             // entries not yet ready in this backward
    compat::WorkPtr work;
  };

  void on_gradient_ready(int64_t param);
  void launch_ready_buckets();       // caller holds mutex_
  void launch(int64_t bucket);
  void complete_oldest();            // waits for and delivers the oldest bucket in flight
  void register_hooks();

  std::vector<torch::Tensor> parameters_;
  std::shared_ptr<comm::ProcessGroup> group_;
  Options options_;
  BucketPlan plan_;
  SliceSink sink_;
  std::vector<BucketState> state_;
  std::vector<int64_t> remaining_;   // per parameter: buckets it has not yet been copied to
  std::vector<bool> ready_;
  std::deque<int64_t> in_flight_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  std::mutex mutex_;
  bool active_ = false;
  std::size_t next_bucket_ = 0;
  double last_wait_seconds_ = 0.0;
};

}  // namespace deepspeed
