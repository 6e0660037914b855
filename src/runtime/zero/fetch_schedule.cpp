#include "runtime/zero/fetch_schedule.h"

#include <algorithm>
#include <numeric>

namespace deepspeed {

FetchSchedule::FetchSchedule(std::vector<int64_t> bucket_elements, std::vector<bool> persistent, Limits limits)
    : size_(std::move(bucket_elements)),
      persistent_(std::move(persistent)),
      limits_(limits),
      seen_(size_.size(), false),
      last_touch_(size_.size(), -1) {
  persistent_.resize(size_.size(), false);
}

void FetchSchedule::begin(Phase phase) {
  if (phase == Phase::Forward) {
    if (recorded_backward_) trace_ = std::move(recording_);
    recording_.clear();
    recorded_backward_ = false;
    cursor_ = -1;
  } else {
    recorded_backward_ = true;
    // Backward continues the step's trace where forward left it.
    const int64_t forward_entries = static_cast<int64_t>(recording_.size());
    cursor_ = forward_entries <= static_cast<int64_t>(trace_.size()) &&
                      std::equal(recording_.begin(), recording_.end(), trace_.begin())
                  ? forward_entries - 1
                  : -1;
  }
  std::fill(seen_.begin(), seen_.end(), false);
}

bool FetchSchedule::touch(int64_t bucket) {
  last_touch_[bucket] = ++clock_;
  if (seen_[bucket]) return false;
  seen_[bucket] = true;
  recording_.push_back(bucket);
  const int64_t pos = static_cast<int64_t>(recording_.size()) - 1;
  // On the trace while this step repeats the previous one.
  const bool on_trace = pos < static_cast<int64_t>(trace_.size()) && trace_[pos] == bucket &&
                        (cursor_ == pos - 1 || pos == 0);
  cursor_ = on_trace ? pos : -1;
  return true;
}

int64_t FetchSchedule::next_use(int64_t bucket) const {
  for (int64_t j = cursor_ + 1; j < static_cast<int64_t>(trace_.size()); ++j) {
    if (trace_[j] == bucket) return j;
  }
  return -1;
}

std::vector<int64_t> FetchSchedule::prefetch(const std::vector<bool>& live) const {
  std::vector<int64_t> out;
  if (cursor_ < 0 || limits_.prefetch_elements <= 0) return out;
  int64_t budget = limits_.prefetch_elements;
  for (int64_t j = cursor_ + 1; j < static_cast<int64_t>(trace_.size()); ++j) {
    const int64_t b = trace_[j];
    if (live[b] || std::find(out.begin(), out.end(), b) != out.end()) continue;
    if (!out.empty() && size_[b] > budget) break;
    out.push_back(b);
    budget -= size_[b];
    if (budget <= 0) break;
  }
  return out;
}

std::vector<int64_t> FetchSchedule::releases(const std::vector<bool>& live, const std::vector<int64_t>& needed,
                                             int64_t incoming) const {
  std::vector<int64_t> out;
  auto releasable = [&](int64_t b) {
    return live[b] && !persistent_[b] && std::find(needed.begin(), needed.end(), b) == needed.end();
  };
  const int64_t n = static_cast<int64_t>(size_.size());
  if (cursor_ >= 0) {
    // Elements gathered between now and each later trace position.
    std::vector<int64_t> ahead(trace_.size() + 1, 0);
    for (int64_t j = cursor_ + 1; j < static_cast<int64_t>(trace_.size()); ++j) ahead[j + 1] = ahead[j] + size_[trace_[j]];
    for (int64_t b = 0; b < n; ++b) {
      if (!releasable(b)) continue;
      const int64_t j = next_use(b);
      if (j < 0 || ahead[j] > limits_.max_reuse_distance) out.push_back(b);
    }
  }
  int64_t live_elements = incoming;
  for (int64_t b = 0; b < n; ++b) {
    if (live[b] && std::find(out.begin(), out.end(), b) == out.end()) live_elements += size_[b];
  }
  if (live_elements > limits_.max_live_elements) {
    std::vector<int64_t> order;
    for (int64_t b = 0; b < n; ++b) {
      if (releasable(b) && std::find(out.begin(), out.end(), b) == out.end()) order.push_back(b);
    }
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return last_touch_[a] < last_touch_[b]; });
    for (int64_t b : order) {
      if (live_elements <= limits_.max_live_elements) break;
      out.push_back(b);
      live_elements -= size_[b];
    }
  }
  return out;
}

}  // namespace deepspeed
