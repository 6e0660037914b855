// CIFAR-10's binary version (https://www.cs.toronto.edu/~kriz/cifar.html): files of records
// of 1 label byte followed by 3072 pixel bytes (1024 red, 1024 green, 1024 blue; 32x32, row
// major). Training set: data_batch_1.bin .. data_batch_5.bin; test set: test_batch.bin.
//
// `path` may be
//   - the cifar-10-batches-bin directory itself,
//   - a directory holding cifar-10-batches-bin/ (as the tarball unpacks),
//   - the tarball cifar-10-binary.tar.gz, or a directory holding it (read without unpacking).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image_set.h"

namespace cifar10 {

inline constexpr std::size_t kCifarImageBytes = 3 * 32 * 32;
inline constexpr std::size_t kCifarRecordBytes = 1 + kCifarImageBytes;
inline constexpr const char* kCifarTarball = "cifar-10-binary.tar.gz";
inline constexpr const char* kCifarBatchesDir = "cifar-10-batches-bin";

// The tutorial's short class names (batches.meta.txt says "airplane", "automobile", ...).
const std::vector<std::string>& cifar10_classes();

// The file names of a split, in order.
std::vector<std::string> cifar10_batch_files(Split split);

// Appends the records of one batch file's bytes to `set`; `file` names it in errors
// (wrong size, label out of range).
void append_cifar10_records(const std::vector<uint8_t>& bytes, const std::string& file, ImageSet& set);

// Throws DataError for a missing or corrupt file.
ImageSet load_cifar10(const std::string& path, Split split);

}  // namespace cifar10
