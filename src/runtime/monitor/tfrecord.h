// TFRecord framing, the container of TensorBoard event files: each record is
//   uint64 length | uint32 masked CRC-32C of the length | data | uint32 masked CRC-32C of the data
// (little-endian), so that a reader can detect a torn or corrupt record.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace deepspeed::monitor {

// CRC-32C (Castagnoli), as TensorFlow computes it; crc32c("123456789") == 0xE3069283.
uint32_t crc32c(std::string_view data);
// TensorFlow's mask, so that a CRC stored next to the data it covers does not look like data.
uint32_t masked_crc32c(std::string_view data);
// One record around `data`.
std::string tfrecord(std::string_view data);

}  // namespace deepspeed::monitor
