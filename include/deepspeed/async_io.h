// DeepSpeed's async_io op (aio_handle): reads and writes of CPU tensors from and to files that
// run in the background, for ZeRO-3's NVMe offload (swapping parameters and optimizer state)
// and anything else that moves large buffers to and from fast storage.
//
//   deepspeed::ops::AioHandle aio(config.aio);           // or AioHandle({.queue_depth = 32})
//   aio.async_pwrite(tensor, "/nvme/swap/param_7.bin");  // returns at once
//   ...                                                   // tensor must stay untouched
//   aio.wait();                                           // 1: every queued transfer is done
//   aio.sync_pread(other, "/nvme/swap/param_7.bin");      // returns when done
//
// Promises:
// - A transfer moves buffer.nbytes() bytes verbatim (any dtype) between a contiguous CPU
//   tensor and the file at file_offset. Tensors that are not contiguous, not on the CPU or
//   not strided are refused with AioError, before anything is queued.
// - async_pread/async_pwrite open the file, queue the transfer and return. The file is
//   created for writing if missing (mode 0666 less the umask) and never truncated; a file
//   that cannot be opened, or a read past its end, is an AioError from the call itself.
// - wait() completes every queued transfer and returns how many there were. A transfer that
//   failed (I/O error, short read or write) makes it throw AioError naming the file, the
//   offset and the system's error text, after all the others have finished; no buffer is
//   then in use. sync_pread/sync_pwrite run one transfer to its end (others stay queued).
// - Transfers queued together may run in any order and at the same time: do not read what
//   a queued write is still writing. The tensor is kept alive until its transfer is waited for.
// - I/O runs on io_uring (liburing); where the kernel refuses io_uring, on threads doing
//   pread/pwrite (backend() says which, fallback_reason() why). O_DIRECT is used where the
//   buffer address, offset and size meet the file system's alignment (new_cpu_locked_tensor
//   gives such buffers), else the page cache. Both fallbacks give the same bytes.
// - One thread uses a handle at a time. The destructor waits for what is still queued.
// - In a build without the op (no liburing at configure time, DS_BUILD_AIO=OFF) the
//   constructor throws AioError saying so; async_io_built() tells beforehand.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <torch/types.h>

#include <deepspeed/config.h>
#include <deepspeed/errors.h>

namespace deepspeed::ops {

namespace aio {
class Engine;
}  // namespace aio

enum class AioBackend {
  Auto,     // io_uring when this machine allows it, else Threads
  IoUring,  // io_uring or an AioError
  Threads,  // blocking pread/pwrite on the handle's threads
};

struct AioOptions {
  int64_t block_size = 1048576;      // a transfer goes to the kernel in pieces of this many bytes
  int64_t queue_depth = 8;           // pieces in flight per thread (io_uring caps it at 32768)
  bool single_submit = false;        // submit pieces one by one instead of in batches
  bool overlap_events = true;        // refill the queue as pieces complete, not when all have
  int64_t intra_op_parallelism = 1;  // threads a transfer is split across (DeepSpeed's thread_count)
  AioBackend backend = AioBackend::Auto;
  bool direct_io = true;             // O_DIRECT where the alignment allows it
};

// The handle's options for the "aio" config section. Throws AioError for use_gds (there is
// no GPUDirect Storage op in deepspeed-cpp).
AioOptions aio_options(const AioConfig& config);

// What the handle did so far (tests, benchmarks, logs).
struct AioStats {
  int64_t direct_transfers = 0;    // opened with O_DIRECT
  int64_t buffered_transfers = 0;  // through the page cache
  int64_t direct_refusals = 0;     // aligned, but the file system refused O_DIRECT: page cache
};

class AioHandle {
 public:
  explicit AioHandle(const AioOptions& options = {});
  explicit AioHandle(const AioConfig& config);
  // DeepSpeed's positional form: aio_handle(block_size, queue_depth, single_submit,
  // overlap_events, intra_op_parallelism).
  AioHandle(int64_t block_size, int64_t queue_depth, bool single_submit, bool overlap_events,
            int64_t intra_op_parallelism);
  ~AioHandle();
  AioHandle(AioHandle&&) noexcept;
  AioHandle& operator=(AioHandle&&) noexcept;

  void async_pread(const torch::Tensor& buffer, const std::string& path, int64_t file_offset = 0);
  void async_pwrite(const torch::Tensor& buffer, const std::string& path, int64_t file_offset = 0);
  void sync_pread(const torch::Tensor& buffer, const std::string& path, int64_t file_offset = 0);
  void sync_pwrite(const torch::Tensor& buffer, const std::string& path, int64_t file_offset = 0);
  // Completes every queued transfer; returns how many there were (0 if none).
  int64_t wait();
  // Transfers queued and not yet waited for.
  int64_t pending() const;

  // A 1-D tensor of num_elem elements of example's dtype, page-aligned (so that O_DIRECT
  // applies to it) and, where RLIMIT_MEMLOCK allows, locked in memory with mlock.
  torch::Tensor new_cpu_locked_tensor(int64_t num_elem, const torch::Tensor& example) const;

  int64_t get_block_size() const;
  int64_t get_queue_depth() const;
  bool get_single_submit() const;
  bool get_overlap_events() const;
  int64_t get_intra_op_parallelism() const;
  // IoUring or Threads: what the handle runs on.
  AioBackend backend() const;
  // Why io_uring is not used under AioBackend::Auto; "" when it is.
  std::string fallback_reason() const;
  AioStats stats() const;

 private:
  std::unique_ptr<aio::Engine> engine_;
};

// "io_uring", "threads" or "auto".
const char* to_string(AioBackend backend);

// Whether this build has the async_io op (DS_BUILD_AIO on and liburing found at configure time).
bool async_io_built();
// Why io_uring cannot be used on this machine ("" when it can). A handle then uses threads.
std::string io_uring_unavailable_reason();

}  // namespace deepspeed::ops
