// Runner flags (docs/launcher.md, "Flags that cannot act in some runs") that cannot take
// effect in the run being planned. DeepSpeed
// ignores them silently (e.g. --save_pid with mpirun, which starts no launch.py to write the
// pid file); deepspeed-cpp refuses a flag that is unsupported with the chosen backend, naming
// it and saying why, and notes a flag that simply has nothing to do in this run (the
// remote-launch flags of a single-node run). docs/launcher.md lists them all.
#pragma once

#include <string>
#include <vector>

#include "launcher/runner_options.h"

namespace deepspeed::launcher {

// LaunchError for the first unsupported flag; otherwise the notes to print (may be empty).
std::vector<std::string> check_flag_use(const RunnerOptions& options, bool multi_node);

}  // namespace deepspeed::launcher
