#include "data/image_dataset.h"

#include <torch/torch.h>

#include "data/cifar10_binary.h"
#include "data/data_error.h"
#include "data/fashion_mnist.h"

namespace cifar10 {

ImageDataset::ImageDataset(const ImageSet& set, std::optional<std::size_t> limit) : classes_(set.classes) {
  const auto n = static_cast<int64_t>(limit ? std::min(*limit, set.size()) : set.size());
  // from_blob does not copy; the arithmetic below makes the tensors that own the data.
  auto bytes = torch::from_blob(const_cast<uint8_t*>(set.pixels.data()),
                                {n, set.channels, set.height, set.width}, torch::kUInt8);
  images_ = bytes.to(torch::kFloat32).div_(255.0).sub_(0.5).div_(0.5);
  labels_ = torch::from_blob(const_cast<uint8_t*>(set.labels.data()), {n}, torch::kUInt8).to(torch::kInt64);
}

torch::data::Example<> ImageDataset::get(std::size_t index) {
  const auto i = static_cast<int64_t>(index);
  return {images_[i], labels_[i]};
}

torch::optional<std::size_t> ImageDataset::size() const { return static_cast<std::size_t>(images_.size(0)); }

ImageDataset load_image_dataset(const std::string& name, const std::string& dir, Split split,
                                std::optional<std::size_t> limit) {
  if (name == "fashion-mnist") return ImageDataset(load_fashion_mnist(dir, split), limit);
  if (name == "cifar10") return ImageDataset(load_cifar10(dir, split), limit);
  throw DataError(name, "unknown data set (expected fashion-mnist or cifar10)");
}

}  // namespace cifar10
