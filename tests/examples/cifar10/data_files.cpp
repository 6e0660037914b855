#include "data_files.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>

#include <zlib.h>

namespace cifar10::testing {
namespace {

void put_u32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

void octal(uint8_t* field, std::size_t length, uint64_t value) {
  std::snprintf(reinterpret_cast<char*>(field), length, "%0*llo", static_cast<int>(length - 1),
                static_cast<unsigned long long>(value));
}

}  // namespace

Bytes idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes out;
  put_u32(out, magic);
  for (auto d : dims) put_u32(out, d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes gzip_bytes(const Bytes& data) {
  z_stream s{};
  if (deflateInit2(&s, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("deflateInit2");
  Bytes out(deflateBound(&s, data.size()) + 64);
  s.next_in = const_cast<uint8_t*>(data.data());
  s.avail_in = static_cast<uInt>(data.size());
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&s, Z_FINISH);
  deflateEnd(&s);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
  out.resize(s.total_out);
  return out;
}

Bytes tar_bytes(const std::vector<std::pair<std::string, Bytes>>& files) {
  Bytes out;
  for (const auto& [name, content] : files) {
    uint8_t h[512] = {};
    std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 100));
    const bool dir = !name.empty() && name.back() == '/';
    octal(h + 100, 8, dir ? 0755 : 0644);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, dir ? 0 : content.size());
    octal(h + 136, 12, 0);
    h[156] = dir ? '5' : '0';
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (uint8_t b : h) sum += b;
    std::snprintf(reinterpret_cast<char*>(h + 148), 8, "%06o", sum);
    out.insert(out.end(), h, h + 512);
    if (!dir) {
      out.insert(out.end(), content.begin(), content.end());
      out.resize((out.size() + 511) / 512 * 512, 0);
    }
  }
  out.resize(out.size() + 1024, 0);  // end of archive: two zero blocks
  return out;
}

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

Synthetic synthetic_images(std::size_t n, int channels, int side, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> noise(0, 100), label(0, 9);
  Synthetic s;
  const std::size_t plane = static_cast<std::size_t>(side) * side;
  for (std::size_t i = 0; i < n; ++i) {
    const int c = label(gen);
    s.labels.push_back(static_cast<uint8_t>(c));
    const int band = side / 10;
    for (int ch = 0; ch < channels; ++ch) {
      for (std::size_t p = 0; p < plane; ++p) {
        const int row = static_cast<int>(p) / side;
        const bool lit = row / band == c;
        s.pixels.push_back(static_cast<uint8_t>(lit ? 155 + noise(gen) : noise(gen)));
      }
    }
  }
  return s;
}

void write_fashion_mnist(const std::string& dir, std::size_t train, std::size_t test, bool gzip) {
  auto write = [&](const std::string& prefix, std::size_t n, uint32_t seed) {
    auto s = synthetic_images(n, 1, 28, seed);
    const auto count = static_cast<uint32_t>(n);
    auto images = idx_bytes(2051, {count, 28, 28}, s.pixels);
    auto labels = idx_bytes(2049, {count}, s.labels);
    const std::string ext = gzip ? ".gz" : "";
    write_bytes(dir + "/" + prefix + "-images-idx3-ubyte" + ext, gzip ? gzip_bytes(images) : images);
    write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte" + ext, gzip ? gzip_bytes(labels) : labels);
  };
  write("train", train, 1);
  write("t10k", test, 2);
}

Bytes cifar10_records(std::size_t n, uint32_t seed) {
  auto s = synthetic_images(n, 3, 32, seed);
  Bytes out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(s.labels[i]);
    out.insert(out.end(), s.pixels.begin() + static_cast<std::ptrdiff_t>(i * 3072),
               s.pixels.begin() + static_cast<std::ptrdiff_t>((i + 1) * 3072));
  }
  return out;
}

}  // namespace cifar10::testing
