// The idx format of MNIST and Fashion-MNIST: a big-endian magic number (0x0000 0x08 <rank>:
// unsigned bytes, rank dimensions), the dimensions as big-endian uint32, then the bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cifar10 {

inline constexpr uint32_t kIdxImagesMagic = 2051;  // ubyte, 3 dimensions (N, rows, cols)
inline constexpr uint32_t kIdxLabelsMagic = 2049;  // ubyte, 1 dimension (N)

struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;  // product(dims) bytes
};

// Reads a (gzip-compressed or plain) idx file and checks its magic number and that the data
// is exactly as long as the dimensions say. Throws DataError naming the file.
IdxArray read_idx_file(const std::string& path, uint32_t expected_magic);

}  // namespace cifar10
