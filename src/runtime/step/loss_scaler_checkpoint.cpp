#include "runtime/step/loss_scaler_checkpoint.h"

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/python_value.h"

namespace deepspeed {

c10::IValue loss_scaler_object(const LossScaler& scaler) {
  const std::string module = "deepspeed.runtime.fp16.loss_scaler";
  const auto j = scaler.state_dict();
  if (!scaler.dynamic()) return checkpoint::python_instance(module, "LossScaler", {{"cur_scale", scaler.scale()}, {"dynamic", false}});
  // DynamicLossScaler's attributes, in the order its __init__ sets them.
  return checkpoint::python_instance(
      module, "DynamicLossScaler",
      {{"cur_scale", scaler.scale()},
       {"dynamic", true},
       {"cur_iter", j.at("cur_iter").get<int64_t>()},
       {"last_overflow_iter", j.at("last_overflow_iter").get<int64_t>()},
       {"scale_factor", j.at("scale_factor").get<double>()},
       {"scale_window", j.at("scale_window").get<int64_t>()},
       {"min_scale", j.at("min_scale").get<double>()},
       {"delayed_shift", j.at("delayed_shift").get<int64_t>()},
       {"cur_hysteresis", j.at("cur_hysteresis").get<int64_t>()},
       {"consecutive_hysteresis", j.at("consecutive_hysteresis").get<bool>()},
       {"raise_error_at_min_scale", true},
       {"dtype", checkpoint::python_global("torch", "float16")}});
}

c10::IValue loss_scaler_dict(const LossScaler& scaler) { return checkpoint::to_ivalue(scaler.state_dict()); }

void load_loss_scaler(LossScaler& scaler, const c10::IValue& value, const std::string& where) {
  if (!value.isGenericDict()) throw CheckpointError(where + " should be a loss scaler, found " + value.tagKind());
  auto state = scaler.state_dict();
  for (const auto& kv : value.toGenericDict()) {
    if (kv.key().isString() && state.contains(kv.key().toStringRef())) {
      state[kv.key().toStringRef()] = checkpoint::to_json(kv.value(), where + "." + kv.key().toStringRef());
    }
  }
  scaler.load_state_dict(state, where);
}

}  // namespace deepspeed
