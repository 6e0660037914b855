// A checkpoint's ds_manifest.json, which may be damaged on disk. Promise: a Manifest or a
// CheckpointError naming the file; an accepted manifest writes back to text that parses to
// the same manifest, and verifying bytes against it fails only with CheckpointError.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "checkpoint/manifest.h"
#include "deepspeed/errors.h"

using deepspeed::checkpoint::Manifest;

namespace {

bool same(const Manifest& a, const Manifest& b) {
  if (a.tag != b.tag || a.zero_stage != b.zero_stage || a.dp_world_size != b.dp_world_size ||
      a.mp_world_size != b.mp_world_size || a.files.size() != b.files.size()) {
    return false;
  }
  for (const auto& [name, e] : a.files) {
    auto it = b.files.find(name);
    if (it == b.files.end() || it->second.size != e.size || it->second.crc32 != e.crc32 || it->second.rank != e.rank) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const char> text(reinterpret_cast<const char*>(data), size);
  try {
    const auto manifest = Manifest::parse(text, "fuzz/ds_manifest.json");
    const auto again_text = manifest.to_text();
    const auto again = Manifest::parse(std::span<const char>(again_text.data(), again_text.size()), "again");
    if (!same(manifest, again)) __builtin_trap();
    for (const auto& [name, entry] : manifest.files) {
      try {
        manifest.verify(name, text, "fuzz/" + name);
      } catch (const deepspeed::CheckpointError&) {
      }
    }
  } catch (const deepspeed::CheckpointError&) {
  }
  return 0;
}
