// torch's pickle format (a zip of data.pkl and one record per tensor storage): what
// torch.save writes and torch.load reads, so Python can open our checkpoint files.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/ivalue.h>

namespace deepspeed::checkpoint {

std::vector<char> to_pickle_bytes(const c10::IValue& value);
// Throws CheckpointError naming `file` when the bytes are not a torch pickle archive.
c10::IValue from_pickle_bytes(const std::vector<char>& bytes, const std::string& file);

}  // namespace deepspeed::checkpoint
