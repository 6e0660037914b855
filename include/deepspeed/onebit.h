// DeepSpeed's communication-compressed optimizers: 1-bit Adam ("OneBitAdam"), 0/1 Adam
// ("ZeroOneAdam") and 1-bit LAMB ("OneBitLamb"). After a full-precision warm-up they average
// their momentum themselves with an error-compensated 1-bit all-reduce over the data-parallel
// group (about 1/16 to 1/32 of the bytes of fp32 gradients), and the engine stops averaging
// gradients for them (Optimizer::needs_averaged_gradients). Stage 0 only, as in DeepSpeed.
// The config builds them from "optimizer": {"type": "OneBitAdam", "params": {...}}; a program
// that builds its own optimizer (InitializeOptions::optimizer_factory) calls this.
// Details, parameters and defaults: docs/onebit.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <deepspeed/comm.h>
#include <deepspeed/optimizer.h>

namespace deepspeed {

// Whether `type` names one of them (DeepSpeed's names, any case: "OneBitAdam", "onebitadam").
bool is_onebit_optimizer(const std::string& type);

// Builds the one `type` names from an "optimizer.params" object, communicating over
// `data_parallel`. Throws ConfigError naming "optimizer.params.<key>" for a parameter it does
// not accept, and for what DeepSpeed refuses (amsgrad, comm_backend_name "mpi").
std::unique_ptr<Optimizer> make_onebit_optimizer(const std::string& type, const nlohmann::json& params,
                                                 std::vector<ParamGroup> groups,
                                                 std::shared_ptr<comm::ProcessGroup> data_parallel);

}  // namespace deepspeed
