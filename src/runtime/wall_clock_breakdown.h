// wall_clock_breakdown: the engine's phases -- forward, backward, backward's own part
// (bwd_inner) and its gradient reduction (bwd_allreduce), the optimizer step -- timed per
// micro step (the *_microstep timers) and per optimizer step (the global timers), and printed
// by rank 0 in DeepSpeed's format:
//   [Rank 0] time (ms) | fwd_microstep: 1.20 | bwd_microstep: 2.31 | bwd_inner_microstep: ...
//   [Rank 0] time (ms) | fwd: 2.41 | bwd: 4.62 | bwd_inner: 4.10 | bwd_allreduce: 0.52 | step: 0.80
// DeepSpeed prints both lines after every step() call; here they come once every
// steps_per_print optimizer steps (every step when steps_per_print is 0), each value the mean
// per micro step / per optimizer step since the last lines, so that long runs stay readable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/timers.h"

namespace deepspeed {

class WallClockBreakdown {
 public:
  // The timers the engine starts and stops (DeepSpeed's names).
  static constexpr const char* kForwardMicro = "fwd_microstep";
  static constexpr const char* kBackwardMicro = "bwd_microstep";
  static constexpr const char* kBackwardInnerMicro = "bwd_inner_microstep";
  static constexpr const char* kBackwardReduceMicro = "bwd_allreduce_microstep";
  static constexpr const char* kStepMicro = "step_microstep";
  static constexpr const char* kForward = "fwd";
  static constexpr const char* kBackward = "bwd";
  static constexpr const char* kBackwardInner = "bwd_inner";
  static constexpr const char* kBackwardReduce = "bwd_allreduce";
  static constexpr const char* kStep = "step";

  // One optimizer step's phases, in milliseconds (each summed over its micro steps).
  struct StepTimes {
    double forward = 0, backward = 0, backward_inner = 0, backward_allreduce = 0, step = 0;
  };

  WallClockBreakdown(Timers& timers, int64_t steps_per_print)
      : timers_(timers), window_(steps_per_print > 0 ? steps_per_print : 1) {}

  // Call at the end of every step(), with the global step count already updated. At an
  // accumulation boundary returns that optimizer step's times (and starts the next step's);
  // when a window of steps_per_print optimizer steps closes, adds the two lines to `lines`.
  std::optional<StepTimes> end_of_step(bool boundary, int64_t global_steps, std::vector<std::string>& lines);

 private:
  Timers& timers_;
  int64_t window_;
  int64_t micro_steps_ = 0;  // in this window
  int64_t steps_ = 0;        // optimizer steps in this window
  StepTimes sum_;
};

}  // namespace deepspeed
