#include "optim/schedule_common.h"

#include <cmath>

#include "deepspeed/errors.h"
#include "deepspeed/optimizer.h"
#include "optim/optim_log.h"

namespace deepspeed {

int64_t read_warmup_num_steps(ParamReader& reader) {
  const std::string key = "warmup_num_steps";
  if (!reader.has(key)) {
    reader.accept(key);
    return 1000;
  }
  const std::optional<double> n = reader.number(key);
  if (!n || !(*n > 0) || *n != std::floor(*n) || *n > 9.0e18) {
    throw ConfigError(reader.path(key), "warmup_num_steps must be a positive integer, got " +
                                            (n ? python_repr(*n) : std::string("None")));
  }
  return static_cast<int64_t>(*n);
}

std::string read_warmup_type(ParamReader& reader) {
  const std::string type = reader.string("warmup_type").value_or("log");
  if (type != "log" && type != "linear") {
    optim_warning("Using unknown warmup_type: " + type +
                  ". The increasing function is set to default (log)");
    return "log";
  }
  return type;
}

int64_t read_last_batch_iteration(ParamReader& reader) {
  return reader.integer("last_batch_iteration").value_or(-1);
}

int64_t read_total_num_steps(ParamReader& reader, const std::string& owner) {
  const std::optional<int64_t> total = reader.integer("total_num_steps");
  if (!total) {
    throw ConfigError(reader.path("total_num_steps"),
                      owner + " requires total_num_steps (the number of training steps)");
  }
  return *total;
}

double warmup_fraction(const std::string& warmup_type, int64_t k, int64_t n) {
  if (warmup_type == "linear") return static_cast<double>(k) / static_cast<double>(n);
  // DeepSpeed multiplies by a precomputed 1/log(n); keep that order for identical doubles.
  const double inverse_log_warm_up = 1.0 / std::log(static_cast<double>(n));
  return inverse_log_warm_up * std::log(static_cast<double>(k + 1));
}

}  // namespace deepspeed
