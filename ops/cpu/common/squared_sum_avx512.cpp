// The AVX-512 variant (compiled with -mavx512f and friends).
#include "cpu/common/squared_sum_block_body.h"
#include "cpu/common/squared_sum_kernels.h"

namespace deepspeed::ops::squared_sum_detail {

double block_avx512(const float* x, int64_t n) { return block_squared_sum_body(x, n); }

}  // namespace deepspeed::ops::squared_sum_detail
