#include "data/fashion_mnist.h"

#include <filesystem>

#include "data/data_error.h"
#include "data/idx_file.h"

namespace cifar10 {
namespace {

// Debian ships the .gz files; someone who unpacked them keeps going.
std::string find_file(const std::string& dir, const std::string& stem) {
  const std::filesystem::path base(dir);
  for (const auto& name : {stem + ".gz", stem}) {
    if (std::filesystem::exists(base / name)) return (base / name).string();
  }
  throw DataError((base / (stem + ".gz")).string(),
                  "not found (Fashion-MNIST: install Debian's dataset-fashion-mnist, or point "
                  "--data_dir at a directory with the four idx files)");
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> kClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return kClasses;
}

ImageSet load_fashion_mnist(const std::string& dir, Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray images = read_idx_file(images_path, kIdxImagesMagic);
  IdxArray labels = read_idx_file(labels_path, kIdxLabelsMagic);
  if (images.dims[0] != labels.dims[0]) {
    throw DataError(labels_path, std::to_string(labels.dims[0]) + " labels for the " +
                                     std::to_string(images.dims[0]) + " images of " + images_path);
  }
  if (images.dims[1] == 0 || images.dims[2] == 0) throw DataError(images_path, "images of size 0");
  ImageSet set;
  set.channels = 1;
  set.height = images.dims[1];
  set.width = images.dims[2];
  set.pixels = std::move(images.data);
  set.labels = std::move(labels.data);
  set.classes = fashion_mnist_classes();
  for (std::size_t i = 0; i < set.labels.size(); ++i) {
    if (set.labels[i] >= set.classes.size()) {
      throw DataError(labels_path, "label " + std::to_string(set.labels[i]) + " of sample " + std::to_string(i) +
                                       " is not a class (0-9)");
    }
  }
  return set;
}

}  // namespace cifar10
