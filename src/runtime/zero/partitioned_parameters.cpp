#include "runtime/zero/partitioned_parameters.h"

#include <algorithm>

#include <deepspeed/errors.h>

#include "runtime/step/pinned_host_memory.h"
#include "runtime/zero/nvme_shard_store.h"
#include "runtime/zero/parameter_use_observer.h"
#include "runtime/zero/tensor_storage.h"

namespace deepspeed {
namespace {

// Writes without autograd seeing it: the values are the parameter's own, restored.
torch::Tensor untracked_flat(const torch::Tensor& p) { return p.variable_data().view(-1); }

// Buckets that hold a persistent parameter: they are never released.
std::vector<bool> persistent_buckets(const BucketPlan& plan, const std::vector<bool>& persistent) {
  std::vector<bool> out(plan.buckets.size(), false);
  for (size_t b = 0; b < plan.buckets.size(); ++b) {
    for (const auto& e : plan.buckets[b].entries) {
      if (persistent[e.param]) out[b] = true;
    }
  }
  return out;
}

bool owns_its_storage(const torch::Tensor& p) {
  const auto bytes = static_cast<int64_t>(p.storage().nbytes());
  return p.is_contiguous() && p.storage_offset() == 0 &&
         (bytes == 0 || bytes == p.numel() * static_cast<int64_t>(p.element_size()));
}

[[noreturn]] void throw_shared_storage() {
  throw EngineError("ZeRO stage 3 needs every parameter to own its storage (contiguous, not a view of another "
                    "tensor); a parameter shares or only partly uses its storage");
}

}  // namespace

void partition_whole_parameters(const std::vector<torch::Tensor>& parameters, const BucketPlan& plan,
                                const std::vector<bool>& persistent, comm::ProcessGroup& group,
                                torch::ScalarType dtype, const std::vector<torch::Tensor>& masters) {
  torch::NoGradGuard no_grad;
  const auto keep_bucket = persistent_buckets(plan, persistent);
  const int64_t rank = group.rank();
  for (size_t i = 0; i < parameters.size(); ++i) {
    const torch::Tensor& p = parameters[i];
    if (!owns_its_storage(p)) throw_shared_storage();
    // A new tensor unless the parameter already is on the device in `dtype`; the model's copy
    // (fp32 on the CPU, typically) goes as soon as the parameter points at it.
    torch::Tensor full = p.detach().to(group.device(), dtype);
    group.broadcast(full, 0);
    if (!full.is_same(p)) p.set_data(full);
    const torch::Tensor flat = p.detach().view(-1);
    bool keep = false;
    for (int64_t b : plan.buckets_of[i]) {
      keep = keep || keep_bucket[b];
      auto& master = masters[plan.buckets[b].group];
      for_each_owned_run(plan, b, rank, [&](const OwnedRun& run) {
        if (run.param != static_cast<int64_t>(i)) return;
        master.narrow(0, run.partition_offset, run.length).copy_(flat.narrow(0, run.param_offset, run.length));
      });
    }
    if (!keep) free_storage(p);
  }
}

PartitionedParameters::PartitionedParameters(std::vector<torch::Tensor> parameters, const BucketPlan& plan,
                                             const std::vector<bool>& persistent,
                                             std::shared_ptr<comm::ProcessGroup> group, Options options,
                                             const std::vector<torch::Tensor>& masters)
    : parameters_(std::move(parameters)),
      plan_(plan),
      group_(std::move(group)),
      options_(options),
      gather_dtype_(group_->supports(options.dtype) ? options.dtype : torch::kFloat32),
      persistent_bucket_(plan.buckets.size(), false),
      live_(plan.buckets.size(), false),
      pending_(plan.buckets.size()),
      delivered_(parameters_.size(), 0),
      schedule_({}, {}, options.limits) {
  torch::NoGradGuard no_grad;
  for (const auto& p : parameters_) {
    if (!owns_its_storage(p)) throw_shared_storage();
  }
  persistent_bucket_ = persistent_buckets(plan_, persistent);
  std::vector<int64_t> sizes;
  for (const auto& b : plan_.buckets) sizes.push_back(b.size);
  schedule_ = FetchSchedule(sizes, persistent_bucket_, options.limits);

  // The shards, from this rank's masters.
  // Where the masters already live on the shards' device, they are the shards: a gather
  // casts them into its buffer (as FSDP2 does), and no model-dtype copy is kept.
  if (options_.nvme_path) {
    nvme_ = std::make_unique<NvmeShardStore>(*options_.nvme_path, group_->rank(), options_.dtype, options_.aio, masters);
  }
  shards_are_masters_ = !nvme_ && !masters.empty() && masters.front().device() == options_.shard_device;
  for (const auto& m : masters) {
    if (nvme_) break;
    if (shards_are_masters_) {
      shards_.push_back(m);
      continue;
    }
    const auto o = torch::TensorOptions().dtype(options_.dtype).device(options_.shard_device);
    shards_.push_back(options_.pin_shards ? pinned_host_empty(m.numel(), options_.dtype) : torch::empty({m.numel()}, o));
    shards_.back().copy_(m);
  }

  // Persistent buckets count as gathered (their parameters are whole); the rest goes, where
  // partition_whole_parameters has not already released it.
  for (size_t b = 0; b < plan_.buckets.size(); ++b) {
    if (!persistent_bucket_[b]) continue;
    live_[b] = true;
    for (const auto& e : plan_.buckets[b].entries) ++delivered_[e.param];
  }
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (delivered_[i] == 0) {
      free_storage(parameters_[i]);
    } else {
      gathered_bytes_ += parameters_[i].numel() * static_cast<int64_t>(parameters_[i].element_size());
    }
  }
  peak_gathered_bytes_ = gathered_bytes_;
  if (options_.secondary_group) {
    secondary_ = std::make_unique<SecondaryPartition>(options_.secondary_group, static_cast<int64_t>(plan_.buckets.size()));
  }
  observer_ = std::make_unique<ParameterUseObserver>(parameters_,
                                                     [this](const std::vector<int64_t>& p) { use(p); });
}

PartitionedParameters::~PartitionedParameters() = default;

torch::Tensor PartitionedParameters::shard_of(int64_t bucket) const {
  const auto& b = plan_.buckets[bucket];
  if (nvme_) return nvme_->read(b.group, b.group_offset / plan_.partitions, b.slice);
  return shards_[b.group].narrow(0, b.group_offset / plan_.partitions, b.slice);
}

std::vector<bool> PartitionedParameters::live_or_pending() const {
  std::vector<bool> out(live_.size());
  for (size_t b = 0; b < live_.size(); ++b) out[b] = live_[b] || pending_[b].has_value();
  return out;
}

int64_t PartitionedParameters::live_buckets() const {
  int64_t n = 0;
  for (bool l : live_) n += l ? 1 : 0;
  return n;
}

void PartitionedParameters::start_gather(int64_t bucket) {
  if (live_[bucket] || pending_[bucket]) return;
  // qwZ quantizes the fetches of forward and backward only: gather_all() (checkpoints, reading
  // the weights) and the refresh after a step deliver the masters' own values, as DeepSpeed's
  // gathers outside its fetch path are not quantized.
  const bool quantize = options_.quantize_weights && phase_ != Phase::None;
  if (secondary_ && phase_ == Phase::Backward && secondary_->has(bucket)) {
    pending_[bucket] = Pending{
        std::make_unique<ShardGather>(secondary_->group(), secondary_->shard(bucket), gather_dtype_, quantize), true};
    ++secondary_gathers_;
  } else {
    pending_[bucket] = Pending{
        std::make_unique<ShardGather>(*group_, shard_of(bucket), gather_dtype_, quantize, options_.pin_shards), false};
  }
  ++gathers_;
}

void PartitionedParameters::finish_gather(int64_t bucket) {
  if (!pending_[bucket]) return;
  Pending p = std::move(*pending_[bucket]);
  pending_[bucket].reset();
  const torch::Tensor buffer = p.gather->finish(p.secondary ? secondary_->group() : *group_);
  if (secondary_ && phase_ == Phase::Forward && !persistent_bucket_[bucket]) secondary_->keep(bucket, buffer);
  for (const auto& e : plan_.buckets[bucket].entries) {
    const auto& param = parameters_[e.param];
    gathered_bytes_ += allocate_storage(param);
    peak_gathered_bytes_ = std::max(peak_gathered_bytes_, gathered_bytes_);
    untracked_flat(param).narrow(0, e.param_offset, e.length).copy_(buffer.narrow(0, e.bucket_offset, e.length));
    ++delivered_[e.param];
  }
  live_[bucket] = true;
}

void PartitionedParameters::release(int64_t bucket) {
  if (pending_[bucket]) finish_gather(bucket);
  if (!live_[bucket]) return;
  live_[bucket] = false;
  for (const auto& e : plan_.buckets[bucket].entries) {
    if (--delivered_[e.param] == 0) gathered_bytes_ -= free_storage(parameters_[e.param]);
  }
}

void PartitionedParameters::finish_all_pending() {
  for (size_t b = 0; b < pending_.size(); ++b) finish_gather(static_cast<int64_t>(b));
}

void PartitionedParameters::use(const std::vector<int64_t>& parameters) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> buckets;
  for (int64_t p : parameters) {
    for (int64_t b : plan_.buckets_of[p]) {
      if (std::find(buckets.begin(), buckets.end(), b) == buckets.end()) buckets.push_back(b);
    }
  }
  bool first_touch = false;
  for (int64_t b : buckets) first_touch = schedule_.touch(b) || first_touch;
  int64_t incoming = 0;
  for (int64_t b : buckets) {
    if (!live_[b] && !pending_[b]) incoming += plan_.buckets[b].size;
  }
  if (!first_touch && incoming == 0) {
    for (int64_t b : buckets) finish_gather(b);
    return;
  }
  for (int64_t r : schedule_.releases(live_or_pending(), buckets, incoming)) release(r);
  for (int64_t b : buckets) start_gather(b);
  if (first_touch) {
    // Prefetch within the live budget.
    int64_t live_elements = 0;
    const auto held = live_or_pending();
    for (size_t b = 0; b < held.size(); ++b) live_elements += held[b] ? plan_.buckets[b].size : 0;
    for (int64_t b : schedule_.prefetch(held)) {
      if (live_elements + plan_.buckets[b].size > options_.limits.max_live_elements) break;
      start_gather(b);
      live_elements += plan_.buckets[b].size;
    }
  }
  for (int64_t b : buckets) finish_gather(b);
}

void PartitionedParameters::begin_forward() {
  schedule_.begin(FetchSchedule::Phase::Forward);
  phase_ = Phase::Forward;
  peak_gathered_bytes_ = gathered_bytes_;
}

void PartitionedParameters::end_forward(bool backward_follows) {
  if (backward_follows) return;
  release_all();
  if (secondary_) secondary_->release_all();
  phase_ = Phase::None;
}

void PartitionedParameters::begin_backward() {
  schedule_.begin(FetchSchedule::Phase::Backward);
  phase_ = Phase::Backward;
}

void PartitionedParameters::end_backward() {
  release_all();
  if (secondary_) secondary_->release_all();
  phase_ = Phase::None;
}

void PartitionedParameters::gather_all() {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> in_flight;
  for (size_t b = 0; b < plan_.buckets.size(); ++b) {
    if (live_[b]) continue;
    start_gather(static_cast<int64_t>(b));
    in_flight.push_back(static_cast<int64_t>(b));
    if (in_flight.size() > 2) {
      finish_gather(in_flight.front());
      in_flight.erase(in_flight.begin());
    }
  }
  finish_all_pending();
}

void PartitionedParameters::release_all() {
  finish_all_pending();
  for (size_t b = 0; b < plan_.buckets.size(); ++b) {
    if (!persistent_bucket_[b]) release(static_cast<int64_t>(b));
  }
}

std::vector<torch::Tensor> PartitionedParameters::step_copies() const {
  if (nvme_ || shards_are_masters_ || shards_.empty() || !options_.shard_device.is_cpu()) return {};
  return shards_;
}

void PartitionedParameters::set_shards(const std::vector<torch::Tensor>& masters, bool shards_written) {
  torch::NoGradGuard no_grad;
  finish_all_pending();
  std::vector<int64_t> regather;
  for (size_t b = 0; b < plan_.buckets.size(); ++b) {
    if (!live_[b]) continue;
    regather.push_back(static_cast<int64_t>(b));
    release(static_cast<int64_t>(b));
  }
  if (nvme_) {
    nvme_->write(masters);
  } else if (!shards_are_masters_ && !shards_written) {
    for (size_t g = 0; g < shards_.size(); ++g) shards_[g].copy_(masters[g]);
  }
  for (size_t i = 0; i < regather.size(); ++i) {
    start_gather(regather[i]);
    if (i >= 2) finish_gather(regather[i - 2]);
  }
  finish_all_pending();
}

int64_t PartitionedParameters::shard_bytes() const {
  int64_t bytes = 0;
  if (!shards_are_masters_) {
    for (const auto& s : shards_) bytes += s.numel() * static_cast<int64_t>(s.element_size());
  }
  return bytes;
}

}  // namespace deepspeed
