// Writes small data files in the formats the example reads (idx, gzip, CIFAR-10 binary
// records, tar.gz), so that the tests need no download and can corrupt them at will.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cifar10::testing {

using Bytes = std::vector<uint8_t>;

// An idx file: big-endian magic and dimensions, then the bytes.
Bytes idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& data);
Bytes gzip_bytes(const Bytes& data);
Bytes tar_bytes(const std::vector<std::pair<std::string, Bytes>>& files);  // ustar; '/'-ended names are directories
void write_bytes(const std::string& path, const Bytes& bytes);
Bytes read_bytes(const std::string& path);

// Images whose label can be learned: class c lights up horizontal band c, on top of noise.
struct Synthetic {
  Bytes pixels;  // n * channels * side * side
  Bytes labels;
};
Synthetic synthetic_images(std::size_t n, int channels, int side, uint32_t seed);

// The four Fashion-MNIST files (.gz, or plain when gzip is false) of synthetic 28x28 images.
void write_fashion_mnist(const std::string& dir, std::size_t train, std::size_t test, bool gzip = true);
// CIFAR-10 records (label byte + 3072 pixel bytes) of synthetic 32x32x3 images.
Bytes cifar10_records(std::size_t n, uint32_t seed);

}  // namespace cifar10::testing
