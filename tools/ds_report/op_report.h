// The op table of ds_report: for every DeepSpeed op, whether this build has it (its build
// flag was on, its sources exist and it could be built here: deepspeed/ops_config.h) and
// whether this machine can run it (and if not, why).
#pragma once

#include <string>
#include <vector>

namespace deepspeed::report {

struct MachineFacts {
  bool cuda_build = false;  // this build was compiled with CUDA
  int gpu_count = 0;        // GPUs visible on this machine
  // Why io_uring cannot be used here (the async_io op's run-time need); "" when it can, or
  // when this build has no async_io op to try it with.
  std::string aio_runtime_problem;
};

struct OpStatus {
  std::string name;
  bool installed = false;
  bool compatible = false;
  std::string reason;  // why not compatible (or why requested but not built); "" otherwise
};

std::vector<OpStatus> op_statuses(const MachineFacts& facts);

}  // namespace deepspeed::report
