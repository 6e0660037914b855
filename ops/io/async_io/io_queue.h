// The submission queue under the async_io engine: somewhere to put read/write requests and
// later collect their results. Two implementations:
// - io_uring (liburing): requests go to the kernel, which runs up to the queue depth of them
//   at once; the thread that submitted them sleeps until one completes.
// - blocking: each request is one pread/pwrite on the calling thread, run when the results
//   are asked for. The fallback where io_uring cannot be set up (a kernel built without it,
//   kernel.io_uring_disabled, a seccomp filter that refuses it, as some containers have).
//
// A queue belongs to one thread. Results carry the tag given with the request and what the
// system call returned: bytes transferred, or -errno. No pure C++ here needs LibTorch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace deepspeed::ops::aio {

enum class Direction { Read, Write };

struct IoOp {
  Direction direction;
  int fd;
  char* buffer;
  int64_t length;
  int64_t file_offset;
  void* tag;
};

struct IoResult {
  void* tag;
  int64_t result;  // bytes transferred, or -errno
};

class IoQueue {
 public:
  virtual ~IoQueue() = default;
  // Queues one request. The caller never has more than the queue's depth of requests
  // prepared or in flight.
  virtual void prepare(const IoOp& op) = 0;
  // Hands the prepared requests to the system.
  virtual void submit() = 0;
  // Waits until at least `min_results` results are there (no more than are in flight), then
  // appends every result there is to `out`.
  virtual void collect(int64_t min_results, std::vector<IoResult>& out) = 0;
  virtual const char* name() const = 0;
};

// "No such file or directory (errno 2)": how the op's messages show a system error.
std::string errno_text(int error);

// An io_uring of `depth` entries; throws AioError (with the reason) when the kernel refuses.
std::unique_ptr<IoQueue> make_io_uring_queue(int64_t depth);
std::unique_ptr<IoQueue> make_blocking_queue();

// Why io_uring cannot be used on this machine: a ring is set up and a no-op request is run
// through it. "" when that works. What ds_report shows as async_io's compatibility.
std::string io_uring_unavailable_reason();

}  // namespace deepspeed::ops::aio
