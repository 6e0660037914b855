// What the engine reports while it trains: monitors (tensorboard, csv_monitor, and the online
// wandb, comet, trackio), the flops profiler, the communication logger and the throughput
// timer (docs/monitoring.md).
#include "config/json_values.h"
#include "config/sections.h"

namespace deepspeed::config_detail {

MonitorConfig read_monitor(const nlohmann::json& value, const std::string& path) {
  const SectionReader s(value, path, {"enabled", "output_path", "job_name"});
  MonitorConfig c;
  c.enabled = s.boolean("enabled", c.enabled);
  c.output_path = s.string("output_path", c.output_path);
  c.job_name = s.string("job_name", c.job_name);
  return c;
}

WandbConfig read_wandb(const nlohmann::json& value) {
  const SectionReader s(value, "wandb", {"enabled", "group", "team", "project"});
  WandbConfig c;
  c.enabled = s.boolean("enabled", c.enabled);
  c.group = s.optional_string("group");
  c.team = s.optional_string("team");
  c.project = s.string("project", c.project);
  return c;
}

CometConfig read_comet(const nlohmann::json& value) {
  const SectionReader s(value, "comet",
                        {"enabled", "samples_log_interval", "project", "workspace", "api_key", "experiment_name",
                         "experiment_key", "online", "mode"});
  CometConfig c;
  c.enabled = s.boolean("enabled", c.enabled);
  c.samples_log_interval = s.integer("samples_log_interval", c.samples_log_interval);
  c.project = s.optional_string("project");
  c.workspace = s.optional_string("workspace");
  c.api_key = s.optional_string("api_key");
  c.experiment_name = s.optional_string("experiment_name");
  c.experiment_key = s.optional_string("experiment_key");
  if (const auto* online = s.find("online"); online && !online->is_null()) c.online = s.boolean("online", true);
  c.mode = s.optional_string("mode");
  return c;
}

TrackioConfig read_trackio(const nlohmann::json& value) {
  const SectionReader s(value, "trackio", {"enabled", "project"});
  TrackioConfig c;
  c.enabled = s.boolean("enabled", c.enabled);
  c.project = s.string("project", c.project);
  return c;
}

FlopsProfilerConfig read_flops_profiler(const nlohmann::json& value) {
  const SectionReader s(value, "flops_profiler",
                        {"enabled", "recompute_fwd_factor", "profile_step", "module_depth", "top_modules",
                         "detailed", "output_file"});
  FlopsProfilerConfig c;
  c.enabled = s.boolean("enabled", c.enabled);
  c.recompute_fwd_factor = s.number("recompute_fwd_factor", c.recompute_fwd_factor);
  c.profile_step = s.integer("profile_step", c.profile_step, 1);
  c.module_depth = s.integer("module_depth", c.module_depth);
  c.top_modules = s.integer("top_modules", c.top_modules);
  c.detailed = s.boolean("detailed", c.detailed);
  c.output_file = s.optional_string("output_file");
  return c;
}

CommsLoggerConfig read_comms_logger(const nlohmann::json& value) {
  const SectionReader s(value, "comms_logger", {"enabled", "verbose", "prof_all", "debug", "prof_ops"});
  CommsLoggerConfig c;
  c.enabled = s.boolean("enabled", c.enabled);
  c.verbose = s.boolean("verbose", c.verbose);
  c.prof_all = s.boolean("prof_all", c.prof_all);
  c.debug = s.boolean("debug", c.debug);
  if (const auto* ops = s.find("prof_ops"); ops && !ops->is_null()) {
    if (!ops->is_array()) throw_expected(s.path("prof_ops"), "a list of operation names", *ops);
    for (std::size_t i = 0; i < ops->size(); ++i) {
      c.prof_ops.push_back(to_string((*ops)[i], s.path("prof_ops") + "[" + std::to_string(i) + "]"));
    }
  }
  return c;
}

ThroughputTimerConfig read_timers(const nlohmann::json& value) {
  const SectionReader timers(value, "timers", {"throughput"});
  ThroughputTimerConfig c;
  const auto* throughput = timers.find("throughput");
  if (!throughput) return c;
  const SectionReader s(*throughput, timers.path("throughput"), {"enabled", "synchronized"});
  c.enabled = s.boolean("enabled", c.enabled);
  c.synchronized = s.boolean("synchronized", c.synchronized);
  return c;
}

}  // namespace deepspeed::config_detail
