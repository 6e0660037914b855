#include "checkpoint/checkpoint_writer.h"

#include <deepspeed/errors.h>

#include "checkpoint/atomic_file.h"

#include <cstring>
#include "checkpoint/layout.h"
#include "checkpoint/rank_exchange.h"

namespace deepspeed::checkpoint {

void write_checkpoint(comm::ProcessGroup& group, CheckpointStorage& storage, const std::filesystem::path& save_dir,
                      Manifest header, const std::function<std::vector<FileToWrite>()>& make_files,
                      bool save_latest) {
  const auto staging = staging_dir(save_dir, header.tag);
  const bool leader = group.rank() == 0;

  run_phase(group, "preparing " + staging.string(), [&] {
    if (!leader) return;
    std::error_code ec;
    std::filesystem::create_directories(save_dir, ec);
    if (ec) throw CheckpointError("save_checkpoint: cannot create " + save_dir.string() + ": " + ec.message());
    // Left by a save that did not finish.
    if (const int err = remove_tree(staging)) {
      throw CheckpointError("save_checkpoint: cannot clear " + staging.string() + ": " + std::strerror(err));
    }
    std::filesystem::create_directory(staging, ec);
    if (ec) throw CheckpointError("save_checkpoint: cannot create " + staging.string() + ": " + ec.message());
  });

  try {
    std::vector<ManifestEntry> mine;
    run_phase(group, "writing its checkpoint files into " + staging.string(), [&] {
      for (const auto& f : make_files()) {
        storage.write_file(staging / f.name, f.bytes);
        mine.push_back(describe_file(f.name, f.bytes, group.rank()));
      }
    });

    const auto all = all_gather_bytes(group, encode_entries(mine));
    run_phase(group, "committing the checkpoint " + (save_dir / header.tag).string(), [&] {
      if (!leader) return;
      for (const auto& text : all) {
        for (auto& e : decode_entries(text)) {
          if (header.files.count(e.name)) {
            throw CheckpointError("save_checkpoint: ranks " + std::to_string(header.files[e.name].rank) + " and " +
                                  std::to_string(e.rank) + " both wrote " + e.name);
          }
          header.files.emplace(e.name, e);
        }
      }
      const auto text = header.to_text();
      storage.write_file(staging / kManifestFile, std::span<const char>(text.data(), text.size()));
      replace_directory(staging, tag_dir(save_dir, header.tag));
      // Written last, and only once the tag folder is complete and in place; no newline,
      // as DeepSpeed writes it.
      if (save_latest) {
        storage.write_file(save_dir / kLatestFile, std::span<const char>(header.tag.data(), header.tag.size()));
      }
    });
  } catch (...) {
    // A save that failed with an error (a full disk, a rank that died) leaves nothing behind:
    // its staging folder is of no use, and on a full disk it holds the space the next save
    // needs. Every rank is past its writes here (the failure was agreed on, or a peer is gone).
    if (leader) remove_tree(staging);
    throw;
  }
}

}  // namespace deepspeed::checkpoint
