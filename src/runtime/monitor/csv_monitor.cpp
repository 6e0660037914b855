#include "runtime/monitor/csv_monitor.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include <fmt/format.h>

#include <deepspeed/errors.h>
#include <deepspeed/optimizer.h>

#include "runtime/monitor/tensorboard_monitor.h"

namespace deepspeed::monitor {
namespace {

// Python's csv.writer with its defaults (QUOTE_MINIMAL): a field with a comma, a quote or a
// line break is quoted, its quotes doubled.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

CsvMonitor::CsvMonitor(const MonitorConfig& config) : dir_(log_dir(config)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw Error(fmt::format("csv_monitor: cannot create the folder {}: {}", dir_, ec.message()));
}

std::string CsvMonitor::file_name(const std::string& tag) {
  std::string name = tag;
  for (char& c : name) {
    if (c == '/' || c == ' ') c = '_';
  }
  return name + ".csv";
}

std::string CsvMonitor::column_name(const std::string& tag) {
  const auto slash = tag.rfind('/');
  return slash == std::string::npos ? tag : tag.substr(slash + 1);
}

void CsvMonitor::write_events(const std::vector<MonitorEvent>& events) {
  for (const auto& e : events) {
    const std::string name = file_name(e.tag);
    const std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::app);
    if (!out) throw Error(fmt::format("csv_monitor: cannot open {}: {}", path, std::strerror(errno)));
    if (started_.insert(name).second) out << "step," << csv_field(column_name(e.tag)) << "\r\n";
    out << e.step << "," << python_repr(e.value) << "\r\n";
    out.flush();
    if (!out) throw Error(fmt::format("csv_monitor: cannot write {}: {}", path, std::strerror(errno)));
  }
}

}  // namespace deepspeed::monitor
