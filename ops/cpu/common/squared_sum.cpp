#include "cpu/common/squared_sum.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/common/parallel_chunks.h"
#include "cpu/common/simd_variants.h"
#include "cpu/common/squared_sum_kernels.h"

namespace deepspeed::ops {
namespace {

using Block = double (*)(const float*, int64_t);

constexpr SimdVariants<Block> kBlocks = DS_SIMD_VARIANTS(squared_sum_detail::block);

}  // namespace

double squared_sum(const float* x, int64_t n, std::optional<SimdLevel> level) {
  if (n < 0) throw std::invalid_argument("squared_sum: n = " + std::to_string(n) + " < 0");
  if (n > 0 && x == nullptr) throw std::invalid_argument("squared_sum: null array");
  const Block block = kBlocks[resolve_simd_level(level)];
  const int64_t blocks = (n + kSquaredSumBlock - 1) / kSquaredSumBlock;
  std::vector<double> sums(static_cast<size_t>(blocks));
  // Whole blocks per thread: the partition changes with the thread count, the sums do not.
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= kParallelMinElements && !omp_in_parallel())
#endif
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kSquaredSumBlock;
    sums[static_cast<size_t>(b)] = block(x + begin, std::min(n, begin + kSquaredSumBlock) - begin);
  }
  double total = 0.0;
  for (double s : sums) total += s;
  return total;
}

}  // namespace deepspeed::ops
