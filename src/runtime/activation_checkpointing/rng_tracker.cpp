// Megatron's CudaRNGStatesTracker and model-parallel seeding, as DeepSpeed keeps them.
#include <algorithm>

#include <fmt/format.h>

#include <deepspeed/activation_checkpointing.h>
#include <deepspeed/errors.h>

#include "runtime/activation_checkpointing/device_rng.h"
#include "runtime/activation_checkpointing/settings.h"

namespace deepspeed::checkpointing {

void CudaRNGStatesTracker::reset() {
  states_.clear();
  seeds_.clear();
}

void CudaRNGStatesTracker::add(const std::string& name, uint64_t seed) {
  if (std::find(seeds_.begin(), seeds_.end(), seed) != seeds_.end()) {
    throw EngineError(fmt::format("seed {} already exists", seed));
  }
  if (states_.count(name)) throw EngineError(fmt::format("cuda rng state {} already exists", name));
  seeds_.push_back(seed);
  const auto original = detail::device_rng_state();
  detail::device_manual_seed(seed);
  states_[name] = detail::device_rng_state();
  detail::set_device_rng_state(original);
}

CudaRNGStatesTracker::Fork::Fork(CudaRNGStatesTracker& tracker, std::string name)
    : tracker_(tracker), name_(std::move(name)) {
  const auto it = tracker_.states_.find(name_);
  if (it == tracker_.states_.end()) throw EngineError(fmt::format("cuda rng state {} is not added", name_));
  original_ = detail::device_rng_state();
  detail::set_device_rng_state(it->second);
}

CudaRNGStatesTracker::Fork::~Fork() {
  // The named state moves on by what the region drew, so the next fork draws fresh numbers.
  tracker_.states_[name_] = detail::device_rng_state();
  detail::set_device_rng_state(original_);
}

CudaRNGStatesTracker::Fork CudaRNGStatesTracker::fork(const std::string& name) { return Fork(*this, name); }

CudaRNGStatesTracker& get_cuda_rng_tracker() {
  static CudaRNGStatesTracker tracker;
  return tracker;
}

void model_parallel_cuda_manual_seed(uint64_t seed) {
  const auto s = detail::current_settings();
  const uint64_t tp_rank = static_cast<uint64_t>(s.mp_rank);
  // Any positive offset keeps the two streams apart; 2718 is Megatron's.
  const uint64_t model_parallel_seed = seed + 2718 + tp_rank;
  detail::log_info(s, fmt::format("> initializing model parallel cuda seeds on global rank {}, model parallel rank "
                                  "{}, and data parallel rank {} with model parallel seed: {} and data parallel "
                                  "seed: {}",
                                  s.global_rank, tp_rank, s.dp_rank, model_parallel_seed, seed));
  auto& tracker = get_cuda_rng_tracker();
  tracker.reset();
  detail::device_manual_seed(seed);
  tracker.add(CudaRNGStatesTracker::kModelParallelRngTrackerName, model_parallel_seed);
}

void model_parallel_reconfigure_tp_seed(uint64_t seed) {
  const auto s = detail::current_settings();
  auto fork = get_cuda_rng_tracker().fork();
  detail::device_manual_seed(seed + 2718 + static_cast<uint64_t>(s.mp_rank));
}

}  // namespace deepspeed::checkpointing
