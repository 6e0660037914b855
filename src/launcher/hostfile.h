// The MPI-style hostfile DeepSpeed reads (`-H/--hostfile`, default /job/hostfile):
//   # comment
//   worker-1 slots=4
//   worker-2 slots=4   # trailing text after slots=N is ignored, as in DeepSpeed
// Lines are stripped; blank lines and lines starting with '#' are skipped; every other line
// must start with `HOST<whitespace>slots=N`. Hosts keep file order and are case-sensitive.
// Errors (LaunchError) name the file and line: a bad entry, a host listed twice, no hosts;
// the text they quote from the file has its control bytes escaped (printable_text.h).
#pragma once

#include <istream>
#include <optional>
#include <string>

#include "launcher/resources.h"

namespace deepspeed::launcher {

// Parses hostfile text; `path` is only used in error messages.
HostPool parse_hostfile(std::istream& in, const std::string& path);

// Reads the hostfile at path; std::nullopt when there is no such file (DeepSpeed then
// proceeds with local resources). A file that exists but cannot be read is an error.
std::optional<HostPool> read_hostfile(const std::string& path);

}  // namespace deepspeed::launcher
