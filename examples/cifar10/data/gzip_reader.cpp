#include "data/gzip_reader.h"

#include <cerrno>
#include <cstring>

#include "data/data_error.h"

namespace cifar10 {
namespace {

constexpr std::size_t kChunk = 1 << 16;
constexpr uint8_t kGzipMagic[2] = {0x1f, 0x8b};

}  // namespace

GzipReader::GzipReader(std::string path) : path_(std::move(path)), input_(kChunk) {
  file_ = std::fopen(path_.c_str(), "rb");
  if (!file_) throw DataError(path_, std::string("cannot open: ") + std::strerror(errno));
  uint8_t head[2] = {0, 0};
  const std::size_t got = std::fread(head, 1, 2, file_);
  compressed_ = got == 2 && head[0] == kGzipMagic[0] && head[1] == kGzipMagic[1];
  std::rewind(file_);
  if (compressed_) {
    // 16 + MAX_WBITS: expect (and check) the gzip header and its CRC trailer.
    if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK) {
      std::fclose(file_);
      throw DataError(path_, "zlib could not be initialised");
    }
  }
}

GzipReader::~GzipReader() {
  if (compressed_) inflateEnd(&stream_);
  if (file_) std::fclose(file_);
}

bool GzipReader::refill() {
  const std::size_t got = std::fread(input_.data(), 1, input_.size(), file_);
  if (got == 0 && std::ferror(file_)) throw DataError(path_, std::string("read error: ") + std::strerror(errno));
  stream_.next_in = input_.data();
  stream_.avail_in = static_cast<uInt>(got);
  return got > 0;
}

std::size_t GzipReader::read(uint8_t* out, std::size_t n) {
  if (!compressed_) return std::fread(out, 1, n, file_);
  std::size_t done = 0;
  while (done < n && !stream_ended_) {
    if (stream_.avail_in == 0 && !refill()) {
      throw DataError(path_, "truncated gzip stream (the file ends before the gzip end marker)");
    }
    stream_.next_out = out + done;
    stream_.avail_out = static_cast<uInt>(n - done);
    const int rc = inflate(&stream_, Z_NO_FLUSH);
    done = n - stream_.avail_out;
    if (rc == Z_STREAM_END) {
      stream_ended_ = true;
    } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
      throw DataError(path_, std::string("corrupt gzip data (") + (stream_.msg ? stream_.msg : "bad deflate stream") + ")");
    } else if (rc == Z_MEM_ERROR) {
      throw DataError(path_, "out of memory while decompressing");
    }
    // Z_BUF_ERROR only means "no progress with this input": the loop refills.
  }
  return done;
}

void GzipReader::read_exact(uint8_t* out, std::size_t n, const std::string& what) {
  const std::size_t got = read(out, n);
  if (got != n) {
    throw DataError(path_, "truncated: " + what + " needs " + std::to_string(n) + " bytes, only " +
                               std::to_string(got) + " are left");
  }
}

std::vector<uint8_t> GzipReader::read_all() {
  std::vector<uint8_t> out;
  std::size_t used = 0;
  for (;;) {
    out.resize(used + kChunk * 4);
    const std::size_t got = read(out.data() + used, kChunk * 4);
    used += got;
    if (got < kChunk * 4) break;
  }
  out.resize(used);
  return out;
}

std::vector<uint8_t> read_maybe_gzip(const std::string& path) { return GzipReader(path).read_all(); }

}  // namespace cifar10
