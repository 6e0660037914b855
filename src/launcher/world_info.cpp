#include "launcher/world_info.h"

#include <fmt/format.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "deepspeed/errors.h"

namespace deepspeed::launcher {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decode_char(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-' || c == '+') return 62;
  if (c == '_' || c == '/') return 63;
  return -1;
}

}  // namespace

std::string base64_urlsafe_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string base64_urlsafe_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = decode_char(c);
    if (v < 0) throw LaunchError(fmt::format("world_info: '{}' is not a base64 character", c));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits >= 6) throw LaunchError("world_info: truncated base64 text");
  return out;
}

std::string world_info_json(const Resources& resources) {
  // json.dumps writes keys with ensure_ascii=True; nlohmann's dump(ensure_ascii) matches it.
  std::string out = "{";
  for (size_t h = 0; h < resources.size(); ++h) {
    if (h) out += ", ";
    out += nlohmann::json(resources[h].host).dump(-1, ' ', true);
    out += ": [";
    for (size_t s = 0; s < resources[h].slots.size(); ++s) {
      if (s) out += ", ";
      out += std::to_string(resources[h].slots[s]);
    }
    out += "]";
  }
  out += "}";
  return out;
}

std::string encode_world_info(const Resources& resources) {
  return base64_urlsafe_encode(world_info_json(resources));
}

Resources decode_world_info(std::string_view encoded) {
  if (encoded.empty() || encoded == "None") throw LaunchError("world_info can not be None");
  const std::string text = base64_urlsafe_decode(encoded);
  // ordered_json keeps the node order, which decides every node's rank range.
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw LaunchError(fmt::format("world_info is not valid JSON ({}): {}", e.what(), text));
  }
  if (!j.is_object() || j.empty())
    throw LaunchError(fmt::format("world_info must be a non-empty {{host: [slots]}} object: {}", text));
  Resources out;
  for (const auto& [host, slots] : j.items()) {
    HostDevices d{host, {}};
    if (!slots.is_array())
      throw LaunchError(fmt::format("world_info: slots of '{}' must be a list: {}", host, text));
    for (const auto& s : slots) {
      if (!s.is_number_integer())
        throw LaunchError(fmt::format("world_info: slot of '{}' must be an integer: {}", host, text));
      // Slot ids index a host's accelerators: a negative or huge one would become a bad
      // CUDA_VISIBLE_DEVICES (or, truncated to int, name another accelerator).
      // (JSON's non-negative integers are unsigned in nlohmann; anything past int64 is huge.)
      const int64_t id = s.is_number_unsigned()
                             ? static_cast<int64_t>(std::min<uint64_t>(s.get<uint64_t>(), kMaxSlotsPerHost))
                             : s.get<int64_t>();
      if (id < 0 || id >= kMaxSlotsPerHost)
        throw LaunchError(fmt::format("world_info: slot {} of '{}' is not a slot id (0 to {}): {}", s.dump(), host,
                                      kMaxSlotsPerHost - 1, text));
      d.slots.push_back(static_cast<int>(id));
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace deepspeed::launcher
