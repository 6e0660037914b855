// Activation checkpointing (DeepSpeed's deepspeed.checkpointing): a checkpointed piece of the
// forward keeps only its inputs; its activations are freed and the forward is run again in
// backward to rebuild them. The recomputed forward draws the same random numbers (dropout
// masks) as the first one: the CPU generator, the device's generator and the model-parallel
// RNG tracker's states are saved before it and restored for the recompute. Gradients are the
// same as without checkpointing, bit for bit in fp32.
//
//   deepspeed::checkpointing::configure(groups, config);        // or initialize() does it
//   x = deepspeed::checkpointing::checkpoint(block, x);          // a module, or any callable
//   x = deepspeed::checkpointing::checkpoint_sequential(blocks, x);  // every block of a Sequential
//
// The recompute runs inside autograd's backward (DeepSpeed's reentrant CheckpointFunction), so
// parameters used in it get their gradients there: ZeRO's gradient hooks and stage-3 gathers
// see it as ordinary backward work. Settings are process-wide, as in DeepSpeed: configure()
// once, before the first checkpoint.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include <deepspeed/config.h>
#include <deepspeed/groups.h>

namespace deepspeed::checkpointing {

// configure()'s keyword arguments: each one set overrides the config's key (DeepSpeed's
// partition_activations, contiguous_checkpointing, num_checkpoints, checkpoint_in_cpu,
// synchronize, profile).
struct Options {
  std::optional<bool> partition_activations;
  std::optional<bool> contiguous_checkpointing;
  std::optional<int64_t> num_checkpoints;
  std::optional<bool> checkpoint_in_cpu;
  std::optional<bool> synchronize;
  std::optional<bool> profile;
};

// Sets every option to its default, then to `config` (when given), then to `options`. The mpu's
// tensor-parallel group (its model-parallel group when it gives none) is where
// partition_activations splits saved inputs; without an mpu nothing is split. Rank 0 logs the
// settings. Throws ConfigError when contiguous_memory_optimization is asked for without
// partition_activations or without number_checkpoints (DeepSpeed's two assertions).
void configure(std::shared_ptr<const ModelParallelUnit> mpu, const ActivationCheckpointingConfig* config,
               const Options& options = {});
inline void configure(std::shared_ptr<const ModelParallelUnit> mpu, const DeepSpeedConfig& config,
                      const Options& options = {}) {
  configure(std::move(mpu), &config.activation_checkpointing, options);
}
// A config file path or JSON text, read as load_config() reads it.
void configure(std::shared_ptr<const ModelParallelUnit> mpu, const std::string& config_path_or_json,
               const Options& options = {});
inline void configure(std::shared_ptr<const ModelParallelUnit> mpu, const Options& options = {}) {
  configure(std::move(mpu), static_cast<const ActivationCheckpointingConfig*>(nullptr), options);
}

// True once configure() has run (checkpoint() works without it, with the defaults).
bool is_configured();
// The settings now in force (the config section's shape).
ActivationCheckpointingConfig settings();
// Drops the contiguous buffers: call it after forwards that no backward follows (evaluation).
void reset();
// The number of checkpoints per forward that the contiguous buffers are sized for.
void set_num_layers(int64_t num_layers);

// What the checkpoints that wait for their backward hold right now, in bytes, by where it is:
// their saved floating-point inputs (or this rank's share of them under
// partition_activations); integer inputs such as token ids are not counted.
struct SavedBytes {
  int64_t device = 0;  // on an accelerator
  int64_t host = 0;    // in host memory (the CPU device, or cpu_checkpointing's copies)
};
SavedBytes saved_bytes();

// --- the RNG tracker (Megatron's, as DeepSpeed keeps it) ---

// Named states of the device's generator (CUDA's current device; the CPU generator where there
// is no CUDA): fork() runs a region on one of them (dropout inside tensor-parallel regions)
// and leaves the default generator as it was.
class CudaRNGStatesTracker {
 public:
  using States = std::map<std::string, torch::Tensor>;

  void reset();
  States get_states() const { return states_; }
  void set_states(States states) { states_ = std::move(states); }
  // A state seeded with `seed`; throws EngineError when the name or the seed is taken.
  void add(const std::string& name, uint64_t seed);

  // While alive, the device generator runs on state `name`; the state advances, and the
  // generator's own state comes back at the end. Throws EngineError for an unknown name.
  class Fork {
   public:
    ~Fork();
    Fork(const Fork&) = delete;
    Fork& operator=(const Fork&) = delete;

   private:
    friend class CudaRNGStatesTracker;
    Fork(CudaRNGStatesTracker& tracker, std::string name);
    CudaRNGStatesTracker& tracker_;
    std::string name_;
    torch::Tensor original_;
  };
  [[nodiscard]] Fork fork(const std::string& name = kModelParallelRngTrackerName);

  static constexpr const char* kModelParallelRngTrackerName = "model-parallel-rng";

 private:
  States states_;
  std::vector<uint64_t> seeds_;
};

CudaRNGStatesTracker& get_cuda_rng_tracker();

// Megatron's two streams: the default generator gets `seed` (the same on the ranks of a
// tensor-parallel group: dropout outside tensor-parallel regions), the tracker's
// "model-parallel-rng" state gets seed + 2718 + tensor-parallel rank (different across them).
void model_parallel_cuda_manual_seed(uint64_t seed);
// Reseeds only the tracker's "model-parallel-rng" state with seed + 2718 + tensor-parallel rank
// (after the tensor-parallel layout changed); the default generator is left as it is.
void model_parallel_reconfigure_tp_seed(uint64_t seed);

// --- checkpoint ---

using TensorFunction = std::function<torch::autograd::variable_list(const torch::autograd::variable_list&)>;

// The core: runs `function` on `inputs` without keeping its activations, and again in backward.
// Outputs that are not floating point are not differentiable.
torch::autograd::variable_list checkpoint_tensors(TensorFunction function, torch::autograd::variable_list inputs);

namespace detail {
template <class T>
inline constexpr bool is_tensor_v = std::is_same_v<std::decay_t<T>, torch::Tensor>;

template <class T>
struct is_shared_ptr : std::false_type {};
template <class T>
struct is_shared_ptr<std::shared_ptr<T>> : std::true_type {};

// Calls a callable, a module holder (gpt::Block) or a shared_ptr to a module.
template <class F, class... A>
decltype(auto) invoke(F& f, A&... a) {
  if constexpr (is_shared_ptr<std::decay_t<F>>::value) {
    return f->forward(a...);
  } else {
    return f(a...);
  }
}

inline torch::autograd::variable_list to_list(torch::Tensor t) { return {std::move(t)}; }
inline torch::autograd::variable_list to_list(torch::autograd::variable_list v) { return v; }
template <class... T>
torch::autograd::variable_list to_list(std::tuple<T...> t) {
  return std::apply([](auto&... x) { return torch::autograd::variable_list{x...}; }, t);
}

template <class R>
R from_list(torch::autograd::variable_list v) {
  if constexpr (std::is_same_v<R, torch::Tensor>) {
    return v.at(0);
  } else if constexpr (std::is_same_v<R, torch::autograd::variable_list>) {
    return v;
  } else {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return R{v.at(I)...};
    }(std::make_index_sequence<std::tuple_size_v<R>>{});
  }
}
}  // namespace detail

// DeepSpeed's checkpoint(function, *args): tensor arguments go through autograd and are what
// is saved; other arguments are kept by value and passed again to the recompute. `function`
// is any callable, a module holder (torch::nn::Linear, or one made with TORCH_MODULE) or a
// shared_ptr to a module with forward(); it returns a tensor, a vector of tensors or a tuple
// of tensors, and must compute the same thing when called again.
template <class F, class... Args>
auto checkpoint(F function, Args... args) {
  using Result = std::decay_t<decltype(detail::invoke(function, args...))>;
  torch::autograd::variable_list tensors;
  auto collect = [&](auto& a) {
    if constexpr (detail::is_tensor_v<decltype(a)>) {
      tensors.push_back(a);
      a = torch::Tensor();  // the closure must not keep the input alive: the checkpoint saves it
    }
  };
  (collect(args), ...);
  auto run = [function = std::move(function), bound = std::make_tuple(std::move(args)...)](
                 const torch::autograd::variable_list& inputs) mutable -> torch::autograd::variable_list {
    auto call = bound;
    std::size_t next = 0;
    auto put = [&](auto& a) {
      if constexpr (detail::is_tensor_v<decltype(a)>) a = inputs.at(next++);
    };
    std::apply([&](auto&... a) { (put(a), ...); }, call);
    return detail::to_list(std::apply([&](auto&... a) -> Result { return detail::invoke(function, a...); }, call));
  };
  return detail::from_list<Result>(checkpoint_tensors(std::move(run), std::move(tensors)));
}

// Runs `x` through the modules in order, checkpointing every `every`-th one from the first
// (1: all, 2: blocks 0, 2, 4, ...; 0: none).
torch::Tensor checkpoint_sequential(const torch::nn::Sequential& modules, torch::Tensor x, int64_t every = 1);

// The same for a ModuleList whose modules are all of type `Block` (the Impl class: BlockImpl)
// with `torch::Tensor forward(torch::Tensor)`.
template <class Block>
torch::Tensor checkpoint_sequential(const torch::nn::ModuleList& modules, torch::Tensor x, int64_t every = 1) {
  for (std::size_t i = 0; i < modules->size(); ++i) {
    auto block = modules->ptr<Block>(i);
    if (every > 0 && i % static_cast<std::size_t>(every) == 0) {
      x = checkpoint(block, x);
    } else {
      x = block->forward(x);
    }
  }
  return x;
}

}  // namespace deepspeed::checkpointing
