// "pipeline": DeepSpeed's keys with its defaults (get_pipeline_config). DeepSpeed takes any
// value; here each key is type-checked and an unknown one is an error naming it. What the
// pipeline engine does with them: docs/pipeline.md.
#include "config/sections.h"

namespace deepspeed::config_detail {

PipelineConfig read_pipeline(const nlohmann::json& value) {
  const SectionReader s(value, "pipeline",
                        {"stages", "partition", "seed_layers", "activation_checkpoint_interval", "pipe_partitioned",
                         "grad_partitioned", "use_reentrant"});
  PipelineConfig c;
  if (const auto* v = s.find("stages"); v && !v->is_null() && !(v->is_string() && *v == "auto")) {
    c.stages = s.integer("stages", 1, 1);
  }
  c.partition = s.string("partition", c.partition);
  c.seed_layers = s.boolean("seed_layers", c.seed_layers);
  c.activation_checkpoint_interval = s.integer("activation_checkpoint_interval", c.activation_checkpoint_interval, 0);
  c.pipe_partitioned = s.boolean("pipe_partitioned", c.pipe_partitioned);
  c.grad_partitioned = s.boolean("grad_partitioned", c.grad_partitioned);
  if (const auto* v = s.find("use_reentrant"); v && !v->is_null()) c.use_reentrant = s.boolean("use_reentrant", true);
  return c;
}

}  // namespace deepspeed::config_detail
