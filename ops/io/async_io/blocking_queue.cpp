// IoQueue without kernel queues: each request is one pread/pwrite, run on the engine thread
// when results are collected. Concurrency then comes only from the engine's threads
// (intra_op_parallelism); the queue depth bounds how many requests wait here.
#include <unistd.h>

#include <cerrno>

#include "io/async_io/io_queue.h"

namespace deepspeed::ops::aio {
namespace {

class BlockingQueue final : public IoQueue {
 public:
  void prepare(const IoOp& op) override { prepared_.push_back(op); }
  void submit() override {}

  void collect(int64_t /*min_results*/, std::vector<IoResult>& out) override {
    for (const IoOp& op : prepared_) {
      const auto length = static_cast<size_t>(op.length);
      ssize_t r;
      do {
        r = op.direction == Direction::Read ? ::pread(op.fd, op.buffer, length, op.file_offset)
                                            : ::pwrite(op.fd, op.buffer, length, op.file_offset);
      } while (r < 0 && errno == EINTR);
      out.push_back({op.tag, r < 0 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(r)});
    }
    prepared_.clear();
  }

  const char* name() const override { return "threads"; }

 private:
  std::vector<IoOp> prepared_;
};

}  // namespace

std::unique_ptr<IoQueue> make_blocking_queue() { return std::make_unique<BlockingQueue>(); }

}  // namespace deepspeed::ops::aio
