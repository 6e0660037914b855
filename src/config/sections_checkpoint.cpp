// "checkpoint": how tags are validated across ranks and how files are written
// (docs/checkpointing.md, "Tag validation").
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "config/json_values.h"
#include "config/sections.h"

namespace deepspeed::config_detail {

CheckpointConfig read_checkpoint(const nlohmann::json& value) {
  const SectionReader s(value, "checkpoint",
                        {"tag_validation", "load_universal", "use_node_local_storage", "parallel_write",
                         "checkpoint_serialization", "writer"});
  CheckpointConfig c;
  if (s.has("tag_validation")) {
    std::string mode = s.string("tag_validation", c.tag_validation);
    std::transform(mode.begin(), mode.end(), mode.begin(), [](unsigned char ch) { return std::toupper(ch); });
    if (mode != "WARN" && mode != "IGNORE" && mode != "FAIL") {
      // DeepSpeed's message, which shows the value upper-cased.
      throw ConfigError(s.path("tag_validation"),
                        fmt::format("Checkpoint config contains invalid tag_validation value of {}, expecting one "
                                    "of ['WARN', 'IGNORE', 'FAIL']",
                                    mode));
    }
    c.tag_validation = mode;
  }
  c.load_universal = s.boolean("load_universal", c.load_universal);
  c.use_node_local_storage = s.boolean("use_node_local_storage", c.use_node_local_storage);
  if (const auto* v = s.find("parallel_write")) {
    const SectionReader pw(*v, s.path("parallel_write"), {"pipeline_stage"});
    c.parallel_write_pipeline_stage = pw.boolean("pipeline_stage", c.parallel_write_pipeline_stage);
  }
  c.checkpoint_serialization = s.boolean("checkpoint_serialization", c.checkpoint_serialization);
  if (const auto* v = s.find("writer"); v && !v->is_null()) {
    if (!v->is_object()) throw_expected(s.path("writer"), "a JSON object or null", *v);
    c.writer = *v;
  }
  return c;
}

}  // namespace deepspeed::config_detail
