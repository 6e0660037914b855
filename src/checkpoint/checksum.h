// CRC32 (the IEEE polynomial of zip, PNG and zlib's crc32()) of checkpoint bytes, written
// as 8 hex digits in the manifest. CRC32 catches truncation and flipped bytes, which is
// what storage does to files; it is not meant to resist deliberate tampering.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace deepspeed::checkpoint {

uint32_t crc32_of(std::span<const char> bytes);
std::string crc32_hex(std::span<const char> bytes);

}  // namespace deepspeed::checkpoint
