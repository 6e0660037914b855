#include "runtime/activation_checkpointing/settings.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <vector>

#include <fmt/format.h>
#if DS_HAVE_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <deepspeed/errors.h>

namespace deepspeed::checkpointing::detail {
namespace {

std::mutex settings_mutex;
Settings& settings_storage() {
  static Settings s;
  return s;
}

struct ContiguousBuffer {
  torch::Tensor data;  // number_checkpoints slices of `slot` elements
  int64_t slot = 0;
  int64_t used = 0;
};
std::mutex buffers_mutex;
std::vector<ContiguousBuffer>& buffers() {
  static std::vector<ContiguousBuffer> b;
  return b;
}

std::atomic<int64_t> device_bytes{0};
std::atomic<int64_t> host_bytes{0};

}  // namespace

Settings current_settings() {
  std::lock_guard lock(settings_mutex);
  return settings_storage();
}

void store_settings(Settings settings) {
  std::lock_guard lock(settings_mutex);
  settings_storage() = std::move(settings);
}

torch::Tensor contiguous_slot(std::size_t index, int64_t numel, const torch::TensorOptions& options,
                              int64_t number_checkpoints) {
  std::lock_guard lock(buffers_mutex);
  auto& all = buffers();
  if (all.size() <= index) all.resize(index + 1);
  auto& b = all[index];
  if (!b.data.defined()) {
    b.data = torch::empty({number_checkpoints * numel}, options);
    b.slot = numel;
    b.used = 0;
  }
  if (b.slot != numel || b.data.scalar_type() != options.dtype().toScalarType()) {
    throw EngineError(fmt::format(
        "activation_checkpointing.contiguous_memory_optimization: argument {} of this checkpoint has {} elements "
        "of {} to keep, the buffer was made for {} of {}: contiguous buffers need checkpoints whose inputs have the "
        "same shapes",
        index, numel, c10::toString(options.dtype().toScalarType()), b.slot, c10::toString(b.data.scalar_type())));
  }
  if (b.used == number_checkpoints) {
    throw EngineError(fmt::format(
        "activation_checkpointing.number_checkpoints: more than {} checkpoints in one forward; raise "
        "number_checkpoints (or set_num_layers), or call deepspeed::checkpointing::reset() after forwards that "
        "have no backward",
        number_checkpoints));
  }
  return b.data.narrow(0, (b.used++) * numel, numel);
}

void release_contiguous_buffers() {
  std::lock_guard lock(buffers_mutex);
  buffers().clear();
}

void count_saved(const torch::Tensor& t, int sign) {
  if (!t.defined()) return;
  const int64_t n = sign * static_cast<int64_t>(t.numel() * t.element_size());
  (t.device().is_cpu() ? host_bytes : device_bytes) += n;
}

void log_info(const Settings& s, std::string_view message) {
  if (s.global_rank != 0) return;
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
  std::printf("[%s,%03lld] [INFO] [checkpointing] %.*s\n", stamp, static_cast<long long>(ms),
              static_cast<int>(message.size()), message.data());
  std::fflush(stdout);
}

void log_time(const Settings& s, std::string_view name, double milliseconds) {
  if (s.global_rank != 0) return;
  std::printf("[Rank 0] time (ms) | %.*s: %.2f\n", static_cast<int>(name.size()), name.data(), milliseconds);
  std::fflush(stdout);
}

void synchronize_device(const torch::Device& device) {
#if DS_HAVE_CUDA
  if (device.is_cuda()) c10::cuda::device_synchronize();
#else
  (void)device;
#endif
}

}  // namespace deepspeed::checkpointing::detail

namespace deepspeed::checkpointing {

SavedBytes saved_bytes() { return {detail::device_bytes.load(), detail::host_bytes.load()}; }

}  // namespace deepspeed::checkpointing
