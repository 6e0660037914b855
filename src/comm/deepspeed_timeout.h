// DEEPSPEED_TIMEOUT: how long the rendezvous and every collective wait for the other ranks.
//
// Read as DeepSpeed reads it (`int(os.getenv("DEEPSPEED_TIMEOUT", 10))` minutes): a whole
// number, with optional blanks around it, an optional '+' and single '_' between digits, as
// Python's int() takes them. DeepSpeed fails at import on anything else ("0.5", "2x"); so
// does this, with a CommError naming the variable and its value, instead of cutting "0.5" to
// 0 or "2x" to 2. It also refuses 0 and negative minutes, which DeepSpeed passes on to c10d
// (a rendezvous that cannot succeed, or that never times out).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace deepspeed::comm {

inline constexpr int kDefaultTimeoutMinutes = 10;
// Beyond this, deadlines computed on steady_clock's nanoseconds would overflow (~190 years).
inline constexpr long long kMaxTimeoutMinutes = 10'000'000;

// `value` is the variable's text, nullopt when it is not set. Unset or empty: 10 minutes.
std::chrono::milliseconds parse_deepspeed_timeout(std::optional<std::string_view> value);

// The same, from this process's environment.
std::chrono::milliseconds deepspeed_timeout_from_environment();

}  // namespace deepspeed::comm
