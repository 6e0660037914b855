// Which SIMD variant of the CPU optimizer kernels (cpu_adam, cpu_adagrad, cpu_lion) runs.
//
// Every kernel is compiled three times, each variant in its own file with its own compiler
// flags: scalar (no flags), AVX2 (-mavx2 -mfma -mf16c) and AVX-512 (-mavx512f -mavx512bw
// -mavx512vl ...). The library therefore runs on any x86-64 CPU, and the variant is chosen
// when a kernel is called, from the features of the CPU it runs on (as ggml does), never
// from the build machine's -march. On other processors only the scalar variant is built.
//
// Promises:
// - runnable_simd_levels() lists the levels both built here and supported by this CPU (and
//   its OS: AVX-512 needs the OS to save the ZMM registers), best first; scalar always.
// - DS_CPU_SIMD=scalar|avx2|avx512 in the environment forces a level (tests, benchmarks).
//   A name that is not a level, or a level this build or CPU cannot run, is a SimdError
//   naming what can run; there is no silent fallback.
//
//   auto level = deepspeed::ops::selected_simd_level();   // DS_CPU_SIMD, else the best
//   std::printf("%s\n", deepspeed::ops::to_string(level));  // "avx2"
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "deepspeed/errors.h"

namespace deepspeed::ops {

enum class SimdLevel { Scalar, Avx2, Avx512 };

// The environment variable that forces a level.
inline constexpr const char* kSimdLevelEnv = "DS_CPU_SIMD";

// A SIMD level that was asked for (DS_CPU_SIMD or an explicit argument) but cannot run here.
class SimdError : public Error {
 public:
  using Error::Error;
};

// "scalar", "avx2", "avx512": the names DS_CPU_SIMD accepts.
const char* to_string(SimdLevel level);
std::optional<SimdLevel> parse_simd_level(std::string_view name);

// Levels compiled into this build, best first (avx512, avx2, scalar on x86-64).
std::vector<SimdLevel> built_simd_levels();
// Levels built and supported by this CPU, best first.
std::vector<SimdLevel> runnable_simd_levels();
bool is_runnable(SimdLevel level);
// The first of runnable_simd_levels().
SimdLevel best_simd_level();
// DS_CPU_SIMD when set (a SimdError if it cannot run), else best_simd_level().
SimdLevel selected_simd_level();
// `requested` when given (a SimdError if it cannot run), else selected_simd_level().
SimdLevel resolve_simd_level(std::optional<SimdLevel> requested);

// "avx512, avx2, scalar"
std::string join(const std::vector<SimdLevel>& levels);

}  // namespace deepspeed::ops
