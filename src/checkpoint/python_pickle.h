// Python's pickle format, protocol 2 (what torch.save writes), without Python: the writer
// pickles IValues as torch.save pickles the same Python values (dicts, lists, tuples,
// numbers, strings, tensors, and python_value.h's torch.Size, instances and names); the
// reader reads what torch.save writes for checkpoints, DeepSpeed's included (its classes are
// read as python_value.h says). pickle_io.h puts them in torch's zip container.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <ATen/core/ivalue.h>
#include <torch/types.h>

namespace deepspeed::checkpoint {

// The pickle of `value`. Tensors go to `storages` (copied to the CPU, contiguous), each
// named by its index there, as torch.save names the records of its storages.
std::string write_python_pickle(const c10::IValue& value, std::vector<torch::Tensor>& storages);

// The storage record `key`, `numel` elements of `dtype`; throws CheckpointError if absent.
using StorageLoader = std::function<torch::Tensor(const std::string& key, torch::ScalarType dtype, int64_t numel)>;

// Reads a pickle; CheckpointError naming `file` and the offset on anything it cannot read.
c10::IValue read_python_pickle(std::string_view pickle, const StorageLoader& load_storage, const std::string& file);

}  // namespace deepspeed::checkpoint
