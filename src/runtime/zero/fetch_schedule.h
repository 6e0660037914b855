// When ZeRO stage 3 gathers and releases its parameter buckets (docs/zero.md, "ZeRO-3:
// partitioned parameters": the
// stage3_prefetch_bucket_size, stage3_max_live_parameters and stage3_max_reuse_distance keys).
//
// A step's trace is the order in which buckets are first touched in forward, then in
// backward. The schedule records it every step and predicts from the previous step's trace:
// - prefetch: after touching trace entry i, the buckets of entries i+1, i+2, ... that are not
//   live, up to prefetch_elements elements in all (at least one bucket when prefetch is on);
// - release on reuse distance: a live bucket whose next use lies more than
//   max_reuse_distance elements of gathering ahead (or that has no next use in this step)
//   is released when another bucket is first touched;
// - release on budget: before a gather, the least recently used live buckets are released
//   until the live elements fit max_live_elements.
// Buckets that the current operation needs and persistent buckets are never released. With
// no trace yet (the first step, or after the model took another path), only the budget rule
// applies. Predictions are only hints: any bucket an operation needs is gathered anyway.
// Decisions depend only on the trace and the sizes, so every rank takes the same ones.
#pragma once

#include <cstdint>
#include <vector>

namespace deepspeed {

class FetchSchedule {
 public:
  struct Limits {
    int64_t prefetch_elements = 0;     // 0: no prefetch
    int64_t max_live_elements = INT64_MAX;
    int64_t max_reuse_distance = INT64_MAX;
  };
  FetchSchedule(std::vector<int64_t> bucket_elements, std::vector<bool> persistent, Limits limits);

  enum class Phase { Forward, Backward };
  // Starts a phase. A forward after a backward makes the recording the trace.
  void begin(Phase phase);
  // Bucket b is used by an operation now. Returns true when this is its first use in this
  // phase (the trace advances).
  bool touch(int64_t bucket);

  // What to gather ahead after the first touch of `bucket` (in gather order).
  std::vector<int64_t> prefetch(const std::vector<bool>& live) const;
  // Live buckets to release now: `needed` are the buckets the current operation needs
  // (gathered or about to be), `incoming` the elements about to be gathered.
  std::vector<int64_t> releases(const std::vector<bool>& live, const std::vector<int64_t>& needed,
                                int64_t incoming) const;

  const std::vector<int64_t>& trace() const { return trace_; }
  int64_t cursor() const { return cursor_; }

 private:
  // Next position after the cursor where `bucket` is used in the trace, or -1.
  int64_t next_use(int64_t bucket) const;

  std::vector<int64_t> size_;
  std::vector<bool> persistent_;
  Limits limits_;
  std::vector<int64_t> trace_;       // the previous step's
  std::vector<int64_t> recording_;   // this step's
  std::vector<bool> seen_;           // touched in this phase
  std::vector<int64_t> last_touch_;  // a counter value per bucket (LRU)
  int64_t clock_ = 0;
  int64_t cursor_ = -1;              // where in trace_ this step is, -1: off the trace
  bool recorded_backward_ = false;
};

}  // namespace deepspeed
