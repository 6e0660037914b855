#include "kernel_profile.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <deepspeed/torch_compat.h>
#include <torch/torch.h>

#if DS_TORCH_AT_LEAST(2, 0) && DS_HAVE_CUDA
#include <torch/csrc/autograd/profiler_kineto.h>
#endif

namespace gpt {

void profile_kernels(int steps, const std::function<void()>& step) {
#if DS_TORCH_AT_LEAST(2, 0) && DS_HAVE_CUDA
  namespace prof = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  const prof::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO);
  const std::set<ActivityType> activities{ActivityType::CPU, ActivityType::CUDA};
  prof::prepareProfiler(config, activities);
  torch::cuda::synchronize();
  prof::enableProfiler(config, activities);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  torch::cuda::synchronize();
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  auto result = prof::disableProfiler();
  struct Row {
    double ms = 0;
    int calls = 0;
  };
  std::map<std::string, Row> by_name;
  double total = 0;
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CUDA) continue;
    const double ms = static_cast<double>(e.durationNs()) / 1e6;
    auto& r = by_name[e.name().substr(0, 90)];
    r.ms += ms;
    ++r.calls;
    total += ms;
  }
  std::vector<std::pair<std::string, Row>> rows(by_name.begin(), by_name.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  std::printf("profile: %d steps, %.2f ms wall per step, %.2f ms of GPU activity per step\n", steps, wall_ms / steps,
              total / steps);
  for (size_t i = 0; i < rows.size() && i < 30; ++i) {
    std::printf("  %8.3f ms %6d  %s\n", rows[i].second.ms / steps, rows[i].second.calls / steps, rows[i].first.c_str());
  }
#else
  (void)steps;
  (void)step;
  std::printf("profile: needs LibTorch 2.x with CUDA\n");
#endif
}

}  // namespace gpt
