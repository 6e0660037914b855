// Parameter handling shared by the warmup schedules (WarmupLR, WarmupDecayLR,
// WarmupCosineLR): DeepSpeed's checks on warmup_num_steps and warmup_type, and the
// warmup fraction.
#pragma once

#include <cstdint>
#include <string>

#include "optim/params_reader.h"

namespace deepspeed {

// warmup_num_steps (default 1000): a positive integer, else DeepSpeed's ValueError text.
int64_t read_warmup_num_steps(ParamReader& reader);
// warmup_type (default "log"): "log" or "linear"; anything else warns and means "log".
std::string read_warmup_type(ParamReader& reader);
// last_batch_iteration (default -1).
int64_t read_last_batch_iteration(ParamReader& reader);
// total_num_steps, required by WarmupDecayLR and WarmupCosineLR.
int64_t read_total_num_steps(ParamReader& reader, const std::string& owner);

// The warmup fraction at 0 <= k < n (n >= 2): log(k+1)/log(n) or k/n.
double warmup_fraction(const std::string& warmup_type, int64_t k, int64_t n);

}  // namespace deepspeed
