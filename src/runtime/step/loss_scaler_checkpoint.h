// A loss scaler in checkpoints: DeepSpeed's pickled LossScaler / DynamicLossScaler object
// (what ZeRO's optim-states files hold), our own dict of its state (stage 0's
// FP16_Optimizer entry), and reading either back.
#pragma once

#include <string>

#include <ATen/core/ivalue.h>

#include "runtime/step/loss_scaler.h"

namespace deepspeed {

// DeepSpeed's loss scaler object (deepspeed.runtime.fp16.loss_scaler's LossScaler or
// DynamicLossScaler, with its attributes) for `scaler`.
c10::IValue loss_scaler_object(const LossScaler& scaler);
// The scaler's state as a dict of its values.
c10::IValue loss_scaler_dict(const LossScaler& scaler);
// A saved scaler: our dict, or DeepSpeed's object read as the dict of its attributes (a static
// LossScaler has only cur_scale and dynamic: the rest stays as this run has it). Errors name
// `where`.
void load_loss_scaler(LossScaler& scaler, const c10::IValue& value, const std::string& where);

}  // namespace deepspeed
