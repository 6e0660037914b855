// The optional lower-precision copy of the parameters that a CPU optimizer kernel writes in
// the same pass as the fp32 update (DeepSpeed's "step plus copy": the fp16/bf16 weights a
// ZeRO-Offload GPU keeps are refreshed without a second pass over the fp32 master weights).
//
// The copy is an array of n 16-bit values: bf16 rounded to nearest even (NaN becomes 0x7FC0,
// as c10::BFloat16 does), or IEEE binary16 rounded to nearest even (F16C's conversion where
// the CPU has it, the same result computed in integers otherwise).
#pragma once

namespace deepspeed::ops {

enum class CopyType { None, BFloat16, Float16 };

}  // namespace deepspeed::ops
