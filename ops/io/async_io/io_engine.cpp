#include "io/async_io/io_engine.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <list>
#include <thread>
#include <unordered_set>

#include <fmt/format.h>

#include "deepspeed/errors.h"

namespace deepspeed::ops::aio {

// The largest piece handed to the kernel: io_uring takes 32-bit lengths, and Linux moves at
// most 2 GiB - 4 KiB per call anyway. A power of two, so that pieces stay aligned.
constexpr int64_t kMaxPieceBytes = int64_t{1} << 30;
// io_uring's limit on ring entries (IORING_MAX_ENTRIES); deeper queues are used at this depth.
constexpr int64_t kMaxQueueDepth = 32768;
// EINTR/EAGAIN on a piece: resubmitted this many times before it counts as a failure.
constexpr int kMaxTransientRetries = 100;

namespace {

const char* verb(Direction d) { return d == Direction::Read ? "reading" : "writing"; }

// What O_DIRECT needs of buffer addresses (memory) and of file offsets and sizes (offset).
struct DirectAlignment {
  bool supported = true;
  int64_t memory = 4096;
  int64_t offset = 4096;
};

DirectAlignment direct_alignment(int fd) {
  DirectAlignment a;
#ifdef STATX_DIOALIGN
  // Linux 6.1+ says what the file's file system and device need; older kernels leave the
  // mask bit clear, and 4096 (the largest logical block size in use) is safe everywhere.
  struct statx sx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) != 0) {
    if (sx.stx_dio_offset_align == 0) {
      a.supported = false;  // the file system has no direct I/O for this file
    } else {
      a.memory = std::max<int64_t>(1, sx.stx_dio_mem_align);
      a.offset = sx.stx_dio_offset_align;
    }
  }
#else
  (void)fd;
#endif
  return a;
}

int open_retrying(const char* path, int flags) {
  int fd;
  do {
    fd = ::open(path, flags, 0666);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

// One submitted transfer. Completion state (parts_left, done) is guarded by the engine's mutex.
class Transfer {
 public:
  Transfer(Direction direction, char* buffer, int64_t bytes, std::string path, int64_t file_offset,
           std::shared_ptr<void> keep_alive)
      : direction(direction),
        buffer(buffer),
        bytes(bytes),
        path(std::move(path)),
        file_offset(file_offset),
        keep_alive(std::move(keep_alive)) {}
  ~Transfer() {
    if (fd >= 0) ::close(fd);
    if (buffered_fd_ >= 0) ::close(buffered_fd_);
  }
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  // The file without O_DIRECT: `fd` itself, or for a direct transfer a second descriptor,
  // opened on first use (a piece the file system refused, the rest of a short transfer).
  // -1 with `error` set when it cannot be opened.
  int buffered_fd(std::string& error) {
    if (!direct) return fd;
    std::lock_guard<std::mutex> lock(mutex_);
    if (buffered_fd_ < 0) {
      buffered_fd_ = open_retrying(path.c_str(), (direction == Direction::Read ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
      if (buffered_fd_ < 0) {
        error = fmt::format("async_io: cannot reopen {} without O_DIRECT for {}: {}", path, verb(direction),
                            errno_text(errno));
      }
    }
    return buffered_fd_;
  }

  // Keeps the first failure; the others usually follow from it.
  void record_failure(const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_.empty()) error_ = message;
  }
  std::string error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
  }

  const Direction direction;
  char* const buffer;
  const int64_t bytes;
  const std::string path;
  const int64_t file_offset;
  int fd = -1;
  bool direct = false;
  std::shared_ptr<void> keep_alive;
  // Guarded by Engine::mutex_.
  int64_t parts_left = 0;
  bool done = false;

 private:
  mutable std::mutex mutex_;
  int buffered_fd_ = -1;
  std::string error_;
};

namespace detail {

// A worker's share of a transfer: bytes [next, end) still to submit.
struct Slice {
  std::shared_ptr<Transfer> transfer;
  int64_t next;
  int64_t end;
  int64_t outstanding = 0;  // pieces submitted (or waiting to be resubmitted), not finished
  bool failed = false;      // stop submitting its pieces
};

// One request to the queue; its address is the request's tag.
struct Piece {
  Slice* slice;
  char* buffer;
  int64_t length;
  int64_t file_offset;
  bool buffered;  // through the page cache (Transfer::buffered_fd)
  int transient_retries = 0;
};

}  // namespace detail

class Worker {
 public:
  Worker(Engine& engine, std::unique_ptr<IoQueue> queue)
      : engine_(engine), queue_(std::move(queue)), thread_([this] { run(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void post(std::unique_ptr<detail::Slice> slice) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      incoming_.push_back(std::move(slice));
    }
    wake_.notify_one();
  }

  const char* queue_name() const { return queue_->name(); }

 private:
  void run() {
    std::vector<IoResult> results;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        if (in_flight_ == 0 && active_.empty()) {
          wake_.wait(lock, [this] { return stop_ || !incoming_.empty(); });
          if (incoming_.empty()) return;  // stopping, with nothing left to do
        }
        while (!incoming_.empty()) {
          active_.push_back(std::move(incoming_.front()));
          incoming_.pop_front();
        }
      }
      if (!broken_.empty()) {
        abandon_all();
      } else {
        try {
          fill();
          if (in_flight_ > 0) {
            results.clear();
            // overlap_events: back to filling as soon as one piece is done; otherwise the
            // whole batch completes first (DeepSpeed's sequential mode).
            queue_->collect(engine_.options().overlap_events ? 1 : in_flight_, results);
            for (const IoResult& r : results) {
              auto* piece = static_cast<detail::Piece*>(r.tag);
              with_queue_.erase(piece);
              --in_flight_;
              complete(std::unique_ptr<detail::Piece>(piece), r.result);
            }
          }
        } catch (const std::exception& e) {
          // The queue itself failed (not one request): nothing more can go through it.
          broken_ = e.what();
          abandon_all();
        }
      }
      finish_slices();
    }
  }

  // Tops the queue up to its depth: resubmissions first, then new pieces in transfer order.
  void fill() {
    const EngineOptions& o = engine_.options();
    const int64_t depth = std::min(o.queue_depth, kMaxQueueDepth);
    const int64_t piece_bytes = std::min(o.block_size, kMaxPieceBytes);
    int64_t prepared = 0;
    auto put = [&](std::unique_ptr<detail::Piece> p) {
      Transfer& t = *p->slice->transfer;
      int fd = t.fd;
      if (p->buffered) {
        std::string error;
        fd = t.buffered_fd(error);
        if (fd < 0) return fail(std::move(p), error);
      }
      queue_->prepare({t.direction, fd, p->buffer, p->length, p->file_offset, p.get()});
      with_queue_.insert(p.release());  // back to a unique_ptr when its result comes
      ++in_flight_;
      ++prepared;
      if (o.single_submit) queue_->submit();
    };
    while (in_flight_ < depth && !retries_.empty()) {
      auto p = std::move(retries_.front());
      retries_.pop_front();
      put(std::move(p));
    }
    for (auto& s : active_) {
      Transfer& t = *s->transfer;
      while (in_flight_ < depth && !s->failed && s->next < s->end) {
        const int64_t length = std::min(piece_bytes, s->end - s->next);
        auto p = std::make_unique<detail::Piece>(
            detail::Piece{s.get(), t.buffer + s->next, length, t.file_offset + s->next, !t.direct});
        s->next += length;
        ++s->outstanding;
        put(std::move(p));
      }
      if (in_flight_ >= depth) break;
    }
    if (!o.single_submit && prepared > 0) queue_->submit();
  }

  void complete(std::unique_ptr<detail::Piece> p, int64_t result) {
    Transfer& t = *p->slice->transfer;
    if (result < 0) {
      const int error = static_cast<int>(-result);
      if ((error == EINTR || error == EAGAIN) && ++p->transient_retries <= kMaxTransientRetries) {
        retries_.push_back(std::move(p));
        return;
      }
      if (error == EINVAL && !p->buffered) {
        // The file system took O_DIRECT at open but refuses this request: page cache.
        engine_.note_direct_refusal();
        p->buffered = true;
        retries_.push_back(std::move(p));
        return;
      }
      const std::string message =
          fmt::format("async_io: {} {} failed at file offset {} ({} bytes{}): {}", verb(t.direction), t.path,
                      p->file_offset, p->length, p->buffered ? "" : ", O_DIRECT", errno_text(error));
      return fail(std::move(p), message);
    }
    if (result == 0 && p->length > 0) {
      // The message first: fail() takes the piece (argument order is unspecified).
      std::string message;
      if (t.direction == Direction::Read) {
        struct stat st {};
        const std::string size = ::fstat(t.fd, &st) == 0 ? fmt::format("{}", st.st_size) : std::string("?");
        message = fmt::format("async_io: reading {}: end of file at offset {}; the read needs bytes [{}, {}) and the "
                              "file has {} bytes",
                              t.path, p->file_offset, t.file_offset, t.file_offset + t.bytes, size);
      } else {
        message = fmt::format("async_io: writing {} at file offset {}: no bytes written of {}", t.path, p->file_offset,
                              p->length);
      }
      return fail(std::move(p), message);
    }
    if (result < p->length) {
      // A short transfer: the rest goes again, through the page cache (it need not be aligned).
      p->buffer += result;
      p->file_offset += result;
      p->length -= result;
      p->buffered = true;
      retries_.push_back(std::move(p));
      return;
    }
    --p->slice->outstanding;
  }

  void fail(std::unique_ptr<detail::Piece> p, const std::string& message) {
    p->slice->failed = true;
    --p->slice->outstanding;
    p->slice->transfer->record_failure(message);
  }

  // After the queue failed: every slice fails, and what the queue held is given up (it will
  // never be collected).
  void abandon_all() {
    for (auto& s : active_) {
      if (!s->failed) s->transfer->record_failure(fmt::format("async_io: {} {}: {}", verb(s->transfer->direction),
                                                              s->transfer->path, broken_));
      s->failed = true;
      s->outstanding = 0;
    }
    retries_.clear();
    for (detail::Piece* p : with_queue_) delete p;
    with_queue_.clear();
    in_flight_ = 0;
  }

  void finish_slices() {
    for (auto it = active_.begin(); it != active_.end();) {
      detail::Slice& s = **it;
      if ((s.failed || s.next == s.end) && s.outstanding == 0) {
        engine_.transfer_part_done(*s.transfer);
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
  }

  Engine& engine_;
  std::unique_ptr<IoQueue> queue_;
  std::mutex mutex_;  // guards incoming_ and stop_
  std::condition_variable wake_;
  std::deque<std::unique_ptr<detail::Slice>> incoming_;
  bool stop_ = false;
  // The worker thread's own state.
  std::list<std::unique_ptr<detail::Slice>> active_;
  std::deque<std::unique_ptr<detail::Piece>> retries_;
  std::unordered_set<detail::Piece*> with_queue_;  // prepared, result not yet back
  int64_t in_flight_ = 0;
  std::string broken_;
  std::thread thread_;  // last: started once everything above exists
};

Engine::Engine(const EngineOptions& options) : options_(options) {
  for (const auto& [name, value] : {std::pair<const char*, int64_t>{"block_size", options.block_size},
                                    {"queue_depth", options.queue_depth},
                                    {"intra_op_parallelism", options.threads}}) {
    if (value < 1) throw AioError(fmt::format("async_io: {} must be at least 1, got {}", name, value));
  }
  const int64_t depth = std::min(options.queue_depth, kMaxQueueDepth);
  QueueKind kind = options.queue;
  if (options.queue_factory) {
    for (int64_t i = 0; i < options.threads; ++i) {
      workers_.push_back(std::make_unique<Worker>(*this, options.queue_factory(depth)));
    }
    return;
  }
  if (kind == QueueKind::Auto) {
    try {
      make_io_uring_queue(depth);
      kind = QueueKind::IoUring;
    } catch (const AioError& e) {
      fallback_reason_ = e.what();
      kind = QueueKind::Blocking;
    }
  }
  for (int64_t i = 0; i < options.threads; ++i) {
    auto queue = kind == QueueKind::IoUring ? make_io_uring_queue(depth) : make_blocking_queue();
    workers_.push_back(std::make_unique<Worker>(*this, std::move(queue)));
  }
}

Engine::~Engine() {
  try {
    wait_all();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s (a transfer that was never waited for)\n", e.what());
  }
  workers_.clear();
}

const char* Engine::queue_name() const { return workers_.front()->queue_name(); }

EngineStats Engine::stats() const {
  return {direct_transfers_.load(), buffered_transfers_.load(), direct_refusals_.load()};
}

std::shared_ptr<Transfer> Engine::submit(Direction direction, void* buffer, int64_t bytes, const std::string& path,
                                         int64_t file_offset, std::shared_ptr<void> keep_alive) {
  if (bytes < 0 || file_offset < 0 || (bytes > 0 && buffer == nullptr)) {
    throw AioError(fmt::format("async_io: {} {}: invalid request ({} bytes at file offset {})", verb(direction), path,
                               bytes, file_offset));
  }
  auto t = std::make_shared<Transfer>(direction, static_cast<char*>(buffer), bytes, path, file_offset,
                                      std::move(keep_alive));
  const int flags = (direction == Direction::Read ? O_RDONLY : O_WRONLY | O_CREAT) | O_CLOEXEC;
  t->fd = open_retrying(path.c_str(), flags);
  if (t->fd < 0) {
    throw AioError(fmt::format("async_io: cannot open {} for {}: {}", path, verb(direction), errno_text(errno)));
  }
  if (direction == Direction::Read) {
    struct stat st {};
    if (::fstat(t->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < file_offset + bytes) {
      throw AioError(fmt::format("async_io: cannot read {} bytes at file offset {} of {}: the file has {} bytes (the "
                                 "read would end at {})",
                                 bytes, file_offset, path, st.st_size, file_offset + bytes));
    }
  }
  const int64_t piece_bytes = std::min(options_.block_size, kMaxPieceBytes);
  if (options_.direct_io && bytes > 0) {
    const DirectAlignment a = direct_alignment(t->fd);
    if (a.supported && reinterpret_cast<uintptr_t>(buffer) % static_cast<uintptr_t>(a.memory) == 0 &&
        file_offset % a.offset == 0 && bytes % a.offset == 0 && piece_bytes % a.offset == 0) {
      const int status = ::fcntl(t->fd, F_GETFL);
      if (status >= 0 && ::fcntl(t->fd, F_SETFL, status | O_DIRECT) == 0) {
        t->direct = true;
      } else {
        direct_refusals_.fetch_add(1);  // e.g. a file system without direct I/O
      }
    }
  }
  (t->direct ? direct_transfers_ : buffered_transfers_).fetch_add(1);

  const int64_t pieces = (bytes + piece_bytes - 1) / piece_bytes;
  const auto n_workers = static_cast<int64_t>(workers_.size());
  const int64_t parts = std::min(n_workers, pieces);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    t->parts_left = parts;
    t->done = parts == 0;
    pending_.push_back(t);
  }
  // Contiguous runs of pieces, one per thread; small transfers rotate over the threads.
  for (int64_t i = 0; i < parts; ++i) {
    const int64_t first = pieces * i / parts;
    const int64_t last = pieces * (i + 1) / parts;
    auto slice =
        std::make_unique<detail::Slice>(detail::Slice{t, first * piece_bytes, std::min(last * piece_bytes, bytes)});
    workers_[(next_worker_ + static_cast<size_t>(i)) % workers_.size()]->post(std::move(slice));
  }
  next_worker_ = (next_worker_ + 1) % workers_.size();
  return t;
}

void Engine::transfer_part_done(Transfer& transfer) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (--transfer.parts_left == 0) {
    transfer.done = true;
    done_.notify_all();
  }
}

int64_t Engine::wait_all() {
  std::vector<std::shared_ptr<Transfer>> finished;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] {
      return std::all_of(pending_.begin(), pending_.end(), [](const auto& t) { return t->done; });
    });
    finished.swap(pending_);
  }
  std::string first_error;
  int64_t failed = 0;
  for (const auto& t : finished) {
    std::string e = t->error();
    if (e.empty()) continue;
    if (failed++ == 0) first_error = std::move(e);
  }
  const auto count = static_cast<int64_t>(finished.size());
  finished.clear();  // closes the files and lets go of the buffers
  if (failed == 1) throw AioError(first_error);
  if (failed > 1) {
    throw AioError(fmt::format("{} (and {} more of the {} transfers failed)", first_error, failed - 1, count));
  }
  return count;
}

void Engine::wait(const std::shared_ptr<Transfer>& transfer) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return transfer->done; });
    pending_.erase(std::remove(pending_.begin(), pending_.end(), transfer), pending_.end());
  }
  if (std::string e = transfer->error(); !e.empty()) throw AioError(e);
}

int64_t Engine::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(pending_.size());
}

}  // namespace deepspeed::ops::aio
