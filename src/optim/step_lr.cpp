#include "optim/step_lr.h"

#include <cmath>

#include "deepspeed/errors.h"

namespace deepspeed {

StepLR::StepLR(Optimizer& optimizer, ParamReader& params)
    : LRScheduler(optimizer, params.integer("last_epoch").value_or(-1)),
      gamma_(params.number("gamma").value_or(0.1)),
      base_lrs_(deepspeed::get_lr(optimizer)) {
  const std::optional<int64_t> step_size = params.integer("step_size");
  if (!step_size) throw ConfigError(params.path("step_size"), "StepLR requires step_size");
  if (*step_size <= 0) {
    throw ConfigError(params.path("step_size"),
                      "step_size must be a positive integer, got " + std::to_string(*step_size));
  }
  step_size_ = *step_size;
  params.boolean("verbose");  // torch's printing switch; deprecated there, ignored here
}

void StepLR::initialize() {
  // torch's constructor ends with its _initial_step(): last_epoch -1 → 0, lr = base.
  step();
}

std::vector<double> StepLR::get_lr() const {
  // torch's closed form; the chainable form gives the same values unless something else
  // writes the lr between steps.
  const int64_t k = std::max<int64_t>(0, last_batch_iteration_);
  const double factor = std::pow(gamma_, static_cast<double>(k / step_size_));
  std::vector<double> lrs;
  for (double lr : base_lrs_) lrs.push_back(lr * factor);
  return lrs;
}

nlohmann::json StepLR::state_dict() const {
  return {{"step_size", step_size_},
          {"gamma", gamma_},
          {"base_lrs", base_lrs_},
          {"last_epoch", last_batch_iteration_},
          {"verbose", false},
          {"_step_count", last_batch_iteration_ + 1},
          {"_get_lr_called_within_step", false},
          {"_last_lr", last_lr_}};
}

void StepLR::load_state_dict(const nlohmann::json& state) {
  auto it = state.find("last_epoch");
  if (it == state.end() || !it->is_number_integer()) {
    throw CheckpointError("StepLR state has no integer 'last_epoch': " + state.dump());
  }
  last_batch_iteration_ = it->get<int64_t>();
  // torch restores every attribute of the dict.
  if (state.contains("step_size") && state["step_size"].is_number_integer()) {
    step_size_ = state["step_size"].get<int64_t>();
  }
  if (state.contains("gamma") && state["gamma"].is_number()) gamma_ = state["gamma"].get<double>();
  if (state.contains("base_lrs") && state["base_lrs"].is_array()) {
    base_lrs_ = state["base_lrs"].get<std::vector<double>>();
  }
}

}  // namespace deepspeed
