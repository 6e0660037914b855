#include "checkpoint/checkpoint_writer.h"

#include <deepspeed/errors.h>

#include "checkpoint/atomic_file.h"

#include <cstring>
#include <exception>
#include <optional>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/layout.h"
#include "checkpoint/rank_exchange.h"

namespace deepspeed::checkpoint {
namespace {

std::string latest_not_moved_message(const std::filesystem::path& save_dir, const std::string& tag,
                                     const std::optional<std::string>& previous, const std::string& cause) {
  const auto latest = (save_dir / kLatestFile).string();
  return "save_checkpoint: " + latest + " could not be updated to name '" + tag + "' (" + cause +
         "); the save failed as a whole: " + tag_dir(save_dir, tag).string() +
         ", complete but named by nothing, was removed to free its space, and " +
         (previous ? latest + " still names '" + *previous + "'" : "there is still no " + latest);
}

// Rank 0's commit failed and it undid the save: the other ranks say so, so that nobody takes
// the new checkpoint for a damaged one (a rank that died is a CommError, passed on as it is).
[[noreturn]] void rethrow_commit_failure(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const CheckpointError& e) {
    throw CheckpointError(std::string(e.what()) +
                          "; the save failed as a whole: `latest` and the checkpoint it names are unchanged");
  }
}

}  // namespace

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

  bool committing = false;
  try {
    std::vector<ManifestEntry> mine;
    run_phase(group, "writing its checkpoint files into " + staging.string(), [&] {
      for (const auto& f : make_files()) {
        storage.write_file(staging / f.name, f.bytes);
        mine.push_back(describe_file(f.name, f.bytes, group.rank()));
      }
    });

    const auto all = all_gather_bytes(group, encode_entries(mine));
    committing = true;
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
      // What `latest` names now: the save is undone back to it if `latest` cannot be moved.
      std::optional<std::string> previous;
      try {
        previous = read_latest_tag(storage, save_dir);
      } catch (const CheckpointError&) {
        // Unreadable: rewritten below like a `latest` that names another tag.
      }
      const auto target = tag_dir(save_dir, header.tag);
      replace_directory(staging, target);
      // Written last, and only once the tag folder is complete and in place; no newline,
      // as DeepSpeed writes it.
      if (save_latest && previous != header.tag) {
        try {
          storage.write_file(save_dir / kLatestFile, std::span<const char>(header.tag.data(), header.tag.size()));
        } catch (const std::exception& e) {
          // A full disk that still took every checkpoint file but not `latest`'s few bytes.
          // The save fails as a whole, as every other failed save does: a complete checkpoint
          // that `latest` does not name would hold the space the next save needs, and a
          // resume would silently start from the previous one.
          remove_tree(target);
          throw CheckpointError(latest_not_moved_message(save_dir, header.tag, previous, e.what()));
        }
      }
    });
  } catch (...) {
    // A save that failed with an error (a full disk, a rank that died) leaves nothing behind:
    // its staging folder is of no use, and on a full disk it holds the space the next save
    // needs. Every rank is past its writes here (the failure was agreed on, or a peer is gone).
    if (leader) remove_tree(staging);
    if (committing && !leader) rethrow_commit_failure(std::current_exception());
    throw;
  }
}

}  // namespace deepspeed::checkpoint
