#include "op_report.h"

#include <string_view>

#include "deepspeed/ops_config.h"

namespace deepspeed::report {

std::vector<OpStatus> op_statuses(const MachineFacts& facts) {
  std::vector<OpStatus> out;
  for (const auto& op : deepspeed::ops::kOpBuildInfo) {
    OpStatus s;
    s.name = op.name;
    s.installed = op.built;
    const std::string_view needs = op.needs;
    const std::string_view build_reason = op.not_buildable_reason;
    // Compatibility is about this machine: what the op needs at build time (recorded by
    // the configure step) and at run time (a GPU for GPU ops).
    if (!build_reason.empty()) {
      s.reason = std::string(build_reason);
    } else if ((needs == "cuda" || needs == "cutlass" || needs == "cufile") && !facts.cuda_build) {
      s.reason = "this build has no CUDA";
    } else if ((needs == "cuda" || needs == "cutlass" || needs == "cufile") && facts.gpu_count == 0) {
      s.reason = "no GPU found on this machine";
    } else if (needs == "aio" && op.built && !facts.aio_runtime_problem.empty()) {
      s.reason = facts.aio_runtime_problem + " (AioHandle falls back to threads doing pread/pwrite)";
    }
    s.compatible = s.reason.empty();
    if (s.compatible && op.requested && !op.has_sources) {
      s.reason = std::string("not implemented in deepspeed-cpp yet (") + op.build_var + " is on but ops/ has no sources)";
    } else if (s.compatible && !op.requested) {
      s.reason = std::string(op.build_var) + " was off at configure time";
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace deepspeed::report
