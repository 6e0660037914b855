// How a pipeline's layers are cut into stages (DeepSpeed's ds_utils.partition_uniform and
// partition_balanced). Both return the part boundaries: num_parts + 1 increasing indices,
// from 0 to the number of items; part p holds items [parts[p], parts[p + 1]).
//
// PipelineModule cuts with partition_uniform for "uniform", and with partition_balanced for
// "parameters" (weights: each layer's trainable parameter count) and "type:REGEX" (weights:
// 1 for a layer whose type name matches, else 0). Results equal DeepSpeed's for the same
// input, ties included.
#pragma once

#include <cstdint>
#include <vector>

namespace deepspeed::pipe {

// Throws std::invalid_argument for num_items < 0 or num_parts < 1.
std::vector<int64_t> partition_uniform(int64_t num_items, int64_t num_parts);
// The cut that minimises the difference between the heaviest and the lightest part (dynamic
// programming over the linear partition problem; the last minimal cut found wins, as in
// DeepSpeed). Throws std::invalid_argument for num_parts < 1 or a negative weight.
std::vector<int64_t> partition_balanced(const std::vector<int64_t>& weights, int64_t num_parts);

}  // namespace deepspeed::pipe
