#include "launcher/hostfile.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "deepspeed/errors.h"

namespace deepspeed::launcher {
namespace {

std::string strip(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace

HostPool parse_hostfile(std::istream& in, const std::string& path) {
  // A prefix match, as DeepSpeed's re.search(r"^(\S+)\s+slots=(\d+)", line).
  static const std::regex kEntry(R"(^(\S+)\s+slots=(\d+))");
  HostPool pool;
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string line = strip(raw);
    if (line.empty() || line[0] == '#') continue;
    std::smatch m;
    if (!std::regex_search(line, m, kEntry)) {
      throw LaunchError(fmt::format(
          "{}:{}: Hostfile contains a bad entry: '{}', unable to proceed with launching "
          "(expected 'HOSTNAME slots=N')",
          path, line_no, line));
    }
    const std::string host = m[1].str();
    int slots = 0;
    try {
      slots = std::stoi(m[2].str());
    } catch (const std::out_of_range&) {
      throw LaunchError(fmt::format("{}:{}: slots={} is out of range for host '{}'", path,
                                    line_no, m[2].str(), host));
    }
    for (const auto& h : pool) {
      if (h.host == host) {
        throw LaunchError(fmt::format(
            "{}:{}: Hostfile contains multiple entries for {}, unable to proceed with launching",
            path, line_no, host));
      }
    }
    pool.push_back({host, slots});
  }
  if (pool.empty()) {
    throw LaunchError(fmt::format(
        "{}: Hostfile is empty or not formatted correctly, unable to proceed with launching.",
        path));
  }
  return pool;
}

std::optional<HostPool> read_hostfile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::ifstream in(path);
  if (!in) throw LaunchError(fmt::format("{}: cannot read hostfile", path));
  return parse_hostfile(in, path);
}

}  // namespace deepspeed::launcher
