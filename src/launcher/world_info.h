// world_info: how the runner tells each node's launcher what the whole job looks like.
// Byte-for-byte DeepSpeed's form: url-safe base64 (with '=' padding) of Python's
// json.dumps({host: [slots...]}) with its default separators ", " and ": " and ASCII
// escapes, so `{"localhost": [0, 1]}` -> eyJsb2NhbGhvc3QiOiBbMCwgMV19 and a world_info made
// by either implementation is read by the other.
#pragma once

#include <string>
#include <string_view>

#include "launcher/resources.h"

namespace deepspeed::launcher {

std::string world_info_json(const Resources& resources);
std::string encode_world_info(const Resources& resources);
// Errors (LaunchError) for text that is not base64 of a {host: [int...]} object.
Resources decode_world_info(std::string_view encoded);

std::string base64_urlsafe_encode(std::string_view bytes);
std::string base64_urlsafe_decode(std::string_view text);  // accepts '+/' too

}  // namespace deepspeed::launcher
