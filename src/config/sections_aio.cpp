// "aio" (docs/async_io.md): the async_io op's settings for NVMe swapping. DeepSpeed reads it with
// get_scalar_param (unknown keys ignored); here, as for every modelled section, an unknown key
// is an error, and the sizes must be at least 1 (DeepSpeed would divide by them or hang).
#include "config/sections.h"

namespace deepspeed::config_detail {

AioConfig read_aio(const nlohmann::json& value, WarningLog& warnings) {
  const SectionReader s(value, "aio",
                        {"block_size", "queue_depth", "intra_op_parallelism", "thread_count", "single_submit",
                         "overlap_events", "use_gds"});
  AioConfig c;
  c.block_size = s.integer("block_size", c.block_size, 1);
  c.queue_depth = s.integer("queue_depth", c.queue_depth, 1);
  // DeepSpeed's documentation calls it "thread_count"; its code reads "intra_op_parallelism"
  // and silently ignores "thread_count". Configs written from the documentation mean it.
  if (s.has("thread_count")) {
    if (s.has("intra_op_parallelism")) {
      throw ConfigError(s.path("thread_count"),
                        "give either \"intra_op_parallelism\" or its documentation name \"thread_count\", not both");
    }
    c.intra_op_parallelism = s.integer("thread_count", c.intra_op_parallelism, 1);
    warnings.add(s.path("thread_count"),
                 "read as \"intra_op_parallelism\" (DeepSpeed's code ignores \"thread_count\"; write "
                 "\"intra_op_parallelism\")");
  } else {
    c.intra_op_parallelism = s.integer("intra_op_parallelism", c.intra_op_parallelism, 1);
  }
  c.single_submit = s.boolean("single_submit", c.single_submit);
  c.overlap_events = s.boolean("overlap_events", c.overlap_events);
  c.use_gds = s.boolean("use_gds", c.use_gds);
  return c;
}

}  // namespace deepspeed::config_detail
