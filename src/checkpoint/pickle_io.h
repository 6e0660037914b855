// torch's file format (a zip of data.pkl and one record per tensor storage): what torch.save
// writes and torch.load reads, so that Python opens our checkpoint files and we open
// DeepSpeed's. The pickle itself is python_pickle.h's (DeepSpeed's files hold Python classes
// that LibTorch's own unpickler refuses, and torch.Size, which its pickler cannot write).
#pragma once

#include <string>
#include <vector>

#include <ATen/core/ivalue.h>

namespace deepspeed::checkpoint {

std::vector<char> to_pickle_bytes(const c10::IValue& value);
// Throws CheckpointError naming `file` when the bytes are not a torch pickle archive.
c10::IValue from_pickle_bytes(const std::vector<char>& bytes, const std::string& file);

}  // namespace deepspeed::checkpoint
