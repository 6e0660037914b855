#include "checkpoint/consolidate.h"

#include <deepspeed/errors.h>

#include "checkpoint/layout.h"

namespace deepspeed::checkpoint {

std::vector<std::pair<std::string, torch::Tensor>> fp32_state_dict(const CheckpointReader& reader) {
  const auto& m = reader.manifest();
  if (m.zero_stage != 0) {
    throw CheckpointError("checkpoint " + reader.dir().string() + " was written with ZeRO stage " +
                          std::to_string(m.zero_stage) + ", which this deepspeed-cpp cannot consolidate yet");
  }
  const auto name = model_states_file_name(0);
  const auto states = reader.read_dict(name);
  auto it = states.find("module");
  if (it == states.end() || !it->value().isGenericDict()) {
    throw CheckpointError("checkpoint file " + (reader.dir() / name).string() + " has no module state dict");
  }
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& e : it->value().toGenericDict()) {
    auto t = e.value().toTensor();
    out.emplace_back(e.key().toStringRef(), t.is_floating_point() ? t.to(torch::kFloat32) : t);
  }
  return out;
}

}  // namespace deepspeed::checkpoint
