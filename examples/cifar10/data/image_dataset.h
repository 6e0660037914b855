// A torch::data dataset over an ImageSet: (C,H,W) float images normalised as the tutorial's
// transforms.Normalize((0.5, ...), (0.5, ...)) does, i.e. pixel/255 mapped to [-1, 1], and
// int64 labels. All images are converted once, up front: get() is then a view, cheap enough
// for a training loop on two cores.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <torch/data/datasets/base.h>
#include <torch/data/example.h>
#include <torch/types.h>

#include "data/image_set.h"

namespace cifar10 {

class ImageDataset : public torch::data::datasets::Dataset<ImageDataset> {
 public:
  // `limit`: keep only the first `limit` images (a slice for quick runs and tests).
  explicit ImageDataset(const ImageSet& set, std::optional<std::size_t> limit = std::nullopt);

  torch::data::Example<> get(std::size_t index) override;
  torch::optional<std::size_t> size() const override;

  const torch::Tensor& images() const { return images_; }  // (N, C, H, W) float32
  const torch::Tensor& labels() const { return labels_; }  // (N) int64
  const std::vector<std::string>& classes() const { return classes_; }
  int64_t channels() const { return images_.size(1); }
  int64_t image_size() const { return images_.size(2); }  // height (== width for our sets)

 private:
  torch::Tensor images_;
  torch::Tensor labels_;
  std::vector<std::string> classes_;
};

// Which data set and where; "fashion-mnist" or "cifar10" (throws DataError for others).
ImageDataset load_image_dataset(const std::string& name, const std::string& dir, Split split,
                                std::optional<std::size_t> limit = std::nullopt);

}  // namespace cifar10
