// The text of DeepSpeed's print_model_profile (profiler.py): the summary, the aggregated
// profile per depth and the model tree with each module's share, in DeepSpeed's layout and
// number format ("44.43 K", "1.2 MMACs", "3.5 ms", "1.05 GFLOPS").
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <deepspeed/flops_profiler.h>

#include "runtime/flops_profiler/module_tree.h"

namespace deepspeed::flops {

// DeepSpeed's number_to_string: the largest unit of T, G, M, K, "", m, u not above the value,
// the value rounded to `precision` decimals and printed as Python's "{:g}".
std::string number_to_string(double num, int precision = 2);
std::string macs_to_string(double macs);          // "1.2 MMACs"
std::string flops_to_string(double flops);        // "1.05 GFLOPS"
std::string params_to_string(double params);      // "44.43 K", "1.2 B" (G shown as B)
std::string duration_to_string(double seconds);   // "3.5 ms"

// `profiles` is parallel to `tree.nodes()`; `context` adds the engine's lines.
void print_profile(std::ostream& out, const ModuleTree& tree, const std::vector<ModuleProfile>& profiles,
                   const ProfilePrintOptions& options, const std::optional<ProfileContext>& context,
                   double recompute_fwd_factor);

}  // namespace deepspeed::flops
