#include "checkpoint/pickle_io.h"

#include <torch/csrc/jit/serialization/pickle.h>

#include <deepspeed/errors.h>

namespace deepspeed::checkpoint {

std::vector<char> to_pickle_bytes(const c10::IValue& value) { return torch::pickle_save(value); }

c10::IValue from_pickle_bytes(const std::vector<char>& bytes, const std::string& file) {
  try {
    return torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    // c10's message carries a C++ backtrace; its first line is the reason.
    const std::string msg = e.what_without_backtrace();
    throw CheckpointError("checkpoint file " + file + " cannot be read as a torch pickle archive: " +
                          msg.substr(0, msg.find('\n')));
  }
}

}  // namespace deepspeed::checkpoint
