#include "runtime/monitor/event_proto.h"

#include <bit>
#include <cstring>

namespace deepspeed::monitor {
namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, uint32_t field, WireType type) { put_varint(out, (field << 3) | type); }

void put_fixed(std::string& out, uint64_t bits, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

void put_double(std::string& out, uint32_t field, double v) {
  put_key(out, field, kFixed64);
  put_fixed(out, std::bit_cast<uint64_t>(v), 8);
}

void put_float(std::string& out, uint32_t field, float v) {
  put_key(out, field, kFixed32);
  put_fixed(out, std::bit_cast<uint32_t>(v), 4);
}

void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

// int64 is a varint of the two's-complement value (negative steps take ten bytes).
void put_int64(std::string& out, uint32_t field, int64_t v) {
  if (v == 0) return;
  put_key(out, field, kVarint);
  put_varint(out, static_cast<uint64_t>(v));
}

}  // namespace

std::string file_version_event(double wall_time, std::string_view writer) {
  std::string source_metadata;
  put_bytes(source_metadata, 1, writer);  // SourceMetadata.writer
  std::string event;
  put_double(event, 1, wall_time);
  put_bytes(event, 3, "brain.Event:2");
  put_bytes(event, 10, source_metadata);
  return event;
}

std::string scalar_event(double wall_time, int64_t step, std::string_view tag, float value) {
  std::string summary_value;
  put_bytes(summary_value, 1, tag);     // Summary.Value.tag
  put_float(summary_value, 2, value);   // Summary.Value.simple_value
  std::string summary;
  put_bytes(summary, 1, summary_value);  // Summary.value
  std::string event;
  put_double(event, 1, wall_time);
  put_int64(event, 2, step);
  put_bytes(event, 5, summary);
  return event;
}

}  // namespace deepspeed::monitor
