#include "optim/optim_log.h"

#include <iostream>

namespace deepspeed {

void optim_warning(const std::string& message) {
  // One write per line so that lines from several ranks do not interleave mid-line.
  std::cerr << ("[WARNING] [lr_schedules] " + message + "\n") << std::flush;
}

}  // namespace deepspeed
