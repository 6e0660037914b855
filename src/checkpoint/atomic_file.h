// Durable, all-or-nothing file and folder updates for checkpoints. A crash at any moment
// leaves either the old content or the new, never a torn file under the final name.
#pragma once

#include <filesystem>
#include <span>
#include <vector>

namespace deepspeed::checkpoint {

// Writes `bytes` to "<path>.tmp", fsyncs it, renames it to `path` and fsyncs the folder.
// Throws CheckpointError naming the file (and errno's text) on failure.
void write_file_atomically(const std::filesystem::path& path, std::span<const char> bytes);
std::vector<char> read_whole_file(const std::filesystem::path& path);

// Makes a rename or a new file in `dir` durable.
void fsync_directory(const std::filesystem::path& dir);

// Removes a file or a folder with everything in it; returns 0 or the first errno. Not
// std::filesystem::remove_all: a PyTorch 2.x wheel's libtorch.so exports its own copy, which
// the dynamic linker may bind first and which crashes when called from our code.
int remove_tree(const std::filesystem::path& path);

// Puts the finished folder `staging` in place of `target`. When `target` exists the two
// are swapped in one step (renameat2 RENAME_EXCHANGE) and the old content, now at
// `staging`, is removed; on a file system without that call the old folder is removed
// first (a short window in which a crash loses it; logged by the caller's docs).
void replace_directory(const std::filesystem::path& staging, const std::filesystem::path& target);

}  // namespace deepspeed::checkpoint
