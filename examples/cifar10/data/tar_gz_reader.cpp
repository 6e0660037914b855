#include "data/tar_gz_reader.h"

#include <array>
#include <cstring>

#include "data/data_error.h"
#include "data/gzip_reader.h"

namespace cifar10 {
namespace {

constexpr std::size_t kBlock = 512;

// Fields of a tar header (POSIX ustar offsets).
std::string field(const uint8_t* block, std::size_t offset, std::size_t length) {
  const char* p = reinterpret_cast<const char*>(block + offset);
  return std::string(p, strnlen(p, length));
}

uint64_t octal_field(const uint8_t* block, std::size_t offset, std::size_t length, const std::string& path) {
  // GNU tar writes sizes of 8 GiB and more in base-256 (high bit set); nothing here is that big.
  if (block[offset] & 0x80) throw DataError(path, "tar entry larger than 8 GiB is not supported");
  uint64_t value = 0;
  for (std::size_t i = 0; i < length; ++i) {
    const char c = static_cast<char>(block[offset + i]);
    if (c == 0 || c == ' ') {
      if (value != 0 || i + 1 == length) break;
      continue;  // leading blanks
    }
    if (c < '0' || c > '7') throw DataError(path, "corrupt tar header (non-octal number field)");
    value = value * 8 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

bool checksum_ok(const uint8_t* block, const std::string& path) {
  uint64_t sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? uint8_t{' '} : block[i];
  return sum == octal_field(block, 148, 8, path);
}

bool all_zero(const uint8_t* block) {
  for (std::size_t i = 0; i < kBlock; ++i) {
    if (block[i]) return false;
  }
  return true;
}

}  // namespace

std::map<std::string, std::vector<uint8_t>> read_tar_gz(const std::string& path,
                                                        const std::function<bool(const std::string&)>& wanted) {
  GzipReader in(path);
  std::map<std::string, std::vector<uint8_t>> out;
  std::array<uint8_t, kBlock> block{};
  std::string long_name;  // from a GNU 'L' entry, for the entry that follows
  std::vector<uint8_t> skip(1 << 16);
  bool first = true;
  for (;;) {
    const std::size_t got = in.read(block.data(), kBlock);
    if (got == 0 && !first) throw DataError(path, "truncated tar archive (no end-of-archive blocks)");
    if (got != kBlock) throw DataError(path, first ? "not a tar archive (shorter than one header)" : "truncated tar archive (partial header)");
    if (all_zero(block.data())) break;  // end of archive
    if (!checksum_ok(block.data(), path)) {
      throw DataError(path, first ? "not a tar archive (bad header checksum)" : "corrupt tar header (bad checksum)");
    }
    first = false;
    std::string name = field(block.data(), 0, 100);
    if (std::memcmp(block.data() + 257, "ustar", 5) == 0) {
      const std::string prefix = field(block.data(), 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    if (!long_name.empty()) name = std::move(long_name), long_name.clear();
    const uint64_t size = octal_field(block.data(), 124, 12, path);
    const char type = static_cast<char>(block[156]);
    const uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    const bool regular = type == '0' || type == '\0' || type == '7';
    if (type == 'L' || (regular && wanted(name))) {
      std::vector<uint8_t> content(static_cast<std::size_t>(size));
      in.read_exact(content.data(), content.size(), "tar entry " + name);
      uint64_t rest = padded - size;
      in.read_exact(skip.data(), static_cast<std::size_t>(rest), "padding of tar entry " + name);
      if (type == 'L') {
        long_name.assign(content.begin(), content.end());
        long_name.resize(strnlen(long_name.c_str(), long_name.size()));
      } else {
        out[name] = std::move(content);
      }
      continue;
    }
    // Directories, links, pax headers and unwanted files: skip their data.
    for (uint64_t left = padded; left > 0;) {
      const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(left, skip.size()));
      in.read_exact(skip.data(), n, "tar entry " + name);
      left -= n;
    }
  }
  return out;
}

}  // namespace cifar10
