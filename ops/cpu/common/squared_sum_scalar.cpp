// The portable variant (no -m flags): the compiler vectorises it with the baseline (SSE2).
#include "cpu/common/squared_sum_block_body.h"
#include "cpu/common/squared_sum_kernels.h"

namespace deepspeed::ops::squared_sum_detail {

double block_scalar(const float* x, int64_t n) { return block_squared_sum_body(x, n); }

}  // namespace deepspeed::ops::squared_sum_detail
