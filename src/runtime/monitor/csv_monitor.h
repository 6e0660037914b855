// The "csv_monitor" monitor, laid out as DeepSpeed's csvMonitor: one file per tag,
// <output_path>/<job_name>/<tag with '/' and ' ' as '_'>.csv, with the header
// "step,<last part of the tag>" written the first time this run writes the tag, then one
// "<step>,<value>" row per event, values as Python prints floats. Files are appended to (a
// second run adds its own header line), and rows end in CRLF, as Python's csv module writes.
#pragma once

#include <set>
#include <string>

#include <deepspeed/config.h>
#include <deepspeed/monitor.h>

namespace deepspeed::monitor {

class CsvMonitor final : public Monitor {
 public:
  // Creates the folder; throws deepspeed::Error naming it when that fails.
  explicit CsvMonitor(const MonitorConfig& config);
  void write_events(const std::vector<MonitorEvent>& events) override;
  const std::string& dir() const { return dir_; }
  // The file a tag goes to, and its header's column name.
  static std::string file_name(const std::string& tag);
  static std::string column_name(const std::string& tag);

 private:
  std::string dir_;
  std::set<std::string> started_;  // files that have their header from this run
};

}  // namespace deepspeed::monitor
