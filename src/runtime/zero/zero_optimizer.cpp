#include "runtime/zero/zero_optimizer.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <unordered_map>

#include <torch/cuda.h>

#include <deepspeed/errors.h>

#include "runtime/step/pinned_host_memory.h"
#include "runtime/step/precision.h"
#include "runtime/zero/zeropp_settings.h"

namespace deepspeed {
namespace {

torch::Tensor flat_view(const torch::Tensor& t) { return t.detach().view(-1); }

// The parameters ZeRO manages: the optimizer's, in the module's registration order, each with
// its optimizer group. `stage3` (ZeRO-3's settings, else null): the persistent ones (smaller than
// stage3_param_persistence_threshold, within stage3_model_persistence_threshold in all) come
// first, so that the plan, which walks the list last first, puts them into each group's last
// buckets, away from the parameters that come and go.
struct ManagedParameters {
  std::vector<torch::Tensor> parameters;
  std::vector<int64_t> groups;
  std::vector<int64_t> numels;
  std::vector<bool> persistent;
};

ManagedParameters managed_parameters(const std::vector<torch::Tensor>& module_parameters, const Optimizer& optimizer,
                                     const ZeroConfig* stage3, const std::vector<bool>& scope) {
  std::unordered_map<const void*, int64_t> group_of;
  for (int64_t g = 0; g < static_cast<int64_t>(optimizer.param_groups().size()); ++g) {
    if (!scope.empty() && !scope[static_cast<size_t>(g)]) continue;
    for (const auto& p : optimizer.param_groups()[g].params) {
      if (!group_of.emplace(p.unsafeGetTensorImpl(), g).second) {
        throw EngineError("a tensor appears twice in the optimizer's parameter groups");
      }
    }
  }
  ManagedParameters m;
  for (const auto& p : module_parameters) {
    auto it = group_of.find(p.unsafeGetTensorImpl());
    if (it == group_of.end()) continue;
    m.parameters.push_back(p);
    m.groups.push_back(it->second);
    m.numels.push_back(p.numel());
    group_of.erase(it);
  }
  if (!group_of.empty()) {
    throw EngineError("the optimizer holds a tensor that is not a trainable parameter of the model; under ZeRO "
                      "every optimizer parameter must be one of the module's parameters");
  }
  m.persistent.assign(m.parameters.size(), false);
  if (!stage3) return m;
  int64_t budget = stage3->stage3_model_persistence_threshold;
  std::vector<size_t> order;
  for (size_t i = 0; i < m.parameters.size(); ++i) {
    if (m.numels[i] < stage3->stage3_param_persistence_threshold && m.numels[i] <= budget) {
      m.persistent[i] = true;
      budget -= m.numels[i];
      order.push_back(i);
    }
  }
  for (size_t i = 0; i < m.parameters.size(); ++i) {
    if (!m.persistent[i]) order.push_back(i);
  }
  auto permute = [&order](const auto& v) {
    std::decay_t<decltype(v)> out;
    for (size_t i : order) out.push_back(v[i]);
    return out;
  };
  return {permute(m.parameters), permute(m.groups), permute(m.numels), permute(m.persistent)};
}

// With model parallelism on a tensor rank > 0: the runs of this rank's gradient partitions
// that hold parameters the norm counts, as (group, offset, length), merged where they touch
// (padding never counts; it is zero anyway).
std::vector<std::array<int64_t, 3>> counted_partition_runs(const BucketPlan& plan, int64_t rank,
                                                           const std::vector<torch::Tensor>& parameters,
                                                           const ModelParallelGradients& model_parallel) {
  std::vector<std::array<int64_t, 3>> runs;
  for (int64_t i = 0; i < static_cast<int64_t>(plan.buckets.size()); ++i) {
    const int64_t group = plan.buckets[static_cast<std::size_t>(i)].group;
    for_each_owned_run(plan, i, rank, [&](const OwnedRun& run) {
      if (!model_parallel.counts(parameters[run.param])) return;
      if (!runs.empty() && runs.back()[0] == group && runs.back()[1] + runs.back()[2] == run.partition_offset) {
        runs.back()[2] += run.length;
      } else {
        runs.push_back({group, run.partition_offset, run.length});
      }
    });
  }
  return runs;
}

// ZeRO-3's parameter shards: where they live and how far ahead they are gathered.
PartitionedParameters::Options stage3_options(const DeepSpeedConfig& config, torch::ScalarType model_dtype,
                                              torch::Device device) {
  const auto& z = config.zero_optimization;
  PartitionedParameters::Options po;
  po.limits.prefetch_elements = z.stage3_prefetch_bucket_size;
  po.limits.max_live_elements = z.stage3_max_live_parameters;
  po.limits.max_reuse_distance = z.stage3_max_reuse_distance;
  po.dtype = model_dtype;
  const bool offload_param = z.offload_param_enabled();
  po.shard_device = offload_param ? torch::Device(torch::kCPU) : device;
  po.pin_shards = offload_param && device.is_cuda() && z.offload_param->pin_memory;
  if (offload_param && z.offload_param->device == "nvme") {
    po.nvme_path = z.offload_param->nvme_path;
    po.aio = config.aio;
  }
  return po;
}

}  // namespace

// The gradient partitions hold exactly what the reduction gives, so for a bf16/fp16 model
// reduced in its own dtype they are kept in that dtype (half the memory of fp32; DeepSpeed's
// stage 1/2 keeps them so too) whenever nothing is accumulated in them: stage 1 accumulates
// micro batches in .grad and reduces once, stages 2 and 3 reduce every micro batch into the
// partitions, so there only with one micro batch per step, or when data_types.grad_accum_dtype
// asks for the model's dtype. Otherwise, and always when offloaded (the CPU optimizer reads
// fp32), fp32: accumulation in fp32, as before.
torch::ScalarType ZeroOptimizer::gradient_partition_dtype(const DeepSpeedConfig& config,
                                                          torch::ScalarType comm_dtype) const {
  if (offload_ || model_dtype_ == torch::kFloat32 || comm_dtype != model_dtype_ || fp32_accumulation_) {
    return torch::kFloat32;
  }
  const auto& accum = config.data_types.grad_accum_dtype;
  const bool model_dtype_accumulation = accum && *accum == (model_dtype_ == torch::kBFloat16 ? "bf16" : "fp16");
  const bool accumulates = stage_ >= 2 && config.gradient_accumulation_steps > 1;
  return accumulates && !model_dtype_accumulation ? torch::kFloat32 : model_dtype_;
}

ZeroOptimizer::ZeroOptimizer(std::vector<torch::Tensor> parameters, std::shared_ptr<comm::ProcessGroup> group,
                             const DeepSpeedConfig& config, std::shared_ptr<Optimizer> optimizer,
                             ModelParallelGradients model_parallel, ZeroOptimizerScope scope)
    : OptimizerWrapper(loss_scaler_options(config, LossScaleAlgorithm::Zero), std::move(model_parallel)),
      group_(std::move(group)),
      scope_(std::move(scope)),
      optimizer_(std::move(optimizer)),
      stage_(config.zero_stage()),
      // fp16: always (loss scaling); bf16: bf16.check_grad_overflow; fp32: unless
      // "nonfinite_gradients" is "apply" (DeepSpeed checks fp32 too and skips the step).
      check_overflow_(config.fp16_enabled()   ? true
                      : config.bf16_enabled() ? config.bf16.check_grad_overflow
                                              : config.nonfinite_gradients != "apply"),
      fp32_(!config.fp16_enabled() && !config.bf16_enabled()),
      offload_(config.zero_optimization.offload_optimizer_enabled()),
      model_dtype_(model_dtype(config)) {
  if (!optimizer_) throw EngineError("ZeRO needs an optimizer");
  const auto& accum = config.data_types.grad_accum_dtype;
  fp32_accumulation_ = model_dtype_ != torch::kFloat32 && accum && *accum == "fp32";
  const auto device = group_->device();
  master_device_ = offload_ ? torch::Device(torch::kCPU) : device;

  if (!scope_.groups.empty() && scope_.groups.size() != optimizer_->param_groups().size()) {
    throw EngineError("ZeroOptimizer: the scope names " + std::to_string(scope_.groups.size()) +
                      " groups; the optimizer has " + std::to_string(optimizer_->param_groups().size()));
  }
  auto managed = managed_parameters(parameters, *optimizer_, stage_ == 3 ? &config.zero_optimization : nullptr,
                                    scope_.groups);
  parameters_ = std::move(managed.parameters);
  const auto& groups = managed.groups;
  const auto& numels = managed.numels;
  const auto& persistent = managed.persistent;
  for (const auto& p : parameters_) {
    if (!p.is_contiguous()) throw EngineError("ZeRO needs contiguous parameters");
  }

  auto options = reducer_options(config);
  if (!group_->supports(options.comm_dtype)) options.comm_dtype = torch::kFloat32;
  options.mode = GradientReducer::Mode::ReduceScatter;
  options.divisor = scope_.gradient_divisor;
  options.release_gradients = true;
  // overlap_comm: keep one bucket in flight while backward goes on; off: wait for each.
  options.max_in_flight = config.zero_optimization.overlap_comm_enabled() ? 2 : 0;
  const int64_t n = group_->size();
  // ZeRO++ (stage 3): qgZ's groups first, then hpZ's, in the same order on every rank.
  ZeroPlusPlusSettings zeropp;
  if (stage_ == 3) zeropp = zeropp_settings(config.zero_optimization, *group_);
  if (zeropp.quantized_gradients) {
    quantized_reduce_ = std::make_shared<QuantizedReduceScatter>(group_, zeropp.node_size);
    options.reduce_scatter = [q = quantized_reduce_](torch::Tensor& flat) { (*q)(flat); };
  }
  std::shared_ptr<comm::ProcessGroup> hpz_group;
  if (zeropp.hpz_partition_size > 1) hpz_group = secondary_partition_group(*group_, zeropp.hpz_partition_size);
  groups_ = groups;
  bucket_elements_ = deepspeed::bucket_elements(config, options.comm_dtype);
  if (stage_ == 3 && config.zero_optimization.stage3_prefetch_bucket_size > 0) {
    bucket_elements_ = std::min(bucket_elements_, config.zero_optimization.stage3_prefetch_bucket_size);
  }
  // Stage 3: persistent parameters get buckets of their own (those stay gathered).
  if (stage_ == 3) {
    for (bool keep : persistent) classes_.push_back(keep ? 1 : 0);
  }
  auto plan = plan_buckets(numels, groups, bucket_elements_, n, classes_);

  // This rank's fp32 partition of each group, from the (rank-0 broadcast) parameters.
  const int64_t group_count = static_cast<int64_t>(optimizer_->param_groups().size());
  const auto master_options = torch::TensorOptions().dtype(torch::kFloat32).device(master_device_);
  const bool pin = offload_ && device.is_cuda() && config.zero_optimization.offload_optimizer->pin_memory;
  // Pinned: exactly the size (runtime/pinned_host_memory.h), not rounded up to a power of two.
  auto master_partition = [&](int64_t size) {
    if (!pin) return torch::zeros({size}, master_options);
    auto t = pinned_host_empty(size, torch::kFloat32);
    return pinned_host_memory_is_exact() ? t : t.zero_();
  };
  grad_partition_dtype_ = gradient_partition_dtype(config, options.comm_dtype);
  for (int64_t g = 0; g < group_count; ++g) {
    masters_.push_back(master_partition(g < static_cast<int64_t>(plan.group_size.size()) ? plan.partition_size(g) : 0));
  }
  // Stage 3 partitions the parameters as they come (whole, possibly still on the CPU) before
  // the reducer hooks them; below it they are on the device and the partitions copy them.
  if (stage_ == 3) partition_whole_parameters(parameters_, plan, persistent, *group_, model_dtype_, masters_);
  reducer_ = std::make_unique<GradientReducer>(
      parameters_, group_, options, std::move(plan),
      [this](int64_t bucket, const torch::Tensor& slice) { gradients_->accumulate(bucket, slice); });
  // Device partitions are given back after each step (FSDP2 frees its sharded gradients the
  // same way); pinned host ones stay: page-locking tens of GiB each step would cost more than
  // it saves.
  GradientPartitions::Options go;
  go.device = master_device_;
  go.dtype = grad_partition_dtype_;
  go.pinned = pin;
  go.release_between_steps = !offload_;
  go.track_slice_norms = offload_ && !model_parallel_.filters();
  gradients_ = std::make_unique<GradientPartitions>(reducer_->plan(), group_count, go);
  for (int64_t g = 0; g < group_count; ++g) {
    if (!in_scope(static_cast<size_t>(g))) continue;  // another ZeroOptimizer's
    auto& params = optimizer_->param_groups()[g].params;
    params.clear();
    params.push_back(masters_[g]);
    // A half-precision partition is no fp32 master's .grad: step_from gets it explicitly.
    if (grad_partition_dtype_ == torch::kFloat32) masters_[g].mutable_grad() = gradients_->tensors()[g];
  }
  if (model_parallel_.filters()) counted_runs_ = counted_partition_runs(reducer_->plan(), group_->rank(), parameters_, model_parallel_);
  if (stage_ != 3) refresh_partitions_from_parameters();
  if (stage_ == 3) {
    auto po = stage3_options(config, model_dtype_, device);
    po.quantize_weights = zeropp.quantized_weights;
    po.secondary_group = hpz_group;
    partitioned_ = std::make_unique<PartitionedParameters>(parameters_, reducer_->plan(), persistent, group_, po, masters_);
  }
}

ZeroOptimizer::~ZeroOptimizer() {
  try {
    wait_for_host_copies();
  } catch (...) {  // a failed device is reported by whatever used it; a destructor must not throw
  }
}

void ZeroOptimizer::before_forward() {
  if (partitioned_) partitioned_->begin_forward();
}

void ZeroOptimizer::after_forward(bool backward_follows) {
  if (partitioned_) partitioned_->end_forward(backward_follows);
}

void ZeroOptimizer::gather_all_parameters() {
  if (partitioned_) partitioned_->gather_all();
}

void ZeroOptimizer::release_all_parameters() {
  if (partitioned_) partitioned_->release_all();
}

void ZeroOptimizer::refresh_partitions_from_parameters() {
  torch::NoGradGuard no_grad;
  wait_for_host_copies();
  if (partitioned_) partitioned_->gather_all();
  const auto& plan = reducer_->plan();
  for (int64_t i = 0; i < static_cast<int64_t>(plan.buckets.size()); ++i) {
    const auto& b = plan.buckets[static_cast<std::size_t>(i)];
    auto& master = masters_[b.group];
    master.narrow(0, b.group_offset / plan.partitions, b.slice).zero_();  // the padding stays zero
    for_each_owned_run(plan, i, group_->rank(), [&](const OwnedRun& run) {
      master.narrow(0, run.partition_offset, run.length)
          .copy_(flat_view(parameters_[run.param]).narrow(0, run.param_offset, run.length));
    });
  }
  if (partitioned_) partitioned_->set_shards(masters_);
}

void ZeroOptimizer::load_partitions(const std::vector<torch::Tensor>& partitions) {
  wait_for_host_copies();
  if (partitions.size() != masters_.size()) {
    throw EngineError("load_partitions: expected " + std::to_string(masters_.size()) + " groups, got " +
                      std::to_string(partitions.size()));
  }
  torch::NoGradGuard no_grad;
  for (size_t g = 0; g < masters_.size(); ++g) {
    if (partitions[g].numel() != masters_[g].numel()) {
      throw EngineError("load_partitions: group " + std::to_string(g) + " has " + std::to_string(partitions[g].numel()) +
                        " elements, this rank's partition " + std::to_string(masters_[g].numel()));
    }
    masters_[g].copy_(partitions[g].reshape(-1));
  }
  gather_parameters();
}

void ZeroOptimizer::wait_for_host_copies() {
  if (!host_copies_in_flight_ && !(gradients_ && gradients_->copies_in_flight())) return;
  const auto device = group_->device();
  torch::cuda::synchronize(device.has_index() ? device.index() : -1);
  host_copies_in_flight_ = false;
  if (gradients_) gradients_->copies_done();
}

void ZeroOptimizer::before_backward(bool boundary) {
  if (partitioned_) partitioned_->begin_backward();
  reducer_->prepare(stage_ >= 2 || fp32_accumulation_ || boundary);
}

void ZeroOptimizer::after_backward(bool /*boundary*/) {
  reducer_->finalize();
  if (partitioned_) partitioned_->end_backward();
}

void ZeroOptimizer::begin_step() {
  wait_for_host_copies();
  gradients_->complete();
}

OptimizerWrapper::GradientVerdict ZeroOptimizer::check_gradients(bool /*norm_wanted*/) {
  GradientVerdict v;
  bool bad = false;
  if (check_overflow_ && offload_) {
    // Offloaded: a pass over gradients in CPU memory is most of the step, so the overflow
    // check reads the norm's pass instead of making its own: the sum of squares is inf or
    // NaN when a gradient is (and, as DeepSpeed's norm check, when it overflows float).
    v.squared_norm = global_squared_norm();
    bad = !std::isfinite(v.squared_norm.item<double>());
  } else if (check_overflow_) {
    auto flag = torch::tensor({has_inf_or_nan(gradients_->tensors(), fp32_ ? torch::kFloat64 : torch::kFloat32) ? 1.0f : 0.0f},
                              torch::TensorOptions().dtype(torch::kFloat32).device(group_->device()));
    group_->all_reduce(flag, comm::ReduceOp::Max);
    bad = model_parallel_.any(flag.item<float>() > 0.0f);
  }
  (fp32_ ? v.nonfinite : v.overflow) = bad;
  return v;
}

// Every data-parallel rank's partition adds to the replica's norm, and every model-parallel
// rank's replica part to the model's.
torch::Tensor ZeroOptimizer::global_squared_norm() {
  auto sq = partition_squared_norm();
  model_parallel_.sum(sq);
  return sq;
}

// Offloaded ZeRO-3 shards beside offloaded masters are written in the optimizer's pass.
bool ZeroOptimizer::shards_written_by_optimizer() const { return partitioned_ && masters_.front().is_cpu(); }

// One flat partition per group, each the group's only tensor: the partitions are in group order.
void ZeroOptimizer::step_inputs(std::vector<torch::Tensor>& grads, std::vector<torch::Tensor>& copies) const {
  const auto& partitions = gradients_->tensors();
  grads.resize(partitions.size());
  for (size_t g = 0; g < partitions.size(); ++g) {
    if (in_scope(g)) grads[g] = partitions[g];
  }
  if (shards_written_by_optimizer()) copies = partitioned_->step_copies();
}

void ZeroOptimizer::after_update() {
  // An optimizer without a half-precision path made fp32 copies of the gradients as .grad.
  if (grad_partition_dtype_ != torch::kFloat32) {
    for (size_t g = 0; g < masters_.size(); ++g) {
      if (in_scope(g)) masters_[g].mutable_grad().reset();
    }
  }
}

void ZeroOptimizer::update(const torch::Tensor& grad_scale) {
  std::vector<torch::Tensor> grads, copies;
  step_inputs(grads, copies);
  optimizer_->step_from(grads, grad_scale, copies);
  after_update();
}

void ZeroOptimizer::write_model_copies() {
  if (partitioned_) {
    partitioned_->set_shards(masters_, shards_written_by_optimizer());
  } else {
    gather_parameters();
  }
}

// Computed where the partitions are and, on the GPU, not read back.
torch::Tensor ZeroOptimizer::partition_squared_norm() {
  torch::Tensor local;
  const auto& partitions = gradients_->tensors();
  if (auto slices = gradients_->slice_squared_norm(); slices.defined()) {
    // Offloaded, each slice reduced once: the sum of the slices' squares taken on the GPU as
    // they went by saves a pass over the partitions in host memory.
    local = slices;
  } else if (model_parallel_.filters()) {
    std::vector<torch::Tensor> runs;
    for (const auto& [g, offset, length] : counted_runs_) runs.push_back(partitions[g].narrow(0, offset, length));
    local = squared_norm(runs, master_device_);
  } else {
    local = squared_norm(partitions, master_device_);
  }
  auto sq = local.to(group_->device()).reshape({1});
  group_->all_reduce(sq);
  return sq.reshape({}).to(master_device_);
}

void ZeroOptimizer::gather_parameters() {
  torch::NoGradGuard no_grad;
  if (partitioned_) {
    // Stage 3: the new shards are this rank's masters; parameters are gathered on use.
    partitioned_->set_shards(masters_);
    return;
  }
  const auto& plan = reducer_->plan();
  const int64_t rank = group_->rank();
  const auto device = group_->device();
  struct Pending {
    int64_t bucket;
    torch::Tensor buffer;
    compat::WorkPtr work;
  };
  std::deque<Pending> pending;
  const auto gather_dtype = group_->supports(model_dtype_) ? model_dtype_ : torch::kFloat32;
  auto finish = [&] {
    auto& f = pending.front();
    if (f.work) group_->wait(f.work, "all_gather");
    for (const auto& e : plan.buckets[f.bucket].entries) {
      flat_view(parameters_[e.param]).narrow(0, e.param_offset, e.length).copy_(f.buffer.narrow(0, e.bucket_offset, e.length));
    }
    pending.pop_front();
  };
  for (int64_t i = 0; i < static_cast<int64_t>(plan.buckets.size()); ++i) {
    const auto& b = plan.buckets[i];
    auto buffer = torch::empty({b.size}, torch::TensorOptions().dtype(gather_dtype).device(device));
    // Offloaded masters: a copy that does not wait converts on the GPU (a waiting one converts
    // on the CPU into pageable memory first, then copies that at a fraction of PCIe speed);
    // the next step waits for it before the optimizer writes the masters again.
    const auto master = masters_[b.group].narrow(0, b.group_offset / plan.partitions, b.slice);
    buffer.narrow(0, rank * b.slice, b.slice).copy_(master, /*non_blocking=*/true);
    if (master.is_cpu() && device.is_cuda()) host_copies_in_flight_ = true;
    compat::WorkPtr work;
    if (group_->size() > 1) work = group_->all_gather_async(buffer);
    pending.push_back({i, buffer, work});
    if (pending.size() > 2) finish();
  }
  while (!pending.empty()) finish();
}

void ZeroOptimizer::zero_grad() {
  gradients_->clear();
  for (auto& p : parameters_) {
    if (p.grad().defined()) p.mutable_grad().reset();
  }
}

MemoryReport ZeroOptimizer::memory_report() const {
  MemoryReport r;
  for (const auto& p : parameters_) {
    if (!partitioned_) r.parameters += p.numel() * static_cast<int64_t>(p.element_size());
    if (p.grad().defined()) r.gradients += p.grad().numel() * static_cast<int64_t>(p.grad().element_size());
  }
  for (size_t g = 0; g < masters_.size(); ++g) {
    r.master_weights += masters_[g].numel() * static_cast<int64_t>(masters_[g].element_size());
  }
  r.gradients += gradients_->bytes_held();
  r.parameters_peak = r.parameters;
  if (partitioned_) {
    r.parameters = partitioned_->held_bytes();
    r.parameters_peak = partitioned_->peak_held_bytes();
  }
  r.optimizer_states = optimizer_state_bytes(*optimizer_);
  r.communication_buffers = reducer_->buffer_bytes();
  return r;
}

}  // namespace deepspeed
