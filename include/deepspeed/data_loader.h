// The training data loader initialize() returns (DeepSpeed's deepspeed_io / DeepSpeedDataLoader).
//
// Promises: each rank sees a disjoint 1/world_size share of the data set, in micro batches of
// train_micro_batch_size_per_gpu, shuffled per epoch from a seed (torch's DistributedSampler
// rules: the index list is padded by repeating its start so that every rank gets the same
// number of samples, unless drop_last). Iterating the loader again starts the next epoch. The
// position (epoch, batches already taken) can be read and restored for checkpoints.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <optional>
#include <vector>

#include <torch/data/example.h>
#include <torch/types.h>

namespace deepspeed {

using Example = torch::data::Example<>;

class DataLoader {
 public:
  // Reads the samples with the given indices, stacked into one batch.
  using BatchReader = std::function<Example(const std::vector<std::size_t>&)>;

  struct Options {
    int64_t batch_size = 1;    // per rank
    int64_t rank = 0;
    int64_t world_size = 1;
    bool shuffle = true;
    bool drop_last = false;
    uint64_t seed = 0;
  };

  DataLoader(BatchReader reader, std::size_t dataset_size, Options options);

  class Iterator {
   public:
    using value_type = Example;
    using difference_type = std::ptrdiff_t;
    Iterator(DataLoader* loader, int64_t batch) : loader_(loader), batch_(batch) {}
    Example operator*() const { return loader_->batch(batch_); }
    Iterator& operator++() { loader_->advance(++batch_); return *this; }
    bool operator==(const Iterator& other) const { return batch_ == other.batch_; }
    bool operator!=(const Iterator& other) const { return batch_ != other.batch_; }

   private:
    DataLoader* loader_;
    int64_t batch_;
  };

  // Starts an epoch: the next epoch, or the one set by set_position(). The loop
  // `for (auto& batch : *loader)` therefore walks one epoch per loop.
  Iterator begin();
  Iterator end();

  int64_t size() const { return num_batches_; }  // batches per epoch on this rank
  std::size_t dataset_size() const { return dataset_size_; }
  const Options& options() const { return options_; }

  // The epoch being (or last) iterated and how many of its batches were taken; after
  // set_position() and before the next begin(), the position that was set.
  int64_t epoch() const { return resume_ ? resume_->first : epoch_; }
  int64_t batches_taken() const { return resume_ ? resume_->second : offset_; }
  // The next begin() resumes `epoch` after its first `offset` batches.
  void set_position(int64_t epoch, int64_t offset);
  void set_epoch(int64_t epoch) { set_position(epoch, 0); }

  // A stacked batch of this epoch (used by Iterator).
  Example batch(int64_t index);

 private:
  void advance(int64_t batch) { offset_ = batch; }
  void shuffle_for_epoch();

  BatchReader reader_;
  std::size_t dataset_size_;
  Options options_;
  int64_t num_batches_ = 0;
  int64_t epoch_ = -1;
  int64_t offset_ = 0;
  std::optional<std::pair<int64_t, int64_t>> resume_;
  std::vector<std::size_t> rank_indices_;  // this rank's share for the current epoch
};

// Stacks single examples into one batch (data and target each along a new dimension 0).
Example stack_examples(const std::vector<Example>& examples);

// Wraps any LibTorch dataset whose examples are (data, target) tensors.
template <typename Dataset>
DataLoader::BatchReader make_batch_reader(std::shared_ptr<Dataset> dataset) {
  return [dataset](const std::vector<std::size_t>& indices) {
    auto batch = dataset->get_batch(indices);
    if constexpr (std::is_same_v<decltype(batch), Example>) {
      return batch;  // the dataset stacks itself (a Stack transform)
    } else {
      return stack_examples(batch);
    }
  };
}

}  // namespace deepspeed
