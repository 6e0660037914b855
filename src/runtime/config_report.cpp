#include "runtime/config_report.h"

#include <fmt/format.h>

#include <deepspeed/version.h>

namespace deepspeed {

std::string deepspeed_version() { return DEEPSPEED_VERSION; }
std::string deepspeed_git_hash() { return DEEPSPEED_GIT_HASH; }
std::string deepspeed_git_branch() { return DEEPSPEED_GIT_BRANCH; }

std::vector<std::string> config_report_lines(const DeepSpeedConfig& config) {
  std::vector<std::string> lines{"DeepSpeedEngine configuration:"};
  const auto resolved = config.to_json();
  for (const auto& [name, value] : resolved.items()) {
    const std::size_t dots = name.size() < 29 ? 29 - name.size() : 1;
    lines.push_back(fmt::format("  {} {} {}", name, std::string(dots, '.'), value.dump()));
  }
  lines.push_back("  json = " + config.raw.dump());
  return lines;
}

}  // namespace deepspeed
