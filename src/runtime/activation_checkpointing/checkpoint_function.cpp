// The checkpoint itself: an autograd function whose forward runs the user's function and keeps
// only its inputs, and whose backward restores the inputs, the generators and the autocast
// state, runs the function again with a graph, and backpropagates through that graph from
// inside autograd's backward (DeepSpeed's reentrant CheckpointFunction). LibTorch's C++ API has
// no saved-tensor hooks (they take Python objects), so the non-reentrant form is not available.
//
// One difference from DeepSpeed: the parameters the function uses are inputs of the
// checkpoint's autograd node too, and the recompute's gradients for them leave through that
// node instead of being accumulated by the inner backward. A parameter used in several
// checkpoints, or inside and outside one (a tied embedding), then gets one gradient per
// backward, summed by autograd, so the engine's gradient hooks (data-parallel buckets, ZeRO)
// fire once per parameter with the whole gradient, as without checkpointing. To find them the
// forward runs with autograd recording, on detached inputs, and the graph is walked to its
// leaves and dropped as soon as the function returns: its activations live no longer than
// the function's own run (the same peak as the recompute's).
#include <chrono>
#include <unordered_set>

#include <ATen/SequenceNumber.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>

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
  std::vector<SavedInput> inputs;  // the function's inputs, as kept until backward
  std::size_t user_inputs = 0;     // the inputs the function takes
  variable_list parameters;        // the leaves the function's graph reaches (after the inputs)
  std::size_t node_inputs = 0;     // inputs, parameters and the placeholder: what the node takes
  variable_list first_outputs;     // the first run's outputs, until the node takes them
  RngSnapshot rng;
  AutocastState autocast;
  torch::Device device = torch::kCPU;

  ~CheckpointState() override {
    for (auto& s : inputs) release_input(s);
  }
};

// The leaves (parameters) that `outputs`' graph reaches, other than `inputs`, each once. Nodes
// made before `first` (the sequence number when the function started) belong to the graph
// outside the checkpoint (a tensor the function captured instead of taking it as an
// argument): the walk does not go into it.
variable_list graph_leaves(const variable_list& outputs, const variable_list& inputs, uint64_t first) {
  std::unordered_set<const c10::TensorImpl*> skip;
  for (const auto& in : inputs) {
    if (in.defined()) skip.insert(in.unsafeGetTensorImpl());
  }
  std::unordered_set<const torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> stack;
  for (const auto& out : outputs) {
    if (out.defined() && out.grad_fn()) stack.push_back(out.grad_fn().get());
  }
  variable_list leaves;
  while (!stack.empty()) {
    auto* node = stack.back();
    stack.pop_back();
    if (!seen.insert(node).second) continue;
    if (auto* acc = dynamic_cast<torch::autograd::AccumulateGrad*>(node)) {
      if (skip.insert(acc->variable.unsafeGetTensorImpl()).second) leaves.push_back(acc->variable);
      continue;
    }
    if (node->sequence_nr() < first) continue;
    for (const auto& edge : node->next_edges()) {
      if (edge.function) stack.push_back(edge.function.get());
    }
  }
  return leaves;
}

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
  // The outputs were computed before (see checkpoint_tensors); this saves the inputs and makes
  // the outputs the node's. `inputs` are the function's, then the parameters (or a placeholder).
  static variable_list forward(AutogradContext* ctx, c10::intrusive_ptr<CheckpointState> state,
                               at::TensorList inputs) {
    const Settings& s = state->settings;
    auto outputs = std::move(state->first_outputs);
    std::size_t floating = 0;
    state->inputs.reserve(state->user_inputs);
    for (std::size_t i = 0; i < state->user_inputs; ++i) {
      const auto& input = inputs[i];
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
      outputs = state.function(inputs);
    }
    state.function = nullptr;

    variable_list differentiable, their_grads;
    for (std::size_t i = 0; i < outputs.size() && i < grads.size(); ++i) {
      if (outputs[i].requires_grad() && grads[i].defined()) {
        differentiable.push_back(outputs[i]);
        their_grads.push_back(grads[i]);
      }
    }
    // Gradients for the inputs and the parameters, not accumulated anywhere: they leave
    // through this node (see the top of the file).
    // The result: the state argument (no gradient), the inputs, the parameters.
    variable_list wanted;
    std::vector<std::size_t> slot;  // where each wanted gradient goes in the result
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].defined() && inputs[i].requires_grad()) {
        wanted.push_back(inputs[i]);
        slot.push_back(1 + i);
      }
    }
    for (std::size_t j = 0; j < state.parameters.size(); ++j) {
      if (state.parameters[j].requires_grad()) {
        wanted.push_back(state.parameters[j]);
        slot.push_back(1 + state.user_inputs + j);
      }
    }
    variable_list result(1 + state.node_inputs);
    if (!differentiable.empty() && !wanted.empty()) {
      const auto computed = torch::autograd::grad(differentiable, wanted, their_grads, /*retain_graph=*/false,
                                                  /*create_graph=*/false, /*allow_unused=*/true);
      for (std::size_t k = 0; k < computed.size(); ++k) result[slot[k]] = computed[k];
    }
    state.parameters.clear();
    timer.stop();
    return result;
  }
};

}  // namespace
}  // namespace detail

torch::autograd::variable_list checkpoint_tensors(TensorFunction function, torch::autograd::variable_list inputs) {
  using detail::Settings;
  if (!function) throw EngineError("checkpoint: no function to run");
  if (!torch::GradMode::is_enabled()) return function(inputs);  // nothing will run backward
  auto state = c10::make_intrusive<detail::CheckpointState>();
  state->settings = detail::current_settings();
  state->user_inputs = inputs.size();
  for (const auto& t : inputs) {
    if (t.defined()) state->device = t.device();
  }
  const Settings& s = state->settings;
  detail::PhaseTimer timer(s, state->device, "forward");
  state->rng = detail::capture_rng();
  state->autocast = detail::AutocastState::current();
  {
    // Recorded on detached inputs, so that the walk stops at the checkpoint's inputs.
    torch::autograd::variable_list detached;
    detached.reserve(inputs.size());
    for (const auto& t : inputs) {
      detached.push_back(t.defined() ? t.detach().requires_grad_(t.requires_grad() && t.is_floating_point())
                                     : t);
    }
    const uint64_t first = at::sequence_number::peek();
    auto recorded = function(detached);
    state->parameters = detail::graph_leaves(recorded, detached, first);
    for (auto& out : recorded) state->first_outputs.push_back(out.defined() ? out.detach() : out);
  }  // the graph, and with it the activations, go here
  state->function = std::move(function);
  torch::autograd::variable_list node_inputs = inputs;
  bool any_requires_grad = false;
  for (const auto& t : inputs) any_requires_grad = any_requires_grad || (t.defined() && t.requires_grad());
  for (const auto& p : state->parameters) any_requires_grad = any_requires_grad || p.requires_grad();
  node_inputs.insert(node_inputs.end(), state->parameters.begin(), state->parameters.end());
  // Without an input that requires grad autograd would not call our backward, and parameters
  // used inside would get no gradient; an empty leaf that does makes it call it.
  if (!any_requires_grad) node_inputs.push_back(torch::empty({0}, torch::TensorOptions().requires_grad(true)));
  state->node_inputs = node_inputs.size();
  auto result = detail::CheckpointFunction::apply(state, at::TensorList(node_inputs));
  timer.stop();
  return result;
}

}  // namespace deepspeed::checkpointing
