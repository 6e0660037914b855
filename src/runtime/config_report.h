// What the engine prints about itself at start-up: version and the resolved configuration,
// in DeepSpeed's "DeepSpeedEngine configuration:" layout.
#pragma once

#include <string>
#include <vector>

#include <deepspeed/config.h>

namespace deepspeed {

std::string deepspeed_version();
std::string deepspeed_git_hash();
std::string deepspeed_git_branch();

// "DeepSpeedEngine configuration:", then "  <name> <dots> <value>" per key, then "  json = {...}".
std::vector<std::string> config_report_lines(const DeepSpeedConfig& config);

}  // namespace deepspeed
