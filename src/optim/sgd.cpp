#include "optim/sgd.h"

#include "deepspeed/errors.h"
#include "optim/optimizer_common.h"
#include "optim/params_reader.h"

namespace deepspeed {

std::unique_ptr<Optimizer> Sgd::create(const nlohmann::json& params,
                                       std::vector<ParamGroup> groups) {
  ParamReader reader(params, "optimizer.params", "SGD");
  const std::optional<double> lr = reader.number("lr");
  const double momentum = reader.number("momentum").value_or(0.0);
  const double dampening = reader.number("dampening").value_or(0.0);
  const double weight_decay = reader.number("weight_decay").value_or(0.0);
  const bool nesterov = reader.boolean("nesterov").value_or(false);
  const bool maximize = reader.boolean("maximize").value_or(false);
  for (const char* key : {"foreach", "differentiable", "fused"}) reader.boolean(key);
  reader.reject_unknown();

  // torch 1.13's SGD has no default lr (torch >= 2.3 defaults to 1e-3). A group that sets
  // its own lr needs none from the config.
  bool every_group_has_lr = !groups.empty();
  for (const auto& g : groups) every_group_has_lr = every_group_has_lr && g.overrides.count("lr");
  if (!lr && !every_group_has_lr) {
    throw ConfigError(reader.path("lr"),
                      "SGD requires a learning rate: add \"lr\" to the optimizer params");
  }
  if (lr) check_lr(*lr, reader.path("lr"));
  if (momentum < 0.0) {
    throw ConfigError(reader.path("momentum"), "Invalid momentum value: " + python_repr(momentum));
  }
  check_weight_decay(weight_decay, reader.path("weight_decay"));
  if (nesterov && (momentum <= 0.0 || dampening != 0.0)) {
    throw ConfigError(reader.path("nesterov"), "Nesterov momentum requires a momentum and zero dampening");
  }

  GroupWriter writer(groups);
  if (lr) writer.lr(*lr);
  writer.momentum(momentum);
  writer.weight_decay(weight_decay);
  writer.extra("dampening", dampening);
  writer.extra("nesterov", nesterov ? 1.0 : 0.0);
  writer.extra("maximize", maximize ? 1.0 : 0.0);
  return std::make_unique<Sgd>(std::move(groups));
}

void Sgd::step() {
  torch::NoGradGuard no_grad;
  size_t index = 0;
  for (auto& group : groups_) {
    const double momentum = group.momentum;
    const double dampening = extra_or(group, "dampening", 0.0);
    const bool nesterov = extra_or(group, "nesterov", 0.0) != 0.0;
    const bool maximize = extra_or(group, "maximize", 0.0) != 0.0;
    for (auto& p : group.params) {
      auto& state = state_at(index++);
      if (!p.grad().defined()) continue;
      torch::Tensor w = math_view(p);
      torch::Tensor d = dense_grad(p, "SGD");
      if (group.weight_decay != 0.0) d = d.add(w, group.weight_decay);
      if (momentum != 0.0) {
        auto it = state.find("momentum_buffer");
        torch::Tensor buf;
        if (it == state.end() || !it->second.defined()) {
          buf = d.clone();
          state["momentum_buffer"] = buf.to(p.scalar_type());
        } else {
          buf = math_view(it->second);
          buf.mul_(momentum).add_(d, 1.0 - dampening);
          write_back(it->second, buf);
        }
        d = nesterov ? d.add(buf, momentum) : buf;
      }
      w.add_(d, maximize ? group.lr : -group.lr);
      write_back(p, w);
    }
  }
}

}  // namespace deepspeed
