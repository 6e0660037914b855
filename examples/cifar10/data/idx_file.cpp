#include "data/idx_file.h"

#include "data/data_error.h"
#include "data/gzip_reader.h"

namespace cifar10 {
namespace {

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

IdxArray read_idx_file(const std::string& path, uint32_t expected_magic) {
  GzipReader in(path);
  uint8_t header[4];
  in.read_exact(header, 4, "the idx magic number");
  const uint32_t magic = big_endian_u32(header);
  if (magic != expected_magic) {
    throw DataError(path, "bad magic number " + std::to_string(magic) + ", expected " +
                              std::to_string(expected_magic) + " (is this an idx " +
                              (expected_magic == kIdxImagesMagic ? "images" : "labels") + " file?)");
  }
  IdxArray out;
  const uint32_t rank = magic & 0xff;
  uint64_t total = 1;
  for (uint32_t d = 0; d < rank; ++d) {
    in.read_exact(header, 4, "dimension " + std::to_string(d) + " of the idx header");
    out.dims.push_back(big_endian_u32(header));
    total *= out.dims.back();
  }
  // Guards the allocation below against a header that claims terabytes.
  constexpr uint64_t kMaxBytes = uint64_t{1} << 34;
  if (total > kMaxBytes) throw DataError(path, "idx header claims " + std::to_string(total) + " bytes");
  out.data.resize(static_cast<std::size_t>(total));
  in.read_exact(out.data.data(), out.data.size(), "the data the idx header declares");
  uint8_t extra;
  if (in.read(&extra, 1) != 0) {
    throw DataError(path, "wrong size: more bytes than the idx header's dimensions declare");
  }
  return out;
}

}  // namespace cifar10
