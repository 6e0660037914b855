// The ITP/DLTS pod environment file the node launcher reads, as DeepSpeed's launch.py does:
// when /dlts-runtime/env/pod.env exists, its `export FC_TASKROLE_NAME=...` and
// `export FC_TASK_INDEX=...` lines are set in every rank's environment (those clusters write
// the task role and index there, not into the environment of the ssh session that starts
// the launcher). Only these lines are read; everything else in the file is ignored.
//
// Parsing follows launch.py exactly: a line counts when it starts with
// "export FC_TASKROLE_NAME" or "export FC_TASK_INDEX" (a prefix: FC_TASK_INDEX2 counts too);
// its second whitespace-separated word is split at '=' into name and value, kept verbatim
// (quotes included). A counted line whose second word does not hold exactly one '=' is a
// LaunchError naming the file and line (launch.py fails with a bare ValueError).
#pragma once

#include <istream>
#include <string>
#include <utility>
#include <vector>

namespace deepspeed::launcher {

inline constexpr const char* kDltsPodEnvPath = "/dlts-runtime/env/pod.env";

std::vector<std::pair<std::string, std::string>> parse_pod_env(std::istream& in, const std::string& path);

// parse_pod_env of `path` if it exists, else nothing.
std::vector<std::pair<std::string, std::string>> read_pod_env(const std::string& path = kDltsPodEnvPath);

}  // namespace deepspeed::launcher
