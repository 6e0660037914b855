// Warnings of the optimizer and LR-schedule code (DeepSpeed's logger.warning lines).
// There is no project logger yet; these go to stderr in DeepSpeed's level tag format so
// that a later logger can replace this one function.
#pragma once

#include <string>

namespace deepspeed {

void optim_warning(const std::string& message);

}  // namespace deepspeed
