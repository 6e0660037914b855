#include "launcher/pod_env.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "deepspeed/errors.h"

namespace deepspeed::launcher {

std::vector<std::pair<std::string, std::string>> parse_pod_env(std::istream& in, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.rfind("export FC_TASKROLE_NAME", 0) != 0 && line.rfind("export FC_TASK_INDEX", 0) != 0) continue;
    std::istringstream words(line);
    std::string export_word, key_value;
    words >> export_word >> key_value;
    const auto eq = key_value.find('=');
    if (eq == std::string::npos || key_value.find('=', eq + 1) != std::string::npos)
      throw LaunchError(fmt::format("{}:{}: expected `export NAME=VALUE` with one '=', got '{}'", path, line_no, line));
    out.emplace_back(key_value.substr(0, eq), key_value.substr(eq + 1));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> read_pod_env(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  std::ifstream in(path);
  if (!in) throw LaunchError(fmt::format("{}: cannot read", path));
  return parse_pod_env(in, path);
}

}  // namespace deepspeed::launcher
