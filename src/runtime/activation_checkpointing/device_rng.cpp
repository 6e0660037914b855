#include "runtime/activation_checkpointing/device_rng.h"

#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#if DS_HAVE_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace deepspeed::checkpointing::detail {
namespace {

at::Generator device_generator() {
#if DS_HAVE_CUDA
  if (torch::cuda::is_available()) {
    return at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, c10::cuda::current_device()));
  }
#endif
  return at::detail::getDefaultCPUGenerator();
}

torch::Tensor state_of(at::Generator g) {
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_state_of(at::Generator g, const torch::Tensor& state) {
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

}  // namespace

torch::Tensor device_rng_state() { return state_of(device_generator()); }

void set_device_rng_state(const torch::Tensor& state) { set_state_of(device_generator(), state); }

void device_manual_seed(uint64_t seed) {
  auto g = device_generator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_current_seed(seed);
}

RngSnapshot capture_rng() {
  return {state_of(at::detail::getDefaultCPUGenerator()), device_rng_state(), get_cuda_rng_tracker().get_states()};
}

void restore_rng(const RngSnapshot& snapshot) {
  set_state_of(at::detail::getDefaultCPUGenerator(), snapshot.cpu);
  set_device_rng_state(snapshot.device);
  get_cuda_rng_tracker().set_states(snapshot.tracker);
}

}  // namespace deepspeed::checkpointing::detail
