#include "onebit/onebit_settings.h"

#include <deepspeed/errors.h>

#include "optim/optimizer_common.h"

namespace deepspeed {

OneBitSettings read_onebit_settings(ParamReader& reader, std::vector<ParamGroup>& groups, const std::string& algorithm,
                                    bool with_freeze_step) {
  OneBitSettings s;
  const double lr = reader.number("lr").value_or(1e-3);
  const bool bias_correction = reader.boolean("bias_correction").value_or(true);
  const auto betas = reader.pair("betas").value_or(std::array<double, 2>{0.9, 0.999});
  const double eps = reader.number("eps").value_or(1e-8);
  reader.boolean("eps_inside_sqrt");
  const double weight_decay = reader.number("weight_decay").value_or(0.0);
  if (reader.boolean("amsgrad").value_or(false)) {
    throw ConfigError(reader.path("amsgrad"), algorithm + " does not support the AMSGrad variant.");
  }
  if (with_freeze_step) {
    s.freeze_step = reader.integer("freeze_step").value_or(s.freeze_step);
    if (s.freeze_step < 0) throw ConfigError(reader.path("freeze_step"), "must be >= 0");
  }
  s.cuda_aware = reader.boolean("cuda_aware").value_or(false);
  s.comm_backend_name = reader.string("comm_backend_name").value_or(s.comm_backend_name);
  if (s.comm_backend_name != "nccl" && s.comm_backend_name != "compressed") {
    throw ConfigError(reader.path("comm_backend_name"),
                      "\"" + s.comm_backend_name + "\" is not available in deepspeed-cpp: use \"nccl\" (the default) or "
                      "\"compressed\"; both run over the job's process group (NCCL on GPUs, Gloo on CPUs)");
  }
  check_and_write_adam_hyperparameters(groups, "optimizer.params", lr, betas, eps, weight_decay);
  GroupWriter writer(groups);
  // Kept in the groups as DeepSpeed keeps it; the 1-bit updates do not use it (nor
  // eps_inside_sqrt), as DeepSpeed's do not.
  writer.extra("bias_correction", bias_correction ? 1.0 : 0.0);
  return s;
}

double first_tensor_step(const Optimizer& optimizer) {
  if (optimizer.state().empty()) return 0.0;
  const auto& first = optimizer.state().front();
  const auto it = first.find("step");
  return it == first.end() || !it->second.defined() ? 0.0 : it->second.item<double>();
}

}  // namespace deepspeed
