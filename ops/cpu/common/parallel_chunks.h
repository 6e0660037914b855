// How a CPU optimizer kernel spreads one tensor over the cores: one parallel region, each
// OpenMP thread takes one contiguous chunk (a static schedule), and the kernel variant runs
// on that chunk single-threaded.
//
// Why one chunk per thread: the kernels are bound by memory bandwidth, and one long stream
// per core is what the hardware prefetchers follow best; a dynamic or fine-grained schedule
// only adds synchronisation. Chunk edges fall on multiples of kChunkAlign elements (a
// 64-byte line of floats), so no two threads write the same cache line. The thread count is
// omp_get_max_threads(): OMP_NUM_THREADS, or omp_set_num_threads (which
// at::set_num_threads calls in an OpenMP build of LibTorch).
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace deepspeed::ops {

// Below this many elements a tensor is updated on the calling thread: waking the thread
// team costs a few microseconds, about what one core needs for 32K elements of Adam.
inline constexpr int64_t kParallelMinElements = 32 * 1024;
inline constexpr int64_t kChunkAlign = 16;

// Calls body(begin, end) on disjoint ranges covering [0, n), from up to
// omp_get_max_threads() threads. body must not throw.
template <class Body>
void parallel_chunks(int64_t n, const Body& body) {
  int threads = 1;
#ifdef _OPENMP
  if (n >= kParallelMinElements && !omp_in_parallel()) threads = omp_get_max_threads();
#endif
  const int64_t blocks = (n + kChunkAlign - 1) / kChunkAlign;
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(blocks, 1)));
  if (threads <= 1) {
    if (n > 0) body(int64_t{0}, n);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t team = omp_get_num_threads();  // may be fewer than asked for
    const int64_t begin = std::min(n, blocks * t / team * kChunkAlign);
    const int64_t end = std::min(n, blocks * (t + 1) / team * kChunkAlign);
    if (begin < end) body(begin, end);
  }
#endif
}

}  // namespace deepspeed::ops
