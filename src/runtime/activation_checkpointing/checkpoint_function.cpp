// The checkpoint itself: an autograd function whose forward runs the user's function without
// recording a graph and keeps only the inputs, and whose backward restores the inputs, the
// generators and the autocast state, runs the function again with a graph, and backpropagates
// through that graph from inside autograd's backward (DeepSpeed's reentrant CheckpointFunction).
// LibTorch's C++ API has no saved-tensor hooks (they take Python objects), so the
// non-reentrant form is not available here.
#include <chrono>

#include <fmt/format.h>
#include <torch/csrc/autograd/engine.h>

#include <deepspeed/activation_checkpointing.h>
#include <deepspeed/errors.h>

#include "runtime/activation_checkpointing/autocast_state.h"
#include "runtime/activation_checkpointing/device_rng.h"
#include "runtime/activation_checkpointing/saved_inputs.h"
#include "runtime/activation_checkpointing/settings.h"

namespace deepspeed::checkpointing {
namespace detail {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct CheckpointState : torch::CustomClassHolder {
  TensorFunction function;
  Settings settings;
  std::vector<SavedInput> inputs;
  std::size_t user_inputs = 0;  // the inputs the function takes (a trailing one may be ours)
  RngSnapshot rng;
  AutocastState autocast;
  torch::Device device = torch::kCPU;

  ~CheckpointState() override {
    for (auto& s : inputs) release_input(s);
  }
};

// Times one phase for "profile": the device is synchronized at both ends, as DeepSpeed's
// synchronized timers do, so the time is the phase's and not its launch's.
class PhaseTimer {
 public:
  PhaseTimer(const Settings& s, const torch::Device& device, const char* name) : s_(s), device_(device), name_(name) {
    if (s_.config.synchronize_checkpoint_boundary || s_.config.profile) synchronize_device(device_);
    start_ = std::chrono::steady_clock::now();
  }
  void stop() {
    if (s_.config.profile) {
      synchronize_device(device_);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
      log_time(s_, name_, ms);
    }
    if (s_.config.synchronize_checkpoint_boundary) synchronize_device(device_);
  }

 private:
  const Settings& s_;
  torch::Device device_;
  const char* name_;
  std::chrono::steady_clock::time_point start_;
};

// The generators as the backward found them come back after the recompute, exceptions included.
class RngRestore {
 public:
  explicit RngRestore(const RngSnapshot& forward) : backward_(capture_rng()) { restore_rng(forward); }
  ~RngRestore() { restore_rng(backward_); }
  RngRestore(const RngRestore&) = delete;
  RngRestore& operator=(const RngRestore&) = delete;

 private:
  RngSnapshot backward_;
};

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<CheckpointState> state,
                               at::TensorList inputs) {
    const Settings& s = state->settings;
    PhaseTimer timer(s, state->device, "forward");
    state->rng = capture_rng();
    state->autocast = AutocastState::current();
    const variable_list user(inputs.begin(), inputs.begin() + static_cast<std::ptrdiff_t>(state->user_inputs));
    auto outputs = state->function(user);
    std::size_t floating = 0;
    state->inputs.reserve(inputs.size());
    for (const auto& input : inputs) {
      const bool is_float = input.defined() && input.is_floating_point();
      state->inputs.push_back(save_input(input, is_float ? floating : 0, s));
      floating += is_float;
    }
    variable_list non_differentiable;
    for (auto& out : outputs) {
      if (!out.defined()) {
        throw EngineError("checkpoint: the function returned an undefined tensor; return only defined tensors");
      }
      if (!out.is_floating_point()) non_differentiable.push_back(out);
    }
    if (!non_differentiable.empty()) ctx->mark_non_differentiable(non_differentiable);
    ctx->saved_data["state"] = at::IValue::make_capsule(state);
    timer.stop();
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto holder = ctx->saved_data["state"].toCapsule();
    auto& state = *static_cast<CheckpointState*>(holder.get());
    if (!torch::autograd::Engine::get_default_engine().is_checkpoint_valid()) {
      throw EngineError("Checkpointing is not compatible with .grad(), please use .backward() if possible");
    }
    if (!state.function) {
      throw EngineError("checkpoint: a second backward through a checkpoint (retain_graph): its inputs were "
                        "released by the first one");
    }
    const Settings& s = state.settings;
    PhaseTimer timer(s, state.device, "backward");
    // The buffers' slices stay alive in the checkpoints that use them; the next forward gets
    // new buffers, as DeepSpeed drops its buffer lists at the first backward.
    if (s.config.contiguous_memory_optimization) release_contiguous_buffers();

    variable_list inputs;
    inputs.reserve(state.inputs.size());
    for (const auto& saved : state.inputs) inputs.push_back(restore_input(saved, s));
    for (auto& saved : state.inputs) release_input(saved);

    variable_list outputs;
    {
      RngRestore rng(state.rng);
      AutocastScope autocast(state.autocast);
      torch::AutoGradMode grad(true);
      outputs = state.function(variable_list(inputs.begin(), inputs.begin() + static_cast<std::ptrdiff_t>(state.user_inputs)));
    }
    state.function = nullptr;

    variable_list differentiable, their_grads;
    for (std::size_t i = 0; i < outputs.size() && i < grads.size(); ++i) {
      if (outputs[i].requires_grad() && grads[i].defined()) {
        differentiable.push_back(outputs[i]);
        their_grads.push_back(grads[i]);
      }
    }
    if (!differentiable.empty()) torch::autograd::backward(differentiable, their_grads);

    variable_list result{torch::Tensor()};  // the state argument
    for (const auto& in : inputs) result.push_back(in.defined() && in.requires_grad() ? in.grad() : torch::Tensor());
    timer.stop();
    return result;
  }
};

}  // namespace
}  // namespace detail

torch::autograd::variable_list checkpoint_tensors(TensorFunction function, torch::autograd::variable_list inputs) {
  if (!function) throw EngineError("checkpoint: no function to run");
  if (!torch::GradMode::is_enabled()) return function(inputs);  // nothing will run backward
  auto state = c10::make_intrusive<detail::CheckpointState>();
  state->settings = detail::current_settings();
  state->function = std::move(function);
  state->user_inputs = inputs.size();
  bool any_requires_grad = false;
  for (const auto& t : inputs) {
    if (t.defined()) {
      state->device = t.device();
      any_requires_grad = any_requires_grad || t.requires_grad();
    }
  }
  // Without an input that requires grad autograd would not call our backward, and the
  // parameters used inside would get no gradient; an empty leaf that does makes it call it.
  if (!any_requires_grad) inputs.push_back(torch::empty({0}, torch::TensorOptions().requires_grad(true)));
  return detail::CheckpointFunction::apply(state, at::TensorList(inputs));
}

}  // namespace deepspeed::checkpointing
