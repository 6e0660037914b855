// The LR schedule a config describes, as `step,lr,momentum` CSV: what `ds_config --schedule`
// prints, for plotting a schedule before training with it.
#pragma once

#include <cstdint>
#include <ostream>

#include <deepspeed/config.h>

namespace deepspeed {

// Row n (1-based) is optimizer step n: the lr and momentum (β1 for Adam-like optimizers,
// `momentum` for SGD) that step runs with, i.e. the schedule after n−1 scheduler steps, as
// the engine steps it. Builds the config's optimizer (Adam with its defaults when the config
// has none) over one dummy parameter. Notes for the user go to `notes`.
void write_schedule_csv(const DeepSpeedConfig& config, int64_t steps, std::ostream& out, std::ostream& notes);

}  // namespace deepspeed
