#include "runtime/wall_clock_breakdown.h"

#include <fmt/format.h>

namespace deepspeed {

std::optional<WallClockBreakdown::StepTimes> WallClockBreakdown::end_of_step(bool boundary, int64_t global_steps,
                                                                            std::vector<std::string>& lines) {
  ++micro_steps_;
  if (!boundary) return std::nullopt;
  const StepTimes t{timers_.elapsed_ms(kForward), timers_.elapsed_ms(kBackward), timers_.elapsed_ms(kBackwardInner),
                    timers_.elapsed_ms(kBackwardReduce), timers_.elapsed_ms(kStep)};
  sum_.forward += t.forward;
  sum_.backward += t.backward;
  sum_.backward_inner += t.backward_inner;
  sum_.backward_allreduce += t.backward_allreduce;
  sum_.step += t.step;
  ++steps_;
  if (global_steps % window_ == 0) {
    const double micro = static_cast<double>(micro_steps_);
    const double steps = static_cast<double>(steps_);
    lines.push_back(fmt::format(
        "time (ms) | {}: {:.2f} | {}: {:.2f} | {}: {:.2f} | {}: {:.2f} | {}: {:.2f}", kForwardMicro,
        timers_.elapsed_ms(kForwardMicro) / micro, kBackwardMicro, timers_.elapsed_ms(kBackwardMicro) / micro,
        kBackwardInnerMicro, timers_.elapsed_ms(kBackwardInnerMicro) / micro, kBackwardReduceMicro,
        timers_.elapsed_ms(kBackwardReduceMicro) / micro, kStepMicro, timers_.elapsed_ms(kStepMicro) / micro));
    lines.push_back(fmt::format("time (ms) | {}: {:.2f} | {}: {:.2f} | {}: {:.2f} | {}: {:.2f} | {}: {:.2f}", kForward,
                                sum_.forward / steps, kBackward, sum_.backward / steps, kBackwardInner,
                                sum_.backward_inner / steps, kBackwardReduce, sum_.backward_allreduce / steps, kStep,
                                sum_.step / steps));
    micro_steps_ = 0;
    steps_ = 0;
    sum_ = {};
  }
  return t;
}

}  // namespace deepspeed
