#include "runtime/host_malloc_settings.h"

#include <cstdlib>
#include <string>
#include <string_view>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace deepspeed {

HostMallocSettings keep_freed_host_memory_for_reuse() {
#if defined(__GLIBC__)
  if (const char* tunables = std::getenv("GLIBC_TUNABLES");
      tunables != nullptr && std::string_view(tunables).find("glibc.malloc.") != std::string_view::npos) {
    return {false, "GLIBC_TUNABLES sets glibc.malloc tunables; left as they are"};
  }
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, static_cast<int>(kHostMmapThreshold)) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, static_cast<int>(kHostTrimThreshold)) == 1;
  if (!mmap_ok || !trim_ok) return {false, "glibc refused mallopt(M_MMAP_THRESHOLD/M_TRIM_THRESHOLD)"};
  return {true, "malloc keeps freed host memory for reuse (mmap threshold " + std::to_string(kHostMmapThreshold >> 20) +
                    " MiB, trim threshold " + std::to_string(kHostTrimThreshold >> 20) + " MiB)"};
#else
  return {false, "not glibc: the C library's malloc settings are left as they are"};
#endif
}

}  // namespace deepspeed
