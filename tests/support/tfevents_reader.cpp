#include "tfevents_reader.h"

#include <cstring>
#include <stdexcept>

#include "multiprocess.h"

namespace deepspeed::testing {
namespace {

uint64_t read_le(const std::string& s, std::size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

// A minimal protobuf reader: (field, wire type, value) at a time.
class Proto {
 public:
  explicit Proto(std::string data) : data_(std::move(data)) {}
  bool done() const { return pos_ >= data_.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) throw std::runtime_error("protobuf: truncated varint");
      const auto byte = static_cast<unsigned char>(data_[pos_++]);
      v |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return v;
    }
    throw std::runtime_error("protobuf: varint too long");
  }
  std::string bytes(std::size_t n) {
    if (pos_ + n > data_.size()) throw std::runtime_error("protobuf: truncated field");
    std::string out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::string length_delimited() { return bytes(varint()); }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: bytes(8); break;
      case 2: length_delimited(); break;
      case 5: bytes(4); break;
      default: throw std::runtime_error("protobuf: unknown wire type " + std::to_string(wire));
    }
  }

 private:
  std::string data_;
  std::size_t pos_ = 0;
};

TfEvent::Scalar decode_value(const std::string& data) {
  Proto p(data);
  TfEvent::Scalar s;
  while (!p.done()) {
    const uint64_t key = p.varint();
    const auto field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 2) {
      s.tag = p.length_delimited();
    } else if (field == 2 && wire == 5) {
      const auto bits = static_cast<uint32_t>(read_le(p.bytes(4), 0, 4));
      std::memcpy(&s.value, &bits, 4);
    } else {
      p.skip(wire);
    }
  }
  return s;
}

TfEvent decode_event(const std::string& data) {
  Proto p(data);
  TfEvent e;
  while (!p.done()) {
    const uint64_t key = p.varint();
    const auto field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 1) {
      const uint64_t bits = read_le(p.bytes(8), 0, 8);
      std::memcpy(&e.wall_time, &bits, 8);
    } else if (field == 2 && wire == 0) {
      e.step = static_cast<int64_t>(p.varint());
    } else if (field == 3 && wire == 2) {
      e.file_version = p.length_delimited();
    } else if (field == 5 && wire == 2) {
      Proto summary(p.length_delimited());
      while (!summary.done()) {
        const uint64_t k = summary.varint();
        if ((k >> 3) == 1 && (k & 7) == 2) {
          e.scalars.push_back(decode_value(summary.length_delimited()));
        } else {
          summary.skip(static_cast<uint32_t>(k & 7));
        }
      }
    } else if (field == 10 && wire == 2) {
      Proto meta(p.length_delimited());
      while (!meta.done()) {
        const uint64_t k = meta.varint();
        if ((k >> 3) == 1 && (k & 7) == 2) {
          e.source_writer = meta.length_delimited();
        } else {
          meta.skip(static_cast<uint32_t>(k & 7));
        }
      }
    } else {
      p.skip(wire);
    }
  }
  return e;
}

}  // namespace

uint32_t reference_crc32c(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint32_t reference_masked_crc32c(const std::string& data) {
  const uint32_t crc = reference_crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

std::vector<TfEvent> read_tfevents(const std::string& path) {
  const std::string file = read_file(path);
  std::vector<TfEvent> events;
  std::size_t at = 0;
  for (int record = 0; at < file.size(); ++record) {
    const std::string where = path + ": record " + std::to_string(record);
    if (at + 12 > file.size()) throw std::runtime_error(where + ": truncated header");
    const std::string length_bytes = file.substr(at, 8);
    const uint64_t length = read_le(file, at, 8);
    if (read_le(file, at + 8, 4) != reference_masked_crc32c(length_bytes)) {
      throw std::runtime_error(where + ": bad length CRC");
    }
    if (at + 12 + length + 4 > file.size()) throw std::runtime_error(where + ": truncated data");
    const std::string data = file.substr(at + 12, length);
    if (read_le(file, at + 12 + length, 4) != reference_masked_crc32c(data)) {
      throw std::runtime_error(where + ": bad data CRC");
    }
    events.push_back(decode_event(data));
    at += 12 + length + 4;
  }
  return events;
}

}  // namespace deepspeed::testing
