// LRScheduler: the counter and the writing of values into the optimizer that every
// schedule shares (DeepSpeed's step/state_dict/load_state_dict/update_lr).
#include "deepspeed/errors.h"
#include "deepspeed/lr_schedules.h"

namespace deepspeed {

LRScheduler::LRScheduler(Optimizer& optimizer, int64_t last_batch_iteration)
    : optimizer_(optimizer), last_batch_iteration_(last_batch_iteration) {}

LRScheduler::~LRScheduler() = default;

void LRScheduler::step(std::optional<int64_t> k) {
  last_batch_iteration_ = k ? *k : last_batch_iteration_ + 1;
  apply();
}

void LRScheduler::apply() { write_lr(get_lr()); }

void LRScheduler::write_lr(const std::vector<double>& lrs) {
  auto& groups = optimizer_.param_groups();
  for (size_t i = 0; i < groups.size() && i < lrs.size(); ++i) groups[i].lr = lrs[i];
  last_lr_ = lrs;
}

nlohmann::json LRScheduler::state_dict() const {
  return {{"last_batch_iteration", last_batch_iteration_}};
}

void LRScheduler::load_state_dict(const nlohmann::json& state) {
  auto it = state.find("last_batch_iteration");
  if (it == state.end() || !it->is_number_integer()) {
    throw CheckpointError(name() + " state has no integer 'last_batch_iteration': " +
                          state.dump());
  }
  last_batch_iteration_ = it->get<int64_t>();
}

}  // namespace deepspeed
