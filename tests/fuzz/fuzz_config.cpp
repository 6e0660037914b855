// ds_config.json text, as a user writes it. The reader promises a DeepSpeedConfig or a
// ConfigError (naming the key and position) for any text: anything else escaping, a crash, a
// leak or undefined behaviour is a finding. Accepted configs must also print (ds_config).
#include <cstddef>
#include <cstdint>
#include <string>

#include <deepspeed/config.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the world size, so batch-size arithmetic sees awkward divisors.
  const int64_t world_size = 1 + data[0] % 16;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const auto config = deepspeed::parse_config(text, world_size, "fuzz.json");
    (void)config.to_json().dump();
  } catch (const deepspeed::ConfigError&) {
  }
  return 0;
}
