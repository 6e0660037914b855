#include "runtime/zero/zero_optimizer.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <unordered_map>

#include <torch/cuda.h>

#include <deepspeed/errors.h>

#include "runtime/step/pinned_host_memory.h"
#include "runtime/step/precision.h"
#include "runtime/zero/tensor_storage.h"

namespace deepspeed {
namespace {

torch::Tensor flat_view(const torch::Tensor& t) { return t.detach().view(-1); }

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
                             ModelParallelGradients model_parallel)
    : OptimizerWrapper(loss_scaler_options(config, LossScaleAlgorithm::Zero), std::move(model_parallel)),
      group_(std::move(group)),
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

  // The managed parameters are the optimizer's, in the module's registration order.
  std::unordered_map<const void*, int64_t> group_of;
  for (int64_t g = 0; g < static_cast<int64_t>(optimizer_->param_groups().size()); ++g) {
    for (const auto& p : optimizer_->param_groups()[g].params) {
      if (!group_of.emplace(p.unsafeGetTensorImpl(), g).second) {
        throw EngineError("a tensor appears twice in the optimizer's parameter groups");
      }
    }
  }
  std::vector<int64_t> groups;
  std::vector<int64_t> numels;
  for (auto& p : parameters) {
    auto it = group_of.find(p.unsafeGetTensorImpl());
    if (it == group_of.end()) continue;
    parameters_.push_back(p);
    groups.push_back(it->second);
    numels.push_back(p.numel());
    group_of.erase(it);
  }
  std::vector<bool> persistent(parameters_.size(), false);
  if (stage_ == 3) {
    // Persistent parameters first: the plan walks the list last first, so they end up in
    // each group's last buckets, away from the parameters that come and go.
    const auto& z = config.zero_optimization;
    int64_t budget = z.stage3_model_persistence_threshold;
    std::vector<size_t> order;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      if (numels[i] < z.stage3_param_persistence_threshold && numels[i] <= budget) {
        persistent[i] = true;
        budget -= numels[i];
        order.push_back(i);
      }
    }
    for (size_t i = 0; i < parameters_.size(); ++i) {
      if (!persistent[i]) order.push_back(i);
    }
    auto permute = [&order](auto v) {
      decltype(v) out;
      for (size_t i : order) out.push_back(v[i]);
      return out;
    };
    parameters_ = permute(parameters_);
    groups = permute(groups);
    numels = permute(numels);
    persistent = permute(persistent);
  }
  if (!group_of.empty()) {
    throw EngineError("the optimizer holds a tensor that is not a trainable parameter of the model; under ZeRO "
                      "every optimizer parameter must be one of the module's parameters");
  }
  for (const auto& p : parameters_) {
    if (!p.is_contiguous()) throw EngineError("ZeRO needs contiguous parameters");
  }

  auto options = reducer_options(config);
  if (!group_->supports(options.comm_dtype)) options.comm_dtype = torch::kFloat32;
  options.mode = GradientReducer::Mode::ReduceScatter;
  options.release_gradients = true;
  // overlap_comm: keep one bucket in flight while backward goes on; off: wait for each.
  options.max_in_flight = config.zero_optimization.overlap_comm_enabled() ? 2 : 0;
  const int64_t n = group_->size();
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
  // Gradient partitions on the device are given back after each step and taken again at the
  // next window's first gradient, so they are not held through forward, where activations
  // peak (FSDP2 frees its sharded gradients the same way): they start without memory. Pinned
  // host ones stay: page-locking tens of GiB each step would cost more than it saves. Either
  // way they need no zeros (accumulate_slice writes a step's first slice).
  release_gradient_partitions_ = !offload_;
  slice_norms_usable_ = offload_ && !model_parallel_.filters();
  slice_norms_valid_ = slice_norms_usable_;
  partitions_pinned_ = pin;
  grad_partition_dtype_ = gradient_partition_dtype(config, options.comm_dtype);
  for (int64_t g = 0; g < group_count; ++g) {
    const int64_t size = g < static_cast<int64_t>(plan.group_size.size()) ? plan.partition_size(g) : 0;
    masters_.push_back(master_partition(size));
    if (pin) {
      master_grads_.push_back(pinned_host_empty(size, torch::kFloat32));
    } else {
      master_grads_.push_back(torch::empty({size}, master_options.dtype(grad_partition_dtype_)));
      if (release_gradient_partitions_) free_storage(master_grads_.back());
    }
  }
  for (int64_t g = 0; g < group_count; ++g) {
    auto& params = optimizer_->param_groups()[g].params;
    params.clear();
    params.push_back(masters_[g]);
    // A half-precision partition is no fp32 master's .grad: step_from gets it explicitly.
    if (grad_partition_dtype_ == torch::kFloat32) masters_[g].mutable_grad() = master_grads_[g];
  }
  // Stage 3 partitions the parameters as they come (whole, possibly still on the CPU) before
  // the reducer hooks them; below it they are on the device and the partitions copy them.
  if (stage_ == 3) partition_whole_parameters(parameters_, plan, persistent, *group_, model_dtype_, masters_);
  reducer_ = std::make_unique<GradientReducer>(
      parameters_, group_, options, std::move(plan),
      [this](int64_t bucket, const torch::Tensor& slice) { accumulate_slice(bucket, slice); });
  slice_written_.assign(reducer_->plan().buckets.size(), 0);
  if (model_parallel_.filters()) {
    // The runs of this rank's slices that hold counted parameters (padding never counts; it
    // is zero anyway), merged where they touch.
    const auto& p = reducer_->plan();
    for (int64_t i = 0; i < static_cast<int64_t>(p.buckets.size()); ++i) {
      const int64_t group = p.buckets[static_cast<std::size_t>(i)].group;
      for_each_owned_run(p, i, group_->rank(), [&](const OwnedRun& run) {
        if (!model_parallel_.counts(parameters_[run.param])) return;
        auto& runs = counted_runs_;
        if (!runs.empty() && runs.back()[0] == group && runs.back()[1] + runs.back()[2] == run.partition_offset) {
          runs.back()[2] += run.length;
        } else {
          runs.push_back({group, run.partition_offset, run.length});
        }
      });
    }
  }
  if (stage_ != 3) refresh_partitions_from_parameters();
  if (stage_ == 3) {
    const auto& z = config.zero_optimization;
    PartitionedParameters::Options po;
    po.limits.prefetch_elements = z.stage3_prefetch_bucket_size;
    po.limits.max_live_elements = z.stage3_max_live_parameters;
    po.limits.max_reuse_distance = z.stage3_max_reuse_distance;
    po.dtype = model_dtype_;
    const bool offload_param = z.offload_param_enabled();
    po.shard_device = offload_param ? torch::Device(torch::kCPU) : device;
    po.pin_shards = offload_param && device.is_cuda() && z.offload_param->pin_memory;
    if (offload_param && z.offload_param->device == "nvme") {
      po.nvme_path = z.offload_param->nvme_path;
      po.aio = config.aio;
    }
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

void ZeroOptimizer::accumulate_slice(int64_t bucket, const torch::Tensor& slice) {
  const auto& plan = reducer_->plan();
  const auto& b = plan.buckets[bucket];
  hold_gradient_partition(b.group);
  auto dst = master_grads_[b.group].narrow(0, b.group_offset / plan.partitions, b.slice);
  // The first slice of a step is written, later ones (accumulation) added: the partition is
  // never zeroed as a pass of its own (at 20B parameters offloaded, 81 GB of host memory).
  const bool first = !slice_written_[bucket];
  slice_written_[bucket] = 1;
  if (slice.device() == dst.device() && slice.scalar_type() == dst.scalar_type()) {
    first ? dst.copy_(slice) : dst.add_(slice);
  } else if (slice.is_cuda() && dst.is_cpu()) {
    note_offloaded_slice(slice, first);
    // Offloaded gradients: converted on the GPU and copied into pinned memory (a copy into
    // pageable memory goes through the driver's bounce buffer at a fraction of the PCIe
    // speed, and .to(kCPU, kFloat32) of a bf16 slice converted on the CPU besides). Pinned
    // partitions take the first slice straight and without waiting for it: the copy runs in
    // stream order while backward goes on, and step() waits for it (wait_for_host_copies).
    // The rest goes through the staging buffer (a blocking copy, so also after any earlier
    // one into the same place) and is added on the CPU by ATen's threads.
    if (first && partitions_pinned_) {
      dst.copy_(slice.to(torch::kFloat32), /*non_blocking=*/true);
      host_copies_in_flight_ = true;
      return;
    }
    const int64_t n = slice.numel();
    if (!grad_staging_.defined() || grad_staging_.numel() < n) {
      grad_staging_ = torch::empty({n}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
    }
    auto staged = grad_staging_.narrow(0, 0, n);
    staged.copy_(slice.to(torch::kFloat32));
    first ? dst.copy_(staged) : dst.add_(staged);
  } else {
    first ? dst.copy_(slice) : dst.add_(slice.to(dst.device(), torch::kFloat32));
  }
}

void ZeroOptimizer::note_offloaded_slice(const torch::Tensor& slice, bool first) {
  if (!first) {
    slice_norms_valid_ = false;  // accumulated: the partition's norm is not the slices'
    return;
  }
  if (!slice_norms_valid_) return;
  auto sq = squared_norm({slice}, slice.device()).to(torch::kFloat64);
  slice_squared_norms_ = slice_squared_norms_.defined() ? slice_squared_norms_ + sq : sq;
}

void ZeroOptimizer::wait_for_host_copies() {
  if (!host_copies_in_flight_) return;
  const auto device = group_->device();
  torch::cuda::synchronize(device.has_index() ? device.index() : -1);
  host_copies_in_flight_ = false;
}

void ZeroOptimizer::zero_unwritten_slices() {
  const auto& plan = reducer_->plan();
  for (size_t i = 0; i < plan.buckets.size(); ++i) {
    if (slice_written_[i]) continue;
    const auto& b = plan.buckets[i];
    hold_gradient_partition(b.group);
    master_grads_[b.group].narrow(0, b.group_offset / plan.partitions, b.slice).zero_();
    slice_written_[i] = 1;
  }
}

void ZeroOptimizer::before_backward(bool boundary) {
  if (partitioned_) partitioned_->begin_backward();
  reducer_->prepare(stage_ >= 2 || fp32_accumulation_ || boundary);
}

void ZeroOptimizer::after_backward(bool /*boundary*/) {
  reducer_->finalize();
  if (partitioned_) partitioned_->end_backward();
}

OptimizerWrapper::StepOutcome ZeroOptimizer::step(double gradient_clipping) {
  torch::NoGradGuard no_grad;
  StepOutcome out;
  const auto device = group_->device();
  bool overflow = false;
  wait_for_host_copies();
  zero_unwritten_slices();
  // Every data-parallel rank's partition adds to the replica's norm, and every model-parallel
  // rank's replica part to the model's.
  auto global_squared_norm = [&] {
    auto sq = partition_squared_norm();
    model_parallel_.sum(sq);
    return sq;
  };
  torch::Tensor sq;
  if (check_overflow_ && offload_) {
    // Offloaded: a pass over gradients in CPU memory is most of the step, so the overflow
    // check reads the norm's pass instead of making its own: the sum of squares is inf or
    // NaN when a gradient is (and, as DeepSpeed's norm check, when it overflows float).
    sq = global_squared_norm();
    overflow = !std::isfinite(sq.item<double>());
  } else if (check_overflow_) {
    auto flag = torch::tensor({has_inf_or_nan(master_grads_, fp32_ ? torch::kFloat64 : torch::kFloat32) ? 1.0f : 0.0f},
                              torch::TensorOptions().dtype(torch::kFloat32).device(device));
    group_->all_reduce(flag, comm::ReduceOp::Max);
    overflow = model_parallel_.any(flag.item<float>() > 0.0f);
  }
  // DeepSpeed unscales with the scale after its update (on a growth step, the doubled one),
  // but reports the norm in terms of the scale the gradients were computed with.
  const double prev_scale = scaler_.scale();
  out.messages = scaler_.update(overflow);
  if (overflow) {
    out.nonfinite = fp32_;
    zero_grad();
    return out;
  }
  if (!sq.defined()) sq = global_squared_norm();
  out.grad_norm = sq.to(torch::kFloat64).sqrt() / prev_scale;
  // One flat partition per group, each the group's only tensor: master_grads_ is in group order.
  // Offloaded ZeRO-3 shards beside offloaded masters are written in the optimizer's pass.
  const auto copies = partitioned_ && masters_.front().is_cpu() ? partitioned_->step_copies()
                                                                : std::vector<torch::Tensor>{};
  optimizer_->step_from(master_grads_, unscale_and_clip_factor(sq, scaler_.scale(), gradient_clipping), copies);
  // An optimizer without a half-precision path made fp32 copies of the gradients as .grad.
  if (grad_partition_dtype_ != torch::kFloat32) {
    for (auto& m : masters_) m.mutable_grad().reset();
  }
  zero_grad();
  if (partitioned_) {
    partitioned_->set_shards(masters_, !copies.empty());
  } else {
    gather_parameters();
  }
  out.applied = true;
  return out;
}

// Computed where the partitions are and, on the GPU, not read back.
torch::Tensor ZeroOptimizer::partition_squared_norm() {
  torch::Tensor local;
  if (slice_norms_valid_ && slice_squared_norms_.defined()) {
    // Offloaded, each slice reduced once: the sum of the slices' squares taken on the GPU as
    // they went by saves a pass over the partitions in host memory.
    local = slice_squared_norms_;
  } else if (model_parallel_.filters()) {
    std::vector<torch::Tensor> runs;
    for (const auto& [g, offset, length] : counted_runs_) runs.push_back(master_grads_[g].narrow(0, offset, length));
    local = squared_norm(runs, master_device_);
  } else {
    local = squared_norm(master_grads_, master_device_);
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

void ZeroOptimizer::hold_gradient_partition(int64_t group) { allocate_storage(master_grads_[group]); }

void ZeroOptimizer::zero_grad() {
  // Zero in effect: the next slices are written, not added (accumulate_slice).
  std::fill(slice_written_.begin(), slice_written_.end(), 0);
  slice_squared_norms_ = torch::Tensor();
  slice_norms_valid_ = slice_norms_usable_;
  for (auto& g : master_grads_) {
    if (release_gradient_partitions_) free_storage(g);
  }
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
    r.gradients += static_cast<int64_t>(master_grads_[g].storage().nbytes());  // 0 between steps when released
  }
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
