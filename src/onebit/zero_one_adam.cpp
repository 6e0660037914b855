#include "onebit/zero_one_adam.h"

#include <algorithm>

#include <deepspeed/errors.h>

#include "onebit/adam_updates.h"
#include "optim/optimizer_common.h"
#include "optim/params_reader.h"

namespace deepspeed {
namespace {

int64_t counter(const std::map<std::string, torch::Tensor>& state, const char* key) {
  return static_cast<int64_t>(state.at(key).item<double>());
}
void set_counter(std::map<std::string, torch::Tensor>& state, const char* key, double value) {
  state[key] = torch::full({}, value, torch::kFloat64);
}

}  // namespace

ZeroOneAdam::ZeroOneAdam(std::vector<ParamGroup> groups, std::shared_ptr<comm::ProcessGroup> group,
                         OneBitSettings settings, ZeroOneAdamSchedule schedule)
    : Optimizer(std::move(groups)), group_(std::move(group)), settings_(std::move(settings)), schedule_(schedule) {
  if (!group_) throw EngineError("0/1 Adam needs the data-parallel process group");
}

std::unique_ptr<Optimizer> ZeroOneAdam::create(const nlohmann::json& params, std::vector<ParamGroup> groups,
                                               std::shared_ptr<comm::ProcessGroup> group) {
  ParamReader reader(params, "optimizer.params", "ZeroOneAdam");
  auto settings = read_onebit_settings(reader, groups, "0/1 Adam", /*with_freeze_step=*/false);
  ZeroOneAdamSchedule s;
  s.var_freeze_step = reader.integer("var_freeze_step").value_or(s.var_freeze_step);
  s.var_update_scaler = reader.integer("var_update_scaler").value_or(s.var_update_scaler);
  s.local_step_scaler = reader.integer("local_step_scaler").value_or(s.local_step_scaler);
  s.local_step_clipper = reader.integer("local_step_clipper").value_or(s.local_step_clipper);
  reader.reject_unknown();
  for (const auto& [key, value] : {std::pair<const char*, int64_t>{"var_update_scaler", s.var_update_scaler},
                                   {"local_step_scaler", s.local_step_scaler},
                                   {"local_step_clipper", s.local_step_clipper}}) {
    if (value < 1) throw ConfigError(reader.path(key), "must be a positive integer, got " + std::to_string(value));
  }
  return std::make_unique<ZeroOneAdam>(std::move(groups), std::move(group), std::move(settings), s);
}

void ZeroOneAdam::reset_counters(std::map<std::string, torch::Tensor>& state) const {
  set_counter(state, "var_interval", 1);
  set_counter(state, "var_counter", 0);
  set_counter(state, "local_step_interval", 1);
  set_counter(state, "local_step_counter", 0);
  set_counter(state, "lrs", 0);
}

void ZeroOneAdam::step() {
  torch::NoGradGuard no_grad;
  const bool setup = !initialized_;
  const int64_t world = group_->size();
  bool averaged_next = averaged_next_;
  size_t index = 0;
  for (auto& group : groups_) {
    const double beta1 = group.betas[0];
    const double beta2 = group.betas[1];
    for (auto& param : group.params) {
      const size_t i = index++;
      if (!param.grad().defined()) continue;
      auto grad = dense_grad(param, "0/1 Adam");
      auto& state = state_at(i);
      auto p = param.detach();
      if (!state.count("exp_avg")) {
        state["exp_avg"] = torch::zeros_like(p);
        state["exp_avg_sq"] = torch::zeros_like(p);
      }
      if (errors_.size() <= i) errors_.resize(i + 1);
      auto& errors = errors_[i];
      // Fresh errors (the set-up step, after a checkpoint) come with fresh schedule counters
      // and an empty accumulator, as in DeepSpeed.
      if (!errors.worker.defined()) {
        reset_counters(state);
        errors = comm::make_compression_errors(p.numel(), world, group_->device());
        state["momentum_accumulator"] = torch::zeros_like(p);
      }
      auto& accumulator = state["momentum_accumulator"];
      const auto t = static_cast<int64_t>(increment_step(state));
      auto& exp_avg = state["exp_avg"];
      auto& exp_avg_sq = state["exp_avg_sq"];
      if (setup) {
        if (world > 1) accumulator.copy_(comm::compressed_allreduce(*group_, accumulator, errors));
        continue;
      }
      int64_t var_interval = counter(state, "var_interval");
      if (!frozen_) {
        if (t % var_interval == 0) {
          exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
          exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
        } else if (world > 1) {
          onebit_detail::update_momentum(exp_avg, comm::compressed_allreduce(*group_, grad, errors), beta1);
        }
      } else {
        exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
        set_counter(state, "lrs", state.at("lrs").item<double>() + group.lr);
      }

      if (!frozen_) {
        onebit_detail::update_parameter(p, exp_avg, exp_avg_sq, group);
      } else {
        auto update = exp_avg / (exp_avg_sq.sqrt() + group.eps);
        if (group.weight_decay > 0.0) update.add_(p, group.weight_decay);
        p.add_(update, -group.lr);
        accumulator.add_(update, -group.lr);
      }

      if (frozen_ && t % counter(state, "local_step_interval") == 0) {
        // Undo the local steps, agree on their sum (in gradient units), and redo it.
        const auto denom = exp_avg_sq.sqrt() + group.eps;
        p.sub_(accumulator);
        accumulator.mul_(denom);
        if (world > 1) accumulator.copy_(comm::compressed_allreduce(*group_, accumulator, errors));
        exp_avg.zero_().add_(accumulator / state.at("lrs").item<double>(), -1.0);
        p.add_(accumulator / denom);
        accumulator.zero_();
        set_counter(state, "lrs", 0);
      }

      if (!frozen_) {
        if (t % var_interval == 0) {
          int64_t var_counter = counter(state, "var_counter") + 1;
          if (var_counter == schedule_.var_update_scaler) {
            var_counter = 0;
            var_interval *= 2;
            set_counter(state, "var_interval", static_cast<double>(var_interval));
          }
          set_counter(state, "var_counter", static_cast<double>(var_counter));
        }
        averaged_next = (t + 1) % var_interval == 0;
      } else {
        int64_t local_counter = counter(state, "local_step_counter") + 1;
        if (local_counter == schedule_.local_step_scaler) {
          local_counter = 0;
          set_counter(state, "local_step_interval",
                      static_cast<double>(std::min(schedule_.local_step_clipper,
                                                   counter(state, "local_step_interval") * 2)));
        }
        set_counter(state, "local_step_counter", static_cast<double>(local_counter));
      }
    }
  }
  if (setup) {
    initialized_ = true;
    errors_.clear();
    return;
  }
  if (first_tensor_step(*this) > static_cast<double>(schedule_.var_freeze_step)) {
    frozen_ = true;
    averaged_next = false;
  }
  if (frozen_ && !errors_reset_) {
    // The errors now stand for another quantity (accumulated updates, not gradients).
    for (auto& e : errors_) {
      if (e.worker.defined()) {
        e.worker.zero_();
        e.server.zero_();
      }
    }
    errors_reset_ = true;
  }
  averaged_next_ = averaged_next;
}

// DeepSpeed drops the errors and the accumulator. The phase follows the loaded step; the
// counters restart at the set-up step, so every step before the freeze updates the variance
// again and needs averaged gradients (DeepSpeed keeps the loaded interval's verdict for that
// first step: docs/compatibility.md).
void ZeroOneAdam::state_loaded() {
  errors_.clear();
  for (auto& s : state_) s.erase("momentum_accumulator");
  frozen_ = first_tensor_step(*this) > static_cast<double>(schedule_.var_freeze_step);
  errors_reset_ = false;
  averaged_next_ = !frozen_;
}

}  // namespace deepspeed
