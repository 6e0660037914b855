// --world_info, the base64 JSON a node launcher receives on its command line. Promise:
// resources or a LaunchError; and what decodes encodes back to the same resources.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "deepspeed/errors.h"
#include "launcher/world_info.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto resources = deepspeed::launcher::decode_world_info(text);
    if (deepspeed::launcher::decode_world_info(deepspeed::launcher::encode_world_info(resources)) != resources) {
      __builtin_trap();
    }
  } catch (const deepspeed::LaunchError&) {
  }
  return 0;
}
