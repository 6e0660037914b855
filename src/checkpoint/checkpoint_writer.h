// The save protocol, the same for every ZeRO stage (only the files each rank brings differ):
//
//   1. rank 0 creates save_dir and an empty staging folder <tag>.partial     (all agree)
//   2. every rank writes its files into the staging folder, each one atomically
//      (temporary name, fsync, rename), and notes their sizes and CRC32s     (all agree)
//   3. rank 0 writes the manifest of all ranks' files into the staging folder, puts the
//      folder in place of <tag> in one rename, then writes `latest` (unless it names
//      <tag> already)                                                        (all agree)
//
// A rank that dies or fails at any point stops the others at the next agreement, before
// <tag> or `latest` change: the previous checkpoint and `latest` stay as they were, and a
// stale <tag>.partial is cleared by the next save of that tag. When `latest` alone cannot be
// written (a full disk), <tag> is removed again and the save fails as a whole.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <deepspeed/checkpoint.h>
#include <deepspeed/comm.h>

#include "checkpoint/manifest.h"

namespace deepspeed::checkpoint {

struct FileToWrite {
  std::string name;  // relative to the tag folder, from layout.h
  std::vector<char> bytes;
};

// Collective. `header` gives tag, zero_stage and world sizes; its file list is filled here.
// `make_files` builds this rank's files; it runs inside the writing phase, so that an
// error there (on any rank) stops every rank instead of leaving them waiting.
void write_checkpoint(comm::ProcessGroup& group, CheckpointStorage& storage, const std::filesystem::path& save_dir,
                      Manifest header, const std::function<std::vector<FileToWrite>()>& make_files,
                      bool save_latest);

}  // namespace deepspeed::checkpoint
