// "activation_checkpointing": DeepSpeed's six keys with its defaults. DeepSpeed reads them
// without checks; here a wrong type or an unknown key is an error naming it, as in every other
// section. Whether the combination makes sense (contiguous buffers need partitioning and a
// count) is checked where it is used, by checkpointing::configure, as DeepSpeed does.
#include "config/sections.h"

namespace deepspeed::config_detail {

ActivationCheckpointingConfig read_activation_checkpointing(const nlohmann::json& value) {
  const SectionReader s(value, "activation_checkpointing",
                        {"partition_activations", "cpu_checkpointing", "contiguous_memory_optimization",
                         "number_checkpoints", "synchronize_checkpoint_boundary", "profile"});
  ActivationCheckpointingConfig c;
  c.partition_activations = s.boolean("partition_activations", c.partition_activations);
  c.cpu_checkpointing = s.boolean("cpu_checkpointing", c.cpu_checkpointing);
  c.contiguous_memory_optimization = s.boolean("contiguous_memory_optimization", c.contiguous_memory_optimization);
  if (const auto* v = s.find("number_checkpoints"); v && !v->is_null()) {
    c.number_checkpoints = s.integer("number_checkpoints", 0, 1);
  }
  c.synchronize_checkpoint_boundary = s.boolean("synchronize_checkpoint_boundary", c.synchronize_checkpoint_boundary);
  c.profile = s.boolean("profile", c.profile);
  return c;
}

}  // namespace deepspeed::config_detail
