// The tensor API of the async_io op (include/deepspeed/async_io.h) over the engine of
// io_engine.h. Compiled into every build: without the op, the handle refuses to be made.
#include <deepspeed/async_io.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "deepspeed/ops_config.h"

#if DEEPSPEED_OP_ASYNC_IO_BUILT
#include "io/async_io/io_engine.h"
#else
namespace deepspeed::ops::aio {
class Engine {};
}  // namespace deepspeed::ops::aio
#endif

namespace deepspeed::ops {
namespace {

// Why this build has no async_io op, from the configure step's record.
[[maybe_unused]] std::string not_built_reason() {
  for (const auto& op : kOpBuildInfo) {
    if (std::string_view(op.name) != "async_io") continue;
    if (!op.requested) return fmt::format("{} was off at configure time", op.build_var);
    if (*op.not_buildable_reason != '\0') return op.not_buildable_reason;
    return "ops/io/async_io had no sources at configure time";
  }
  return "unknown";
}

}  // namespace

const char* to_string(AioBackend backend) {
  switch (backend) {
    case AioBackend::Auto:
      return "auto";
    case AioBackend::IoUring:
      return "io_uring";
    case AioBackend::Threads:
      return "threads";
  }
  return "?";
}

AioOptions aio_options(const AioConfig& config) {
  if (config.use_gds) {
    throw AioError("aio.use_gds: GPUDirect Storage (DeepSpeed's gds op) is not available in deepspeed-cpp; "
                   "set it to false to use the async_io op");
  }
  AioOptions o;
  o.block_size = config.block_size;
  o.queue_depth = config.queue_depth;
  o.single_submit = config.single_submit;
  o.overlap_events = config.overlap_events;
  o.intra_op_parallelism = config.intra_op_parallelism;
  return o;
}

bool async_io_built() { return DEEPSPEED_OP_ASYNC_IO_BUILT != 0; }

AioHandle::AioHandle(const AioConfig& config) : AioHandle(aio_options(config)) {}

AioHandle::AioHandle(int64_t block_size, int64_t queue_depth, bool single_submit, bool overlap_events,
                     int64_t intra_op_parallelism)
    : AioHandle(AioOptions{.block_size = block_size,
                           .queue_depth = queue_depth,
                           .single_submit = single_submit,
                           .overlap_events = overlap_events,
                           .intra_op_parallelism = intra_op_parallelism}) {}

AioHandle::~AioHandle() = default;
AioHandle::AioHandle(AioHandle&&) noexcept = default;
AioHandle& AioHandle::operator=(AioHandle&&) noexcept = default;

#if DEEPSPEED_OP_ASYNC_IO_BUILT

namespace {

// The tensor's bytes, after checking that a transfer can use them in place.
char* transfer_buffer(const torch::Tensor& t, const char* call) {
  if (!t.defined()) throw AioError(fmt::format("async_io: {}: the tensor is undefined", call));
  if (!t.device().is_cpu()) {
    throw AioError(fmt::format("async_io: {} needs a CPU tensor; this one is on {} (copy it to the CPU first)", call,
                               t.device().str()));
  }
  if (t.layout() != torch::kStrided) {
    throw AioError(fmt::format("async_io: {} needs a dense (strided) tensor; this one is {}", call,
                               c10::str(t.layout())));
  }
  if (!t.is_contiguous()) {
    throw AioError(fmt::format("async_io: {} needs a contiguous tensor; this one has sizes {} and strides {} (use "
                               ".contiguous())",
                               call, c10::str(t.sizes()), c10::str(t.strides())));
  }
  return static_cast<char*>(t.data_ptr());
}

std::shared_ptr<void> keep(const torch::Tensor& t) { return std::make_shared<torch::Tensor>(t); }

int64_t nbytes(const torch::Tensor& t) { return static_cast<int64_t>(t.nbytes()); }

aio::Engine& engine_of(const std::unique_ptr<aio::Engine>& engine) {
  if (!engine) throw AioError("async_io: this AioHandle was moved from");
  return *engine;
}

}  // namespace

AioHandle::AioHandle(const AioOptions& options) {
  aio::EngineOptions o;
  o.block_size = options.block_size;
  o.queue_depth = options.queue_depth;
  o.single_submit = options.single_submit;
  o.overlap_events = options.overlap_events;
  o.threads = options.intra_op_parallelism;
  o.direct_io = options.direct_io;
  o.queue = options.backend == AioBackend::IoUring   ? aio::QueueKind::IoUring
            : options.backend == AioBackend::Threads ? aio::QueueKind::Blocking
                                                     : aio::QueueKind::Auto;
  engine_ = std::make_unique<aio::Engine>(o);
}

void AioHandle::async_pread(const torch::Tensor& buffer, const std::string& path, int64_t file_offset) {
  char* data = transfer_buffer(buffer, "async_pread");
  engine_of(engine_).submit(aio::Direction::Read, data, nbytes(buffer), path, file_offset, keep(buffer));
}

void AioHandle::async_pwrite(const torch::Tensor& buffer, const std::string& path, int64_t file_offset) {
  char* data = transfer_buffer(buffer, "async_pwrite");
  engine_of(engine_).submit(aio::Direction::Write, data, nbytes(buffer), path, file_offset, keep(buffer));
}

void AioHandle::sync_pread(const torch::Tensor& buffer, const std::string& path, int64_t file_offset) {
  char* data = transfer_buffer(buffer, "sync_pread");
  auto& e = engine_of(engine_);
  e.wait(e.submit(aio::Direction::Read, data, nbytes(buffer), path, file_offset, keep(buffer)));
}

void AioHandle::sync_pwrite(const torch::Tensor& buffer, const std::string& path, int64_t file_offset) {
  char* data = transfer_buffer(buffer, "sync_pwrite");
  auto& e = engine_of(engine_);
  e.wait(e.submit(aio::Direction::Write, data, nbytes(buffer), path, file_offset, keep(buffer)));
}

int64_t AioHandle::wait() { return engine_of(engine_).wait_all(); }
int64_t AioHandle::pending() const { return engine_of(engine_).pending(); }

torch::Tensor AioHandle::new_cpu_locked_tensor(int64_t num_elem, const torch::Tensor& example) const {
  if (num_elem < 0) throw AioError(fmt::format("async_io: new_cpu_locked_tensor: num_elem {} < 0", num_elem));
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t bytes = static_cast<size_t>(num_elem) * example.element_size();
  const size_t rounded = std::max(page, (bytes + page - 1) / page * page);
  void* p = nullptr;
  if (::posix_memalign(&p, page, rounded) != 0) {
    throw AioError(fmt::format("async_io: new_cpu_locked_tensor: cannot allocate {} bytes", rounded));
  }
  // Locking is a hint: a small RLIMIT_MEMLOCK (ulimit -l) leaves the memory pageable.
  const bool locked = ::mlock(p, rounded) == 0;
  auto free_it = [rounded, locked](void* q) {
    if (locked) ::munlock(q, rounded);
    std::free(q);
  };
  return torch::from_blob(p, {num_elem}, free_it, torch::TensorOptions().dtype(example.dtype()));
}

int64_t AioHandle::get_block_size() const { return engine_of(engine_).options().block_size; }
int64_t AioHandle::get_queue_depth() const { return engine_of(engine_).options().queue_depth; }
bool AioHandle::get_single_submit() const { return engine_of(engine_).options().single_submit; }
bool AioHandle::get_overlap_events() const { return engine_of(engine_).options().overlap_events; }
int64_t AioHandle::get_intra_op_parallelism() const { return engine_of(engine_).options().threads; }

AioBackend AioHandle::backend() const {
  return std::string_view(engine_of(engine_).queue_name()) == "io_uring" ? AioBackend::IoUring : AioBackend::Threads;
}

std::string AioHandle::fallback_reason() const { return engine_of(engine_).fallback_reason(); }

AioStats AioHandle::stats() const {
  const aio::EngineStats s = engine_of(engine_).stats();
  return {s.direct_transfers, s.buffered_transfers, s.direct_refusals};
}

std::string io_uring_unavailable_reason() { return aio::io_uring_unavailable_reason(); }

#else  // !DEEPSPEED_OP_ASYNC_IO_BUILT

namespace {
[[noreturn]] void not_built() {
  throw AioError("async_io: this build of deepspeed-cpp has no async_io op (" + not_built_reason() +
                 "); see ds_report and docs/async_io.md");
}
}  // namespace

AioHandle::AioHandle(const AioOptions&) { not_built(); }
void AioHandle::async_pread(const torch::Tensor&, const std::string&, int64_t) { not_built(); }
void AioHandle::async_pwrite(const torch::Tensor&, const std::string&, int64_t) { not_built(); }
void AioHandle::sync_pread(const torch::Tensor&, const std::string&, int64_t) { not_built(); }
void AioHandle::sync_pwrite(const torch::Tensor&, const std::string&, int64_t) { not_built(); }
int64_t AioHandle::wait() { not_built(); }
int64_t AioHandle::pending() const { not_built(); }
torch::Tensor AioHandle::new_cpu_locked_tensor(int64_t, const torch::Tensor&) const { not_built(); }
int64_t AioHandle::get_block_size() const { not_built(); }
int64_t AioHandle::get_queue_depth() const { not_built(); }
bool AioHandle::get_single_submit() const { not_built(); }
bool AioHandle::get_overlap_events() const { not_built(); }
int64_t AioHandle::get_intra_op_parallelism() const { not_built(); }
AioBackend AioHandle::backend() const { not_built(); }
std::string AioHandle::fallback_reason() const { not_built(); }
AioStats AioHandle::stats() const { not_built(); }
std::string io_uring_unavailable_reason() { return "this build has no async_io op (" + not_built_reason() + ")"; }

#endif

}  // namespace deepspeed::ops
