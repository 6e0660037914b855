#include "data/cifar10_binary.h"

#include <filesystem>

#include "data/data_error.h"
#include "data/gzip_reader.h"
#include "data/tar_gz_reader.h"

namespace cifar10 {
namespace fs = std::filesystem;
namespace {

ImageSet empty_set() {
  ImageSet set;
  set.channels = 3;
  set.height = 32;
  set.width = 32;
  set.classes = cifar10_classes();
  return set;
}

ImageSet load_from_tarball(const std::string& tarball, Split split) {
  const auto files = cifar10_batch_files(split);
  auto basename = [](const std::string& name) { return fs::path(name).filename().string(); };
  auto entries = read_tar_gz(tarball, [&](const std::string& name) {
    for (const auto& f : files) {
      if (basename(name) == f) return true;
    }
    return false;
  });
  ImageSet set = empty_set();
  for (const auto& f : files) {
    const std::vector<uint8_t>* bytes = nullptr;
    std::string entry;
    for (const auto& [name, content] : entries) {
      if (basename(name) == f) bytes = &content, entry = name;
    }
    if (!bytes) throw DataError(tarball, "the archive has no " + f + " (is this cifar-10-binary.tar.gz?)");
    append_cifar10_records(*bytes, tarball + ":" + entry, set);
  }
  return set;
}

}  // namespace

const std::vector<std::string>& cifar10_classes() {
  static const std::vector<std::string> kClasses = {"plane", "car",  "bird",  "cat",  "deer",
                                                    "dog",   "frog", "horse", "ship", "truck"};
  return kClasses;
}

std::vector<std::string> cifar10_batch_files(Split split) {
  if (split == Split::kTest) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
}

void append_cifar10_records(const std::vector<uint8_t>& bytes, const std::string& file, ImageSet& set) {
  if (bytes.empty() || bytes.size() % kCifarRecordBytes != 0) {
    throw DataError(file, "wrong size: " + std::to_string(bytes.size()) + " bytes is not a whole number of " +
                              std::to_string(kCifarRecordBytes) + "-byte CIFAR-10 records (truncated?)");
  }
  const std::size_t records = bytes.size() / kCifarRecordBytes;
  set.pixels.reserve(set.pixels.size() + records * kCifarImageBytes);
  set.labels.reserve(set.labels.size() + records);
  for (std::size_t r = 0; r < records; ++r) {
    const uint8_t* record = bytes.data() + r * kCifarRecordBytes;
    if (record[0] >= set.classes.size()) {
      throw DataError(file, "record " + std::to_string(r) + " has label " + std::to_string(record[0]) +
                                ", not a class (0-9): not a CIFAR-10 binary batch (CIFAR-100 has 2 label bytes)");
    }
    set.labels.push_back(record[0]);
    set.pixels.insert(set.pixels.end(), record + 1, record + kCifarRecordBytes);
  }
}

ImageSet load_cifar10(const std::string& path, Split split) {
  if (fs::is_regular_file(path)) return load_from_tarball(path, split);
  if (!fs::is_directory(path)) {
    throw DataError(path, "not found (CIFAR-10: give the cifar-10-batches-bin directory, the directory "
                          "holding it, or cifar-10-binary.tar.gz)");
  }
  fs::path dir(path);
  if (!fs::exists(dir / cifar10_batch_files(split).front()) && fs::is_directory(dir / kCifarBatchesDir)) {
    dir /= kCifarBatchesDir;
  }
  if (!fs::exists(dir / cifar10_batch_files(split).front()) && fs::is_regular_file(dir / kCifarTarball)) {
    return load_from_tarball((dir / kCifarTarball).string(), split);
  }
  ImageSet set = empty_set();
  for (const auto& f : cifar10_batch_files(split)) {
    const std::string file = (dir / f).string();
    if (!fs::exists(file)) {
      throw DataError(file, std::string("not found (expected the CIFAR-10 binary batches, or ") + kCifarTarball + ")");
    }
    append_cifar10_records(read_maybe_gzip(file), file, set);
  }
  return set;
}

}  // namespace cifar10
