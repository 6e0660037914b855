#include "cpu/common/simd_level.h"

#include <cstdlib>

#include "cpu/common/simd_variants.h"

#if DS_CPU_X86_VARIANTS
#include <cpuid.h>
#endif

namespace deepspeed::ops {
namespace {

#if DS_CPU_X86_VARIANTS
// CPUID leaf 1, ECX bit 29. Asked directly because Clang's __builtin_cpu_supports does not
// know "f16c"; the AVX check below already covers the OS's saving of the YMM registers.
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
#endif

bool ask_cpu(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar:
      return true;
#if DS_CPU_X86_VARIANTS
    // libgcc's checks include the OS's XSAVE support of YMM/ZMM state, not only CPUID bits.
    case SimdLevel::Avx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case SimdLevel::Avx512:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
    case SimdLevel::Avx2:
    case SimdLevel::Avx512:
      return false;
#endif
  }
  return false;
}

// Asked once per process: CPUID traps to the hypervisor in a virtual machine (tens of
// microseconds), and the CPU ops resolve their level on every call.
bool cpu_supports(SimdLevel level) {
  static const bool avx2 = ask_cpu(SimdLevel::Avx2);
  static const bool avx512 = ask_cpu(SimdLevel::Avx512);
  return level == SimdLevel::Avx512 ? avx512 : level == SimdLevel::Avx2 ? avx2 : ask_cpu(level);
}

// As built_simd_levels() says, without building its list: the CPU ops resolve their level
// on every call.
bool is_built(SimdLevel level) { return level == SimdLevel::Scalar || DS_CPU_X86_VARIANTS; }

SimdLevel require_runnable(SimdLevel level, const std::string& asked_by) {
  if (is_runnable(level)) return level;
  const std::string why =
      is_built(level) ? "this CPU does not support it" : "this build does not include it";
  throw SimdError(asked_by + " asks for SIMD level '" + to_string(level) + "', but " + why +
                  "; runnable here: " + join(runnable_simd_levels()));
}

}  // namespace

const char* to_string(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar:
      return "scalar";
    case SimdLevel::Avx2:
      return "avx2";
    case SimdLevel::Avx512:
      return "avx512";
  }
  return "unknown";
}

std::optional<SimdLevel> parse_simd_level(std::string_view name) {
  for (SimdLevel level : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512}) {
    if (name == to_string(level)) return level;
  }
  return std::nullopt;
}

std::vector<SimdLevel> built_simd_levels() {
#if DS_CPU_X86_VARIANTS
  return {SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Scalar};
#else
  return {SimdLevel::Scalar};
#endif
}

std::vector<SimdLevel> runnable_simd_levels() {
  std::vector<SimdLevel> out;
  for (SimdLevel level : built_simd_levels()) {
    if (cpu_supports(level)) out.push_back(level);
  }
  return out;
}

bool is_runnable(SimdLevel level) { return is_built(level) && cpu_supports(level); }

SimdLevel best_simd_level() {
  for (SimdLevel level : {SimdLevel::Avx512, SimdLevel::Avx2}) {
    if (is_runnable(level)) return level;
  }
  return SimdLevel::Scalar;
}

SimdLevel selected_simd_level() {
  // Read on every call rather than cached: a test or benchmark may switch it in-process, and
  // a kernel call costs far more than one getenv.
  const char* value = std::getenv(kSimdLevelEnv);
  if (value == nullptr || *value == '\0') return best_simd_level();
  const auto level = parse_simd_level(value);
  if (!level) {
    throw SimdError(std::string(kSimdLevelEnv) + "='" + value +
                    "' is not a SIMD level (expected scalar, avx2 or avx512); runnable here: " +
                    join(runnable_simd_levels()));
  }
  return require_runnable(*level, kSimdLevelEnv);
}

SimdLevel resolve_simd_level(std::optional<SimdLevel> requested) {
  return requested ? require_runnable(*requested, "the caller") : selected_simd_level();
}

std::string join(const std::vector<SimdLevel>& levels) {
  std::string out;
  for (SimdLevel level : levels) {
    if (!out.empty()) out += ", ";
    out += to_string(level);
  }
  return out;
}

}  // namespace deepspeed::ops
