// Reads the comms logger's summary table (CommsLogger::summary(), which the engine prints on
// rank 0 when it ends) out of a process's output: op -> message size ("64.0 KB") -> count.
// Torch-free.
#pragma once

#include <cstdint>
#include <map>
#include <sstream>
#include <string>

namespace deepspeed::testing {

inline std::map<std::string, std::map<std::string, int64_t>> comms_counts(const std::string& output) {
  std::map<std::string, std::map<std::string, int64_t>> counts;
  std::istringstream lines(output);
  std::string op;
  bool table = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("Comm. Op", 0) == 0) {
      table = true;
      continue;
    }
    if (!table || line.empty()) continue;
    if (line[0] != ' ') {  // an op's name; its sizes follow, indented
      op = line;
      continue;
    }
    std::istringstream cols(line);
    std::string number, unit;
    int64_t count = 0;
    if (cols >> number >> unit >> count) counts[op][number + " " + unit] += count;
  }
  return counts;
}

}  // namespace deepspeed::testing
