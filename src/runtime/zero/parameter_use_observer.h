// Tells ZeRO stage 3 that an operation is about to read a partitioned parameter.
//
// LibTorch modules have no forward hooks, so deepspeed-cpp does not wrap modules: it watches
// operations. A thread-local at::RecordFunction callback sees the inputs of every ATen
// operation before the kernel runs, in forward and in backward (autograd carries the
// thread's callbacks to the threads that run backward). An input whose storage belongs to a
// managed parameter -- the parameter itself, or a view of it such as the weight.t() that
// linear saves for backward -- is reported to the sink, which gathers the parameter before
// the operation reads it. All the parameters one operation reads are reported together, so
// that gathering one of them cannot release another. A user's ordinary module works unchanged, as long as its
// parameters are read through ATen operations (not through data_ptr() in user code).
//
// The sink runs with the callback switched off on this thread, so the operations it runs
// itself (copies, collectives) are not observed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <torch/types.h>

namespace deepspeed {

class ParameterUseObserver {
 public:
  using Sink = std::function<void(const std::vector<int64_t>& parameters)>;

  // Watches `parameters` (by their storages) on the calling thread, from now until destroyed.
  ParameterUseObserver(const std::vector<torch::Tensor>& parameters, Sink sink);
  ~ParameterUseObserver();
  ParameterUseObserver(const ParameterUseObserver&) = delete;
  ParameterUseObserver& operator=(const ParameterUseObserver&) = delete;

  // Called by the callback (public for it only).
  void report(const std::vector<int64_t>& parameters) { sink_(parameters); }

 private:
  std::vector<const void*> storages_;
  Sink sink_;
  uint64_t handle_ = 0;
};

}  // namespace deepspeed
