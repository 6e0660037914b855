// What the three 1-bit optimizers read alike from "optimizer.params": the Adam-style
// hyper-parameters (written into the groups) and the settings of the compressed phase.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <deepspeed/optimizer.h>

#include "optim/params_reader.h"

namespace deepspeed {

struct OneBitSettings {
  // Steps of uncompressed warm-up (1-bit Adam and LAMB; 0/1 Adam has var_freeze_step).
  int64_t freeze_step = 100000;
  // Only meaningful for DeepSpeed's MPI backend; kept so that a DeepSpeed config reads the same.
  bool cuda_aware = false;
  // "nccl" (DeepSpeed's default) or "compressed": both run over the job's process group,
  // whatever its backend (NCCL on GPUs, Gloo on CPUs). "mpi" and "hccl" are refused.
  std::string comm_backend_name = "nccl";
};

// Reads lr, bias_correction, betas, eps, eps_inside_sqrt, weight_decay (into `groups`),
// cuda_aware and comm_backend_name, refuses amsgrad as DeepSpeed does ("<algorithm> does not
// support the AMSGrad variant."), and reads freeze_step when `with_freeze_step`.
// `algorithm` is DeepSpeed's wording: "1-bit Adam", "0/1 Adam", "1-bit Lamb".
OneBitSettings read_onebit_settings(ParamReader& reader, std::vector<ParamGroup>& groups, const std::string& algorithm,
                                    bool with_freeze_step);

// The "step" state of the optimizer's first tensor (0 before any step): what DeepSpeed's 1-bit
// optimizers read their phase from when a checkpoint is loaded.
double first_tensor_step(const Optimizer& optimizer);

}  // namespace deepspeed
