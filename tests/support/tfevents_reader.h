// Reads TensorBoard event files back for the tests, independently of the writer in
// src/runtime/monitor (its own CRC-32C and protobuf decoding): checks both CRCs of every
// TFRecord and decodes the Event fields a scalar log uses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deepspeed::testing {

struct TfEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::optional<std::string> file_version;
  std::optional<std::string> source_writer;
  struct Scalar {
    std::string tag;
    float value = 0;
  };
  std::vector<Scalar> scalars;  // Summary.value entries with a simple_value
};

// Throws std::runtime_error naming the record and what is wrong (a bad length CRC, a bad
// data CRC, a truncated record, a malformed protobuf).
std::vector<TfEvent> read_tfevents(const std::string& path);

// Bitwise CRC-32C, and TensorFlow's mask of it.
uint32_t reference_crc32c(const std::string& data);
uint32_t reference_masked_crc32c(const std::string& data);

}  // namespace deepspeed::testing
