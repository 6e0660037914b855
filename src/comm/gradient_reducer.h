// Averages gradients across ranks while backward runs (the engine's data-parallel core).
//
// Parameters are grouped into buckets in reverse registration order (roughly the order in
// which backward produces their gradients). A hook after each parameter's gradient
// accumulation marks it ready; when every parameter of a bucket is ready the bucket is
// flattened and its all-reduce starts, so communication overlaps the rest of backward.
// Buckets are launched strictly in index order on every rank, whatever order the hooks fire
// in, because collectives must be issued in the same order everywhere. finalize() launches
// what is left (parameters that got no gradient reduce zeros, so every rank reduces the same
// sizes), waits, and writes the averaged gradients back into .grad.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <torch/types.h>

#include <deepspeed/comm.h>

namespace torch::autograd {
struct Node;
}

namespace deepspeed {

class GradientReducer {
 public:
  struct Options {
    int64_t bucket_elements = 25 * 1024 * 1024 / 4;
    bool average = true;             // gradient_allreduce_op "mean" (else "sum")
    bool prescale = false;           // prescale_gradients
    double predivide_factor = 1.0;   // gradient_predivide_factor
    torch::ScalarType comm_dtype = torch::kFloat32;
  };

  GradientReducer(std::vector<torch::Tensor> parameters, std::shared_ptr<comm::ProcessGroup> group,
                  Options options);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before a backward: whether its gradients are to be reduced (accumulation boundary).
  void prepare(bool reduce);
  // After that backward: completes the reduction (a no-op if prepare(false)).
  void finalize();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Seconds finalize() spent waiting for communication in the last reduction.
  double last_wait_seconds() const { return last_wait_seconds_; }

 private:
  struct Bucket {
    std::vector<int64_t> params;     // indices into parameters_
    std::vector<int64_t> offsets;    // element offset of each in buffer
    torch::Tensor buffer;            // flat, comm dtype, on the group's device
    int64_t pending = 0;             // parameters not yet ready in this backward
    compat::WorkPtr work;
  };

  void on_gradient_ready(int64_t param);
  void launch_ready_buckets();       // caller holds mutex_
  void launch(Bucket& bucket);

  std::vector<torch::Tensor> parameters_;
  std::shared_ptr<comm::ProcessGroup> group_;
  Options options_;
  std::vector<Bucket> buckets_;
  std::vector<int64_t> bucket_of_;   // parameter index -> bucket index
  std::vector<bool> ready_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  std::mutex mutex_;
  bool active_ = false;
  std::size_t next_bucket_ = 0;
  double last_wait_seconds_ = 0.0;
};

}  // namespace deepspeed
