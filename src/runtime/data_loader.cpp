#include <deepspeed/data_loader.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>

namespace deepspeed {

Example stack_examples(const std::vector<Example>& examples) {
  std::vector<torch::Tensor> data, target;
  data.reserve(examples.size());
  target.reserve(examples.size());
  for (const auto& e : examples) {
    data.push_back(e.data);
    target.push_back(e.target);
  }
  return {torch::stack(data), torch::stack(target)};
}

DataLoader::DataLoader(BatchReader reader, std::size_t dataset_size, Options options)
    : reader_(std::move(reader)), dataset_size_(dataset_size), options_(options) {
  if (options_.batch_size <= 0) throw EngineError("data loader: batch size must be positive");
  if (options_.world_size <= 0 || options_.rank < 0 || options_.rank >= options_.world_size) {
    throw EngineError("data loader: rank must be in [0, world_size)");
  }
  // torch's DistributedSampler: every rank gets ceil(N / W) samples (the list is padded by
  // repeating its start), or floor(N / W) with drop_last.
  const auto n = static_cast<int64_t>(dataset_size_);
  const int64_t per_rank = options_.drop_last ? n / options_.world_size
                                              : (n + options_.world_size - 1) / options_.world_size;
  num_batches_ = options_.drop_last ? per_rank / options_.batch_size
                                    : (per_rank + options_.batch_size - 1) / options_.batch_size;
}

void DataLoader::set_position(int64_t epoch, int64_t offset) {
  if (epoch < 0 || offset < 0 || offset > num_batches_) {
    throw EngineError("data loader: position (epoch " + std::to_string(epoch) + ", batch " +
                      std::to_string(offset) + ") is outside the data set of " +
                      std::to_string(num_batches_) + " batches per epoch");
  }
  resume_ = std::make_pair(epoch, offset);
}

void DataLoader::shuffle_for_epoch() {
  const auto n = static_cast<int64_t>(dataset_size_);
  std::vector<int64_t> order(n);
  if (options_.shuffle) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options_.seed + static_cast<uint64_t>(epoch_));
    auto perm = torch::randperm(n, gen, torch::kLong);
    auto acc = perm.accessor<int64_t, 1>();
    for (int64_t i = 0; i < n; ++i) order[i] = acc[i];
  } else {
    for (int64_t i = 0; i < n; ++i) order[i] = i;
  }
  const int64_t w = options_.world_size;
  int64_t total = options_.drop_last ? (n / w) * w : ((n + w - 1) / w) * w;
  if (!options_.drop_last) {
    for (int64_t i = 0; static_cast<int64_t>(order.size()) < total; ++i) order.push_back(order[i % n]);
  } else {
    order.resize(total);
  }
  rank_indices_.clear();
  for (int64_t i = options_.rank; i < total; i += w) rank_indices_.push_back(static_cast<std::size_t>(order[i]));
}

DataLoader::Iterator DataLoader::begin() {
  if (resume_) {
    epoch_ = resume_->first;
    offset_ = resume_->second;
    resume_.reset();
  } else {
    ++epoch_;
    offset_ = 0;
  }
  shuffle_for_epoch();
  return Iterator(this, offset_);
}

DataLoader::Iterator DataLoader::end() { return Iterator(this, num_batches_); }

Example DataLoader::batch(int64_t index) {
  const auto first = static_cast<std::size_t>(index * options_.batch_size);
  const auto last = std::min(first + static_cast<std::size_t>(options_.batch_size), rank_indices_.size());
  std::vector<std::size_t> indices(rank_indices_.begin() + static_cast<std::ptrdiff_t>(first),
                                   rank_indices_.begin() + static_cast<std::ptrdiff_t>(last));
  return reader_(indices);
}

}  // namespace deepspeed
