// Pieces of the comm errors' messages. c10::Error's what() ends in a C++ backtrace of
// LibTorch's internals ("Exception raised from ... frame #0 ..."), which says nothing to a
// user and buries the cause; error_text() keeps the cause.
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <utility>

#include <c10/util/Exception.h>

namespace deepspeed::comm {

inline std::string error_text(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

// c10d's texts differ in case between versions ("Timed out", "timeout"); matched lowered.
inline std::string ascii_lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return text;
}

// Whether c10d's text reports a timeout (Gloo: "Timed out waiting 3000ms for recv operation",
// "Socket Timeout"; NCCL: "Watchdog caught collective operation timeout").
inline bool is_timeout_text(std::string text) {
  text = ascii_lower(std::move(text));
  return text.find("timed out") != std::string::npos || text.find("timeout") != std::string::npos;
}

// Whether c10d's text reports that a peer's connection went away (Gloo: "Connection closed by
// peer", "Connection reset by peer", "Broken pipe"; NCCL: "NCCL communicator was aborted").
inline bool is_peer_gone_text(std::string text) {
  text = ascii_lower(std::move(text));
  for (const char* gone : {"connection closed", "connection reset", "broken pipe", "aborted", "end of file"}) {
    if (text.find(gone) != std::string::npos) return true;
  }
  return false;
}

// "10 min", "3 s", "1500 ms": a timeout as the user set it.
inline std::string describe_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + " min";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

}  // namespace deepspeed::comm
