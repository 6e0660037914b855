// Reading one checkpoint: which tag (`latest` or the caller's), its manifest, and each
// file checked against the manifest before it is unpickled. A folder that Python DeepSpeed
// wrote has no manifest: its files are read as they are (nothing to check them against), and
// what the manifest would say (ZeRO stage, world size) is taken from the files.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <ATen/core/ivalue.h>

#include <deepspeed/checkpoint.h>

#include "checkpoint/manifest.h"

namespace deepspeed::checkpoint {

// The tag in load_dir/latest (surrounding white space stripped), or nothing when there is
// no such file.
std::optional<std::string> read_latest_tag(CheckpointStorage& storage, const std::filesystem::path& load_dir);

// DeepSpeed's warning when `latest` is missing.
std::string missing_latest_message(const std::filesystem::path& load_dir);

class CheckpointReader {
 public:
  // Reads and checks the manifest. Throws CheckpointError naming what is missing or bad:
  // the tag folder (mentioning an unfinished save when <tag>.partial exists), the manifest
  // (missing from a folder that deepspeed-cpp wrote, or that holds no DeepSpeed checkpoint).
  CheckpointReader(CheckpointStorage& storage, std::filesystem::path load_dir, std::string tag);

  const Manifest& manifest() const { return manifest_; }
  // False for a checkpoint without a manifest (DeepSpeed's): its files are not verified.
  bool verified() const { return verified_; }
  // The folder's name. A folder renamed by hand keeps its saved tag in manifest().tag.
  const std::string& tag() const { return tag_; }
  bool renamed() const { return manifest_.tag != tag_; }
  std::filesystem::path dir() const { return dir_; }

  // Reads `name`, checks its size and CRC32, unpickles it.
  c10::IValue read(const std::string& name) const;
  // The same, for a file that must hold a dict (every checkpoint file does).
  c10::impl::GenericDict read_dict(const std::string& name) const;

 private:
  CheckpointStorage& storage_;
  std::filesystem::path dir_;
  std::string tag_;
  Manifest manifest_;
  bool verified_ = true;

  // What a checkpoint without a manifest is, from its files; throws when it is not one.
  void describe_unverified_folder(const std::filesystem::path& manifest_path);
};

}  // namespace deepspeed::checkpoint
