// Fashion-MNIST (Zalando), as Debian's dataset-fashion-mnist installs it: the four gzip idx
// files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
// t10k-labels-idx1-ubyte.gz in one directory (unpacked copies without .gz work too).
// 28x28 grey images (1 channel), 10 classes.
#pragma once

#include <string>

#include "data/image_set.h"

namespace cifar10 {

inline constexpr const char* kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";

const std::vector<std::string>& fashion_mnist_classes();

// Throws DataError for a missing or corrupt file, or images and labels that disagree.
ImageSet load_fashion_mnist(const std::string& dir, Split split);

}  // namespace cifar10
