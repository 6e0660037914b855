// The manifest of one checkpoint (<tag>/ds_manifest.json): every file of the checkpoint
// with its size and CRC32, and the shape of the job that wrote it. Rank 0 writes it after
// every rank has written and synced its files, so a manifest exists only for a complete
// save; a load checks each file it reads against it before unpickling anything.
//
//   {"format": "deepspeed-cpp checkpoint", "version": 1, "tag": "global_step10",
//    "zero_stage": 0, "dp_world_size": 2, "mp_world_size": 1,
//    "files": {"mp_rank_00_model_states.pt": {"size": 1234, "crc32": "89abcdef", "rank": 0}}}
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace deepspeed::checkpoint {

struct ManifestEntry {
  std::string name;   // relative to the tag folder
  uint64_t size = 0;
  std::string crc32;  // 8 lower-case hex digits
  int64_t rank = 0;   // the rank that wrote it
};

ManifestEntry describe_file(const std::string& name, std::span<const char> bytes, int64_t rank);

struct Manifest {
  std::string tag;
  int zero_stage = 0;
  int64_t dp_world_size = 1;
  int64_t mp_world_size = 1;
  std::map<std::string, ManifestEntry> files;

  std::string to_text() const;
  // Throws CheckpointError naming `path` when the text is not a manifest of ours.
  static Manifest parse(std::span<const char> text, const std::filesystem::path& path);

  // Throws CheckpointError naming `path` when `name` is not listed, or when `bytes` are
  // not what was written (truncated, grown, or changed).
  void verify(const std::string& name, std::span<const char> bytes, const std::filesystem::path& path) const;
};

// Entries as text, so ranks can send theirs to rank 0 through a collective.
std::string encode_entries(const std::vector<ManifestEntry>& entries);
std::vector<ManifestEntry> decode_entries(const std::string& text);

}  // namespace deepspeed::checkpoint
