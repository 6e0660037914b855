// Images as the readers produce them: raw bytes, no tensors, so that the format code
// compiles without LibTorch. ImageDataset (image_dataset.h) turns one into tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cifar10 {

enum class Split { kTrain, kTest };

struct ImageSet {
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint8_t> pixels;       // size() images of C*H*W bytes each, channel-major (CHW)
  std::vector<uint8_t> labels;       // one per image, < classes.size()
  std::vector<std::string> classes;  // names, indexed by label

  std::size_t image_bytes() const { return static_cast<std::size_t>(channels * height * width); }
  std::size_t size() const { return labels.size(); }
};

}  // namespace cifar10
