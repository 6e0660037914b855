// Reads a gzip file as a stream of bytes (zlib's inflate), so that a 170 MB CIFAR-10 tarball
// never has to sit in memory whole. A file that does not start with the gzip magic is read
// as it is, which lets the readers take the idx files unpacked as well.
//
// Errors (DataError naming the file): missing/unreadable file, corrupt deflate data, and a
// stream that ends before gzip's end marker (a truncated download).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <zlib.h>

namespace cifar10 {

class GzipReader {
 public:
  explicit GzipReader(std::string path);
  ~GzipReader();
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;

  // Fills up to n bytes; returns fewer only at the end of the data.
  std::size_t read(uint8_t* out, std::size_t n);
  // Reads exactly n bytes or throws DataError("truncated: ..." + what).
  void read_exact(uint8_t* out, std::size_t n, const std::string& what);
  // Everything that is left.
  std::vector<uint8_t> read_all();
  const std::string& path() const { return path_; }
  bool compressed() const { return compressed_; }

 private:
  bool refill();

  std::string path_;
  std::FILE* file_ = nullptr;
  bool compressed_ = false;
  z_stream stream_{};
  bool stream_ended_ = false;
  std::vector<uint8_t> input_;
};

// The whole (decompressed) content of a file.
std::vector<uint8_t> read_maybe_gzip(const std::string& path);

}  // namespace cifar10
