// The async_io engine: transfers between memory and files, queued by one thread and carried
// out by `threads` worker threads, each with its own IoQueue (io_uring, or blocking
// pread/pwrite where io_uring cannot be used). Raw pointers and paths; no LibTorch (the
// tensor API over it is include/deepspeed/async_io.h).
//
// A transfer is split into pieces of block_size bytes; its pieces are shared out among the
// threads in contiguous runs; each thread keeps up to queue_depth pieces in flight, across
// transfers. The file is opened when the transfer is submitted (so a missing directory or a
// read past the end of the file is an error at once) and closed when it is collected.
// O_DIRECT is used when the buffer address, file offset and size meet the file system's
// direct-I/O alignment (statx STATX_DIOALIGN; 4096 where the kernel does not say) and the
// block size keeps the pieces aligned; otherwise, or when the file system refuses O_DIRECT
// (at open or on a piece), the page cache is used. A short transfer is continued.
//
// Contract: one thread submits and waits (the handle is not shared between threads); the
// memory of a transfer stays valid and untouched until it has been collected.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/async_io/io_queue.h"

namespace deepspeed::ops::aio {

enum class QueueKind { Auto, IoUring, Blocking };

struct EngineOptions {
  int64_t block_size = 1048576;
  int64_t queue_depth = 8;
  bool single_submit = false;   // hand each piece to the kernel on its own, not in batches
  bool overlap_events = true;   // refill the queue as pieces complete, not when all have
  int64_t threads = 1;
  QueueKind queue = QueueKind::Auto;  // Auto: io_uring, else blocking (with the reason kept)
  bool direct_io = true;              // use O_DIRECT where alignment allows
  // A seam for tests: when set, each thread's queue comes from here (given the depth) and
  // `queue` is not looked at; a fake queue injects short transfers and errors.
  std::function<std::unique_ptr<IoQueue>(int64_t depth)> queue_factory;
};

struct EngineStats {
  int64_t direct_transfers = 0;    // opened with O_DIRECT
  int64_t buffered_transfers = 0;  // through the page cache (unaligned, or O_DIRECT refused at open)
  int64_t direct_refusals = 0;     // aligned transfers or pieces that fell back to the page cache
};

class Transfer;
class Worker;

class Engine {
 public:
  // Throws AioError for options below 1, or when io_uring is asked for and cannot be set up.
  explicit Engine(const EngineOptions& options);
  // Waits for every transfer (their errors are reported on stderr: nobody else can see them).
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Opens `path` and queues the transfer of `bytes` bytes at `buffer` to/from `file_offset`.
  // `keep_alive` is held until the transfer is collected. Throws AioError when the file
  // cannot be opened, or (reads) is shorter than file_offset + bytes.
  std::shared_ptr<Transfer> submit(Direction direction, void* buffer, int64_t bytes, const std::string& path,
                                   int64_t file_offset, std::shared_ptr<void> keep_alive = nullptr);
  // Waits for every queued transfer and collects them; returns how many there were. If any
  // failed, throws AioError (after all have finished) with the first failure's message.
  int64_t wait_all();
  // Waits for one transfer and collects it (the others stay queued); throws if it failed.
  void wait(const std::shared_ptr<Transfer>& transfer);
  // Transfers queued and not yet collected.
  int64_t pending() const;

  const EngineOptions& options() const { return options_; }
  // What the threads run on: "io_uring" or "threads".
  const char* queue_name() const;
  // Why io_uring is not used with QueueKind::Auto ("" when it is).
  const std::string& fallback_reason() const { return fallback_reason_; }
  EngineStats stats() const;

  // For the workers.
  void transfer_part_done(Transfer& transfer);
  void note_direct_refusal() { direct_refusals_.fetch_add(1); }

 private:
  EngineOptions options_;
  std::string fallback_reason_;
  std::vector<std::unique_ptr<Worker>> workers_;
  size_t next_worker_ = 0;
  std::atomic<int64_t> direct_transfers_{0};
  std::atomic<int64_t> buffered_transfers_{0};
  std::atomic<int64_t> direct_refusals_{0};

  mutable std::mutex mutex_;  // guards pending_ and every transfer's completion state
  std::condition_variable done_;
  std::vector<std::shared_ptr<Transfer>> pending_;
};

}  // namespace deepspeed::ops::aio
