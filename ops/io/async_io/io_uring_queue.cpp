// IoQueue on io_uring (liburing). One ring per engine thread, sized to the queue depth, so
// that the submission queue never fills (the engine keeps at most `depth` requests prepared
// or in flight) and the completion queue (twice the size) never overflows.
#include <liburing.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "deepspeed/errors.h"
#include "io/async_io/io_queue.h"

namespace deepspeed::ops::aio {

std::string errno_text(int error) { return fmt::format("{} (errno {})", std::strerror(error), error); }

namespace {

std::string init_failure(int error) {
  std::string hint;
  if (error == EPERM) {
    hint = "; kernel.io_uring_disabled or a seccomp filter (a container's) forbids io_uring";
  } else if (error == ENOSYS) {
    hint = "; this kernel has no io_uring";
  } else if (error == ENOMEM) {
    hint = "; RLIMIT_MEMLOCK may be too small for the ring (ulimit -l)";
  }
  return fmt::format("io_uring_queue_init failed: {}{}", errno_text(error), hint);
}

// Transient submission refusals (EAGAIN, EBUSY) retried 100 us apart before giving up: 1 s.
constexpr int kMaxSubmitRetries = 10000;

class IoUringQueue final : public IoQueue {
 public:
  explicit IoUringQueue(int64_t depth) {
    const int r = io_uring_queue_init(static_cast<unsigned>(depth), &ring_, 0);
    if (r < 0) throw AioError("async_io: " + init_failure(-r));
  }
  ~IoUringQueue() override { io_uring_queue_exit(&ring_); }
  IoUringQueue(const IoUringQueue&) = delete;
  IoUringQueue& operator=(const IoUringQueue&) = delete;

  void prepare(const IoOp& op) override {
    if (broken_ != 0) {
      failed_.push_back({op.tag, -broken_});
      return;
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {  // cannot happen: the ring holds the queue depth
      failed_.push_back({op.tag, -EAGAIN});
      return;
    }
    const auto length = static_cast<unsigned>(op.length);
    const auto offset = static_cast<uint64_t>(op.file_offset);
    if (op.direction == Direction::Read) {
      io_uring_prep_read(sqe, op.fd, op.buffer, length, offset);
    } else {
      io_uring_prep_write(sqe, op.fd, op.buffer, length, offset);
    }
    io_uring_sqe_set_data(sqe, op.tag);
    unsubmitted_.push_back(op.tag);
  }

  void submit() override {
    size_t done = 0;
    int retries = 0;
    while (done < unsubmitted_.size()) {
      int r = io_uring_submit(&ring_);
      if (r > 0) {
        done += static_cast<size_t>(r);
        retries = 0;
        continue;
      }
      if (r == 0) r = -EAGAIN;  // nothing taken: as a transient refusal
      if ((r == -EINTR || r == -EAGAIN || r == -EBUSY) && ++retries < kMaxSubmitRetries) {
        // Out of kernel memory for a moment (our completions cannot overflow the ring:
        // in flight <= depth <= its size): wait a little and retry.
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        continue;
      }
      // The ring is unusable: what was not submitted fails, and so does everything after.
      broken_ = -r;
      for (size_t i = done; i < unsubmitted_.size(); ++i) failed_.push_back({unsubmitted_[i], r});
      break;
    }
    in_flight_ += static_cast<int64_t>(done);
    unsubmitted_.clear();
  }

  void collect(int64_t min_results, std::vector<IoResult>& out) override {
    int64_t got = static_cast<int64_t>(failed_.size());
    out.insert(out.end(), failed_.begin(), failed_.end());
    failed_.clear();
    if (min_results > got + in_flight_) min_results = got + in_flight_;
    while (in_flight_ > 0) {
      const int64_t wanted = min_results > got ? min_results - got : 0;
      io_uring_cqe* cqe = nullptr;
      if (wanted > 0) {
        const int r = io_uring_wait_cqe_nr(&ring_, &cqe, static_cast<unsigned>(wanted));
        if (r == -EINTR || r == -EAGAIN) continue;
        if (r < 0) throw AioError("async_io: io_uring_wait_cqe failed: " + errno_text(-r));
      }
      unsigned head = 0;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        out.push_back({io_uring_cqe_get_data(cqe), static_cast<int64_t>(cqe->res)});
        ++seen;
      }
      io_uring_cq_advance(&ring_, seen);
      in_flight_ -= seen;
      got += seen;
      if (got >= min_results) break;
    }
  }

  const char* name() const override { return "io_uring"; }

 private:
  io_uring ring_{};
  std::vector<void*> unsubmitted_;
  std::vector<IoResult> failed_;
  int64_t in_flight_ = 0;
  int broken_ = 0;  // errno that made the ring unusable
};

}  // namespace

std::unique_ptr<IoQueue> make_io_uring_queue(int64_t depth) { return std::make_unique<IoUringQueue>(depth); }

std::string io_uring_unavailable_reason() {
  io_uring ring{};
  int r = io_uring_queue_init(1, &ring, 0);
  if (r < 0) return init_failure(-r);
  std::string reason;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_nop(sqe);
  r = io_uring_submit(&ring);
  if (r != 1) {
    reason = "io_uring_submit of a no-op failed: " + (r < 0 ? errno_text(-r) : std::string("nothing submitted"));
  } else {
    io_uring_cqe* cqe = nullptr;
    r = io_uring_wait_cqe(&ring, &cqe);
    if (r < 0) {
      reason = "io_uring_wait_cqe of a no-op failed: " + errno_text(-r);
    } else {
      if (cqe->res < 0) reason = "a no-op request through io_uring failed: " + errno_text(-cqe->res);
      io_uring_cqe_seen(&ring, cqe);
    }
  }
  io_uring_queue_exit(&ring);
  return reason;
}

}  // namespace deepspeed::ops::aio
