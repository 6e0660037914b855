// Software prefetch for the streaming kernels: each cache line of every array is asked for
// kPrefetchAhead elements before the kernel reaches it.
//
// Why: the kernels read 3 or 4 streams and spend much of each element on a divide and a
// square root, which fill the core's out-of-order window; the hardware prefetchers then
// fall behind. Measured on a 2-core AMD EPYC (Zen 3) VM, one thread, 64M-element Adam: 86-95
// ms per step without, 67-71 ms with a 256-element (1 KiB) distance, the same as a loop that
// only moves Adam's bytes (with the same prefetch); 4 KiB ahead gained nothing. Internal
// linkage for the reason half_convert.h gives.
#pragma once

#include <cstdint>

namespace deepspeed::ops {

inline constexpr int64_t kPrefetchAhead = 256;  // elements, per stream
inline constexpr int64_t kFloatsPerLine = 16;   // a 64-byte cache line

// Prefetches element i + kPrefetchAhead of every stream, while that is inside [0, n).
// Call it once per cache line (i a multiple of kFloatsPerLine). Always inlined: GCC 12 finds
// a function that only prefetches free of side effects, and deletes the calls to it when it
// is not inlined early (seen at -O2 and -O3).
template <class... T>
[[gnu::always_inline]] static inline void prefetch_ahead(int64_t i, int64_t n,
                                                         const T*... streams) {
  if (i + kPrefetchAhead < n) (__builtin_prefetch(streams + i + kPrefetchAhead), ...);
}

}  // namespace deepspeed::ops
