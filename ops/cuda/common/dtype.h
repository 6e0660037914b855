// Element types of the tensors the CUDA ops read and write, for callers that hold raw pointers.
#pragma once

namespace deepspeed::ops::cuda {

enum class DType { Float32, Float16, BFloat16 };

}  // namespace deepspeed::ops::cuda
