// PipelineEngine: runs the instructions of pipe::train_schedule / inference_schedule, one
// method per instruction as DeepSpeed's _INSTRUCTION_MAP (deepspeed/runtime/pipe/engine.py).
// The engine underneath does what is not pipeline-specific: the optimizer wrapper reduces the
// gradients over the data-parallel group and takes the step (clipping, loss scaling, LR
// schedule, counters, progress lines).
#include <deepspeed/pipe_engine.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include <fmt/format.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "runtime/logger.h"

namespace deepspeed {
namespace {

// DeepSpeed's ID_TO_DTYPE: the dtype ids of the shape message.
const std::vector<torch::ScalarType>& wire_dtypes() {
  static const std::vector<torch::ScalarType> ids = {
      torch::kFloat32, torch::kFloat64, torch::kComplexFloat, torch::kComplexDouble, torch::kFloat16, torch::kBFloat16,
      torch::kUInt8,   torch::kInt8,    torch::kInt16,        torch::kInt32,         torch::kInt64,   torch::kBool};
  return ids;
}
constexpr int64_t kTensorMetaSize = 256;  // DeepSpeed's TENSOR_META_SIZE

pipe::PipelineModule& as_pipeline(const std::shared_ptr<torch::nn::Module>& module) {
  auto* p = dynamic_cast<pipe::PipelineModule*>(module.get());
  if (!p) throw EngineError("PipelineEngine: model must base PipelineModule");
  return *p;
}

LogLevel pipe_log_level(const DeepSpeedConfig& c) { return c.log_level ? parse_log_level(*c.log_level) : LogLevel::Info; }

}  // namespace

PipeDataIterator repeating_iterator(std::shared_ptr<DataLoader> loader) {
  if (!loader) throw EngineError("repeating_iterator: no data loader");
  struct State {
    std::optional<DataLoader::Iterator> it, end;
  };
  auto state = std::make_shared<State>();
  return [loader, state]() -> PipeBatch {
    if (!state->it || *state->it == *state->end) {
      state->it = loader->begin();
      state->end = loader->end();
      if (*state->it == *state->end) throw EngineError("repeating_iterator: the data loader has no batches");
    }
    auto example = **state->it;
    ++*state->it;
    return {example.data, example.target, {}};
  };
}

PipelineEngine::PipelineEngine(torch::nn::AnyModule model, std::shared_ptr<torch::nn::Module> module,
                               DeepSpeedConfig config, std::shared_ptr<Groups> groups,
                               std::shared_ptr<Optimizer> optimizer, std::shared_ptr<LRScheduler> lr_scheduler,
                               const std::vector<torch::Tensor>& tensor_parallel_parameters)
    : Engine(std::move(model), module, std::move(config), groups, std::move(optimizer), std::move(lr_scheduler),
             tensor_parallel_parameters, as_pipeline(module).tied_weights_counted_elsewhere()),
      pipe_module_(&as_pipeline(module)),
      pipe_group_(this->groups()->pipe_parallel()),
      stage_id_(pipe_module_->stage_id()),
      num_stages_(pipe_module_->num_stages()) {
  const auto& c = this->config();
  if (c.zero_stage() >= 2) throw EngineError("ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism");
  if (pipe_group_->size() != num_stages_) {
    throw EngineError(fmt::format("PipelineEngine: the pipe group has {} ranks but the module {} stages (pass the "
                                  "module's mpu())",
                                  pipe_group_->size(), num_stages_));
  }
  // The config's pipeline section describes the module; a module built otherwise is an error
  // rather than a silent choice between the two.
  if (c.pipeline.stages && *c.pipeline.stages != num_stages_) {
    throw ConfigError("pipeline.stages", fmt::format("{} stages, but the PipelineModule has {}", *c.pipeline.stages,
                                                     num_stages_));
  }
  if (c.pipeline.partition != "best" && c.pipeline.partition != pipe_module_->partition_method()) {
    throw ConfigError("pipeline.partition", fmt::format("\"{}\", but the PipelineModule was partitioned with \"{}\" "
                                                        "(\"best\": the module's own method)",
                                                        c.pipeline.partition, pipe_module_->partition_method()));
  }
  if (c.pipeline.seed_layers && !pipe_module_->seed_layers()) {
    throw ConfigError("pipeline.seed_layers", "true, but the PipelineModule was built with seed_layers off");
  }
  if (c.pipeline.use_reentrant == false) {
    throw ConfigError("pipeline.use_reentrant", "false asks for DeepSpeed's non-reentrant checkpoint, which deepspeed-cpp "
                                                "does not have (docs/compatibility.md); leave it out or set true");
  }
  if (c.pipeline.activation_checkpoint_interval > 0) {
    pipe_module_->set_checkpoint_interval(c.pipeline.activation_checkpoint_interval);
  }
  const bool model_parallel = this->groups()->tensor_parallel()->size() > 1;
  pipe_partitioned_ = model_parallel && c.pipeline.pipe_partitioned;
  grad_partitioned_ = model_parallel && c.pipeline.grad_partitioned;

  const Logger logger(global_rank(), pipe_log_level(c));
  if (logger.enabled(LogLevel::Info)) {
    logger.info(fmt::format("CONFIG: micro_batches={} micro_batch_size={}", gradient_accumulation_steps(),
                            train_micro_batch_size_per_gpu()));
    logger.info(fmt::format("is_pipe_partitioned= {} is_grad_partitioned= {}", pipe_partitioned_ ? "True" : "False",
                            grad_partitioned_ ? "True" : "False"));
  }
  // Parameter counts over the model group: every stage's, and without the tied copies.
  int64_t stage_params = 0, counted_elsewhere = 0;
  for (const auto& p : this->module()->parameters()) {
    if (p.requires_grad()) stage_params += p.numel();
  }
  for (const auto& p : pipe_module_->tied_weights_counted_elsewhere()) counted_elsewhere += p.numel();
  auto totals = torch::tensor({stage_params, stage_params - counted_elsewhere},
                              torch::TensorOptions().dtype(torch::kLong).device(device()));
  this->groups()->model_parallel()->all_reduce(totals);
  if (dp_world_size() == 1 || this->groups()->data_parallel()->rank() == 0) {
    const auto total = totals[0].item<int64_t>(), unique = totals[1].item<int64_t>();
    Logger(global_rank(), pipe_log_level(c))
        .log(LogLevel::Info,
             fmt::format("RANK={} STAGE={} LAYERS={} [{}, {}) STAGE_PARAMS={} ({:0.3f}M) TOTAL_PARAMS={} ({:0.3f}M) "
                         "UNIQUE_PARAMS={} ({:0.3f}M)",
                         global_rank(), stage_id_, pipe_module_->local_stop() - pipe_module_->local_start(),
                         pipe_module_->local_start(), pipe_module_->local_stop(), stage_params, stage_params / 1e6,
                         total, total / 1e6, unique, unique / 1e6),
             /*all_ranks=*/true);
  }
  set_gradient_accumulation_boundary(false);
}

torch::Tensor PipelineEngine::backward(const torch::Tensor&, bool, bool) {
  throw EngineError("Only train_batch() is accessible in pipeline mode.");
}

void PipelineEngine::step() { throw EngineError("Only train_batch() is accessible in pipeline mode."); }

void PipelineEngine::reset_activation_shape() {
  sent_meta_.reset();
  recv_buffers_.reset();
  grad_buffers_.clear();
}

torch::Tensor PipelineEngine::train_batch() {
  if (!default_iter_) {
    if (!training_dataloader()) {
      throw EngineError("train_batch(): no data iterator given and no training data given to initialize");
    }
    default_iter_ = repeating_iterator(training_dataloader());
  }
  return train_batch(default_iter_);
}

torch::Tensor PipelineEngine::train_batch(const PipeDataIterator& data_iter) {
  if (!torch::GradMode::is_enabled()) {
    throw EngineError("train_batch() requires gradients enabled. Use eval_batch() instead.");
  }
  if ((is_first_stage() || is_last_stage()) && !data_iter) throw EngineError("train_batch: the data iterator is empty");
  data_iter_ = &data_iter;
  train();
  total_loss_ = torch::Tensor();
  compute_loss_ = true;
  batch_start_ = std::chrono::steady_clock::now();
  run_schedule(pipe::train_schedule(gradient_accumulation_steps(), num_stages_, stage_id_));
  {
    torch::NoGradGuard no_grad;
    agg_train_loss_ = aggregate_total_loss();
  }
  data_iter_ = nullptr;
  elapsed_since_print_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - batch_start_).count();
  const int64_t every = config().steps_per_print;
  if (every > 0 && global_steps() % every == 0) {
    if (global_rank() == 0) {
      const double iter_time = elapsed_since_print_ / static_cast<double>(every);
      std::printf("steps: %lld loss: %.4f iter time (s): %.3f samples/sec: %.3f\n",
                  static_cast<long long>(global_steps()), agg_train_loss_.item<double>(), iter_time,
                  static_cast<double>(train_batch_size()) / iter_time);
      std::fflush(stdout);
    }
    elapsed_since_print_ = 0.0;
  }
  if (global_rank() == 0 && monitor().enabled()) {
    monitor().write_events({{"Train/Samples/train_loss", agg_train_loss_.item<double>(), global_samples()}});
  }
  return agg_train_loss_;
}

EvalBatchOutput PipelineEngine::eval_batch(const PipeDataIterator& data_iter, bool return_logits, bool compute_loss,
                                           const std::string& reduce_output, bool bcast_loss,
                                           int64_t num_micro_batches) {
  std::string reduce = reduce_output;
  std::transform(reduce.begin(), reduce.end(), reduce.begin(), [](unsigned char c) { return std::tolower(c); });
  if (reduce != "avg" && reduce != "none") {
    throw EngineError("eval_batch: reduction type " + reduce_output + " not supported (\"avg\" or \"none\")");
  }
  if ((is_first_stage() || is_last_stage()) && !data_iter) throw EngineError("eval_batch: the data iterator is empty");
  const int64_t micro_batches = num_micro_batches > 0 ? num_micro_batches : gradient_accumulation_steps();
  eval();
  data_iter_ = &data_iter;
  compute_loss_ = compute_loss;
  return_logits_ = return_logits;
  fwd_outputs_.clear();
  logits_ = torch::Tensor();
  // Every stage enters together (DeepSpeed's barrier against overlapping evaluations).
  process_group()->barrier();
  {
    torch::NoGradGuard no_grad;
    run_schedule(pipe::inference_schedule(micro_batches, num_stages_, stage_id_));
  }
  data_iter_ = nullptr;
  EvalBatchOutput out;
  if (is_last_stage()) {
    if (reduce == "none") {
      out.outputs = fwd_outputs_;
    } else {
      // DeepSpeed's _reduce_outputs: summed over the micro batches in their own dtype, divided
      // by their number, averaged over the data-parallel group.
      auto sum = fwd_outputs_.front().clone();
      for (size_t i = 1; i < fwd_outputs_.size(); ++i) sum += fwd_outputs_[i];
      if (micro_batches > 1) sum /= static_cast<double>(micro_batches);
      if (dp_world_size() > 1) {
        groups()->data_parallel()->all_reduce(sum);
        sum /= static_cast<double>(dp_world_size());
      }
      out.loss = sum;
    }
    if (return_logits) out.logits = logits_;
  }
  // DeepSpeed's _bcast_pipe_scalar: one float from the last stage (a list of losses, with
  // reduce_output "none", stays on the last stage: docs/compatibility.md).
  if (compute_loss && reduce == "avg" && (bcast_loss || monitor().enabled())) {
    auto value = is_last_stage() ? out.loss.reshape({1}).to(device(), torch::kFloat32).clone()
                                 : torch::zeros({1}, torch::TensorOptions().device(device()));
    pipe_group_->broadcast(value, num_stages_ - 1);
    out.loss = value.reshape({});
    if (global_rank() == 0 && monitor().enabled()) {
      monitor().write_events({{"Train/Samples/eval_loss", out.loss.item<double>(), global_samples()}});
    }
  }
  fwd_outputs_.clear();
  logits_ = torch::Tensor();
  return_logits_ = false;
  return out;  // the module stays in eval mode, as DeepSpeed leaves it; train_batch() sets train mode
}

void PipelineEngine::run_schedule(const pipe::Schedule& schedule) {
  const auto n = static_cast<size_t>(schedule.num_pipe_buffers);
  buffers_.inputs.assign(n, pipe::Activation());
  buffers_.labels.assign(n, torch::Tensor());
  buffers_.outputs.assign(n, pipe::Activation());
  fwd_outputs_.clear();
  for (const auto& step : schedule.steps) {
    for (const auto& cmd : step) {
      switch (cmd.op) {
        case pipe::Op::LoadMicroBatch: load_micro_batch(cmd.buffer_id); break;
        case pipe::Op::ForwardPass: forward_pass(cmd.buffer_id); break;
        case pipe::Op::BackwardPass: backward_pass(cmd.buffer_id); break;
        case pipe::Op::SendActivation: send_activation(cmd.buffer_id); break;
        case pipe::Op::RecvActivation: recv_activation(cmd.buffer_id); break;
        case pipe::Op::SendGrad: send_grad(cmd.buffer_id); break;
        case pipe::Op::RecvGrad: recv_grad(cmd.buffer_id); break;
        case pipe::Op::ReduceTiedGrads: pipe_module_->allreduce_tied_weight_gradients(); break;
        case pipe::Op::ReduceGrads: run_backward_pass({}, /*reduce=*/true); break;
        case pipe::Op::OptimizerStep: optimizer_step(); break;
      }
    }
  }
  buffers_ = Buffers{};
}

void PipelineEngine::load_micro_batch(int64_t buffer) {
  const auto batch = (*data_iter_)();
  if (is_first_stage()) {
    // Reentrant activation checkpointing needs an input that requires grad, or the first
    // checkpointed block is cut off from autograd (as DeepSpeed sets it).
    const bool needs_grad = pipe_module_->activation_checkpoint_interval() > 0;
    auto load = [&](const torch::Tensor& t) {
      auto loaded = auto_cast(t.to(device()).detach().clone());
      if (needs_grad && loaded.is_floating_point()) loaded.requires_grad_(true);
      return loaded;
    };
    pipe::Activation inputs;
    if (!batch.input_tuple.empty()) {
      std::vector<torch::Tensor> tensors;
      for (size_t i = 0; i < batch.input_tuple.size(); ++i) {
        if (!batch.input_tuple[i].defined()) {
          throw EngineError(fmt::format("the data iterator's input_tuple[{}] is not a tensor", i));
        }
        tensors.push_back(load(batch.input_tuple[i]));
      }
      inputs = pipe::Activation::tuple(std::move(tensors));
    } else {
      if (!batch.inputs.defined()) throw EngineError("the data iterator gave no inputs on the first stage");
      inputs = load(batch.inputs);
    }
    buffers_.inputs[buffer] = std::move(inputs);
  }
  if (is_last_stage()) buffers_.labels[buffer] = batch.labels.defined() ? batch.labels.to(device()) : batch.labels;
}

void PipelineEngine::forward_pass(int64_t buffer) {
  auto outputs = pipe_module_->forward_activation(buffers_.inputs[buffer]);
  buffers_.outputs[buffer] = outputs;
  if (!is_last_stage()) return;
  const auto& out = outputs.tensor("the last stage's loss (loss_fn takes its one output tensor)");
  if (compute_loss_ && pipe_module_->loss_fn()) {
    loss_ = pipe_module_->loss_fn()(out, buffers_.labels[buffer]);
  } else {
    loss_ = out;  // a model that returns its loss from forward
  }
  if (return_logits_) logits_ = out.detach();
  fwd_outputs_.push_back(loss_.detach());
  total_loss_ = total_loss_.defined() ? total_loss_ + loss_.detach() : loss_.detach().clone();
}

void PipelineEngine::backward_pass(int64_t buffer) {
  if (is_last_stage()) {
    if (loss_.numel() != 1) {
      throw EngineError("train_batch: the loss must be a scalar tensor, got shape " + c10::str(loss_.sizes()));
    }
    // As Engine::backward: the loss over the accumulation steps, times the loss scale.
    auto scaled = gradient_accumulation_steps() > 1 ? loss_ / static_cast<double>(gradient_accumulation_steps()) : loss_;
    const double scale = cur_scale();
    if (scale != 1.0) scaled = scaled.to(torch::kFloat32) * scale;
    run_backward_pass([&] { scaled.backward(); }, /*reduce=*/false);
    loss_ = torch::Tensor();
  } else {
    // The floating-point outputs, each with the gradient received for it; one that does not
    // depend on anything trainable (a float mask) has nothing to backpropagate.
    std::vector<torch::Tensor> outputs, grads;
    size_t next = 0;
    for (const auto& t : buffers_.outputs[buffer].tensors) {
      if (!t.is_floating_point()) continue;
      const auto& grad = grad_buffers_.at(next++);
      if (!t.requires_grad()) continue;
      outputs.push_back(t);
      grads.push_back(grad);
    }
    run_backward_pass(
        [&] {
          if (!outputs.empty()) torch::autograd::backward(outputs, grads);
        },
        /*reduce=*/false);
  }
  buffers_.outputs[buffer] = pipe::Activation();
}

std::vector<int32_t> PipelineEngine::tensor_meta(const pipe::Activation& a) const {
  // DeepSpeed's message: a tensor is {0, dtype id, ndims, dims...}; a tuple {2, count, then
  // per tensor dtype id, ndims, dims...}.
  const auto& ids = wire_dtypes();
  auto id_of = [&](const torch::Tensor& t) {
    const auto it = std::find(ids.begin(), ids.end(), t.scalar_type());
    if (it == ids.end()) {
      throw EngineError(fmt::format("stage {}: activations of dtype {} cannot be sent", stage_id_,
                                    c10::toString(t.scalar_type())));
    }
    return static_cast<int32_t>(it - ids.begin());
  };
  std::vector<int32_t> values;
  if (!a.is_tuple) {
    const auto& t = a.tensor("SendActivation");
    values = {0, id_of(t), static_cast<int32_t>(t.dim())};
    for (auto d : t.sizes()) values.push_back(static_cast<int32_t>(d));
  } else {
    values = {2, static_cast<int32_t>(a.tensors.size())};
    for (const auto& t : a.tensors) {
      values.push_back(id_of(t));
      values.push_back(static_cast<int32_t>(t.dim()));
      for (auto d : t.sizes()) values.push_back(static_cast<int32_t>(d));
    }
  }
  if (static_cast<int64_t>(values.size()) > kTensorMetaSize) {
    throw EngineError(fmt::format("stage {}: the shapes of the activations need {} numbers; the shape message holds {}",
                                  stage_id_, values.size(), kTensorMetaSize));
  }
  return values;
}

pipe::Activation PipelineEngine::buffers_for_meta(const torch::Tensor& meta) const {
  const auto values = meta.cpu();
  const auto* v = values.data_ptr<int32_t>();
  const auto n_ids = static_cast<int32_t>(wire_dtypes().size());
  int64_t pos = 0;
  auto next = [&]() {
    if (pos >= kTensorMetaSize) throw EngineError(fmt::format("stage {}: a malformed shape message", stage_id_));
    return v[pos++];
  };
  auto one = [&]() {
    const int32_t id = next(), ndims = next();
    if (id < 0 || id >= n_ids || ndims < 0) {
      throw EngineError(fmt::format("stage {}: stage {} sent a shape message with dtype id {} and {} dimensions",
                                    stage_id_, stage_id_ - 1, id, ndims));
    }
    std::vector<int64_t> shape;
    for (int32_t d = 0; d < ndims; ++d) shape.push_back(next());
    return torch::empty(shape, torch::TensorOptions().dtype(wire_dtypes()[id]).device(device()));
  };
  const int32_t kind = next();
  if (kind == 0) return pipe::Activation(one());
  if (kind != 2) {
    throw EngineError(fmt::format("stage {}: stage {} sent activations of kind {} (0: a tensor, 2: a tuple)", stage_id_,
                                  stage_id_ - 1, kind));
  }
  const int32_t count = next();
  std::vector<torch::Tensor> tensors;
  for (int32_t i = 0; i < count; ++i) tensors.push_back(one());
  return pipe::Activation::tuple(std::move(tensors));
}

void PipelineEngine::send_activation(int64_t buffer) {
  const auto& outputs = buffers_.outputs[buffer];
  if (outputs.tensors.empty()) throw EngineError("SendActivation: the stage's forward produced no tensor");
  for (const auto& t : outputs.tensors) {
    if (!t.defined()) throw EngineError("SendActivation: the stage's forward produced an undefined tensor");
  }
  const auto meta = tensor_meta(outputs);
  if (!sent_meta_ || pipe_module_->dynamic_shape()) {
    auto message = torch::zeros({kTensorMetaSize}, torch::TensorOptions().dtype(torch::kInt32).device(device()));
    message.narrow(0, 0, static_cast<int64_t>(meta.size()))
        .copy_(torch::tensor(meta, torch::TensorOptions().dtype(torch::kInt32)));
    pipe_group_->send(message, stage_id_ + 1);
    sent_meta_ = meta;
  } else if (*sent_meta_ != meta) {
    throw EngineError(fmt::format("stage {}: the activations sent to stage {} changed shape or dtype between micro "
                                  "batches; stages exchange shapes once (build the PipelineModule with dynamic_shape, "
                                  "or call reset_activation_shape() on every stage before a batch of another shape)",
                                  stage_id_, stage_id_ + 1));
  }
  for (const auto& t : outputs.tensors) {
    // Bool tensors travel as bytes (NCCL has no bool).
    const auto wire = t.scalar_type() == torch::kBool ? t.to(torch::kUInt8) : t.detach();
    send_tensor(wire, stage_id_ + 1, pipe_partitioned_ && t.is_floating_point());
  }
}

void PipelineEngine::recv_activation(int64_t buffer) {
  if (!recv_buffers_ || pipe_module_->dynamic_shape()) {
    auto meta = torch::zeros({kTensorMetaSize}, torch::TensorOptions().dtype(torch::kInt32).device(device()));
    pipe_group_->recv(meta, stage_id_ - 1);
    recv_buffers_ = buffers_for_meta(meta);
  }
  pipe::Activation received;
  received.is_tuple = recv_buffers_->is_tuple;
  for (auto& b : recv_buffers_->tensors) {
    torch::Tensor t;
    if (b.scalar_type() == torch::kBool) {
      auto bytes = torch::empty(b.sizes(), b.options().dtype(torch::kUInt8));
      recv_tensor(bytes, stage_id_ - 1, false);
      t = bytes.to(torch::kBool);
    } else {
      recv_tensor(b, stage_id_ - 1, pipe_partitioned_ && b.is_floating_point());
      t = b.clone().detach();
      if (t.is_floating_point()) t.requires_grad_(true);
    }
    received.tensors.push_back(t);
  }
  buffers_.inputs[buffer] = std::move(received);
}

void PipelineEngine::send_grad(int64_t buffer) {
  // A gradient for every floating-point input, in order (zeros where the stage's output did
  // not depend on one, e.g. a float mask), so that sender and receiver pair every tensor.
  const auto& inputs = buffers_.inputs[buffer];
  for (const auto& t : inputs.tensors) {
    if (!t.is_floating_point()) continue;
    if (!t.grad().defined() && !inputs.is_tuple) {
      throw EngineError(fmt::format("stage {}: the received activations got no gradient in backward (does the stage's "
                                    "output depend on its input?)",
                                    stage_id_));
    }
    const auto grad = t.grad().defined() ? t.grad() : torch::zeros_like(t);
    send_tensor(grad, stage_id_ - 1, grad_partitioned_);
  }
  buffers_.inputs[buffer] = pipe::Activation();
}

void PipelineEngine::recv_grad(int64_t buffer) {
  const auto& outputs = buffers_.outputs[buffer].tensors;
  size_t next = 0;
  for (const auto& t : outputs) {
    if (!t.is_floating_point()) continue;
    if (grad_buffers_.size() <= next) grad_buffers_.emplace_back();
    auto& g = grad_buffers_[next++];
    if (!g.defined() || g.sizes() != t.sizes() || g.scalar_type() != t.scalar_type()) {
      g = torch::empty_like(t, torch::MemoryFormat::Contiguous);
    }
    recv_tensor(g, stage_id_ + 1, grad_partitioned_);
  }
  if (next == 0) {
    throw EngineError(fmt::format("stage {}: the activations sent to stage {} have no floating-point tensor to carry a "
                                  "gradient back",
                                  stage_id_, stage_id_ + 1));
  }
}

// With pipe_partitioned / grad_partitioned, each tensor-parallel rank sends only its 1/tp of
// the flattened tensor and the receivers gather the parts over their own tensor group: the
// same tensor arrives, with 1/tp of the point-to-point traffic.
void PipelineEngine::send_tensor(const torch::Tensor& t, int64_t stage, bool partitioned) {
  if (!partitioned) {
    pipe_group_->send(t.contiguous(), stage);
    return;
  }
  const auto& tp = groups()->tensor_parallel();
  const int64_t parts = tp->size();
  const int64_t chunk = (t.numel() + parts - 1) / parts;
  auto flat = torch::zeros({chunk * parts}, t.options());
  flat.narrow(0, 0, t.numel()).copy_(t.reshape(-1));
  pipe_group_->send(flat.narrow(0, tp->rank() * chunk, chunk).contiguous(), stage);
}

void PipelineEngine::recv_tensor(torch::Tensor& t, int64_t stage, bool partitioned) {
  if (!partitioned) {
    pipe_group_->recv(t, stage);
    return;
  }
  const auto& tp = groups()->tensor_parallel();
  const int64_t parts = tp->size();
  const int64_t chunk = (t.numel() + parts - 1) / parts;
  auto mine = torch::empty({chunk}, t.options());
  pipe_group_->recv(mine, stage);
  std::vector<torch::Tensor> gathered(static_cast<size_t>(parts));
  for (auto& g : gathered) g = torch::empty({chunk}, t.options());
  tp->all_gather(gathered, mine);
  t.copy_(torch::cat(gathered).narrow(0, 0, t.numel()).view(t.sizes()));
}

void PipelineEngine::optimizer_step() {
  set_gradient_accumulation_boundary(true);
  Engine::step();
  set_gradient_accumulation_boundary(false);
}

// DeepSpeed's _aggregate_total_loss: the last stage's mean over micro batches, averaged over
// the data-parallel group, broadcast to the other stages of the pipeline.
torch::Tensor PipelineEngine::aggregate_total_loss() {
  auto losses = torch::zeros({2}, torch::TensorOptions().dtype(torch::kFloat32).device(device()));
  if (is_last_stage()) {
    auto loss = total_loss_.to(torch::kFloat32).reshape({});
    if (gradient_accumulation_steps() > 1) loss = loss / static_cast<double>(gradient_accumulation_steps());
    auto agg = loss.reshape({1}).clone();
    if (dp_world_size() > 1) {
      groups()->data_parallel()->all_reduce(agg);
      agg /= static_cast<double>(dp_world_size());
    }
    losses[0] = loss;
    losses[1] = agg[0];
  }
  pipe_group_->broadcast(losses, num_stages_ - 1);
  return losses[1].clone();
}

PipelineInitializeResult initialize(std::shared_ptr<pipe::PipelineModule> model, InitializeOptions options) {
  if (!model) throw EngineError("deepspeed.initialize requires a model");
  if (options.mpu && options.mpu != model->mpu()) {
    throw EngineError("initialize: a PipelineModule brings its own groups (its mpu()); do not pass another mpu");
  }
  options.mpu = model->mpu();
  auto r = initialize(torch::nn::AnyModule(model), model, std::move(options), engine_factory<PipelineEngine>());
  return {std::static_pointer_cast<PipelineEngine>(r.engine), r.optimizer, r.training_dataloader, r.lr_scheduler};
}

PipelineInitializeResult initialize(const CLI::App& app, std::shared_ptr<pipe::PipelineModule> model,
                                    InitializeOptions options) {
  if (!model) throw EngineError("deepspeed.initialize requires a model");
  if (options.mpu && options.mpu != model->mpu()) {
    throw EngineError("initialize: a PipelineModule brings its own groups (its mpu()); do not pass another mpu");
  }
  options.mpu = model->mpu();
  auto r = initialize(app, torch::nn::AnyModule(model), model, std::move(options), engine_factory<PipelineEngine>());
  return {std::static_pointer_cast<PipelineEngine>(r.engine), r.optimizer, r.training_dataloader, r.lr_scheduler};
}

}  // namespace deepspeed
