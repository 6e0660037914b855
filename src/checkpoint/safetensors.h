// The safetensors file format (Hugging Face): an 8-byte little-endian header length, a JSON
// header {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
// "__metadata__": {...}}, then the tensors' raw little-endian bytes back to back.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace deepspeed::checkpoint {

// Tensors in the given order; metadata goes to "__metadata__" (strings only, per the format).
std::vector<char> safetensors_bytes(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                                    const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// safetensors' dtype name ("F32", "BF16", "I64", "BOOL", ...); CheckpointError for others.
std::string safetensors_dtype(torch::ScalarType type);

}  // namespace deepspeed::checkpoint
