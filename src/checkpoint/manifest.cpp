#include "checkpoint/manifest.h"

#include <limits>

#include <nlohmann/json.hpp>

#include <deepspeed/errors.h>

#include "checkpoint/checksum.h"
#include "checkpoint/layout.h"

namespace deepspeed::checkpoint {
namespace {

constexpr const char* kFormat = "deepspeed-cpp checkpoint";
constexpr int kVersion = 1;

// Built key by key: GCC 12 warns falsely (-Wmaybe-uninitialized) on nlohmann's
// initializer-list constructor.
nlohmann::json entry_json(const ManifestEntry& e) {
  nlohmann::json j = nlohmann::json::object();
  j["size"] = e.size;
  j["crc32"] = e.crc32;
  j["rank"] = e.rank;
  return j;
}

// nlohmann's get<integer>() casts whatever number it finds, and a float outside the
// integer's range (a damaged "size": 18446744073709551616) is undefined behaviour (found by
// tests/fuzz/fuzz_manifest.cpp): integers are read checked, and anything else is damage.
[[noreturn]] void corrupt_value(const std::string& where, const std::string& key, const nlohmann::json& v,
                                 const std::string& expected) {
  throw CheckpointError(where + " is corrupt (\"" + key + "\" is " + v.dump() + ", expected " + expected + ")");
}

uint64_t unsigned_at(const nlohmann::json& j, const std::string& key, const std::string& where) {
  const auto& v = j.at(key);
  // nlohmann stores every non-negative integer as unsigned.
  if (!v.is_number_unsigned()) corrupt_value(where, key, v, "an integer >= 0");
  return v.get<uint64_t>();
}

int64_t integer_at(const nlohmann::json& j, const std::string& key, int64_t lo, int64_t hi, const std::string& where) {
  const auto& v = j.at(key);
  const std::string expected = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi) || static_cast<int64_t>(u) < lo) corrupt_value(where, key, v, expected);
    return static_cast<int64_t>(u);
  }
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) corrupt_value(where, key, v, expected);
  return v.get<int64_t>();
}

constexpr int64_t kMaxRanks = int64_t{1} << 31;

ManifestEntry entry_from(const std::string& name, const nlohmann::json& j, const std::string& where) {
  ManifestEntry e;
  e.name = name;
  e.size = unsigned_at(j, "size", where);
  e.crc32 = j.at("crc32").get<std::string>();
  e.rank = integer_at(j, "rank", 0, kMaxRanks, where);
  return e;
}

}  // namespace

ManifestEntry describe_file(const std::string& name, std::span<const char> bytes, int64_t rank) {
  return {name, bytes.size(), crc32_hex(bytes), rank};
}

std::string Manifest::to_text() const {
  nlohmann::json files_json = nlohmann::json::object();
  for (const auto& [name, e] : files) files_json[name] = entry_json(e);
  nlohmann::json j = nlohmann::json::object();
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["tag"] = tag;
  j["zero_stage"] = zero_stage;
  j["dp_world_size"] = dp_world_size;
  j["mp_world_size"] = mp_world_size;
  j["files"] = files_json;
  return j.dump(2) + "\n";
}

Manifest Manifest::parse(std::span<const char> text, const std::filesystem::path& path) {
  const std::string where = "checkpoint manifest " + path.string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(where + " is corrupt (not valid JSON: " + e.what() + ")");
  }
  try {
    if (!j.is_object() || j.value("format", "") != kFormat) {
      throw CheckpointError(where + " is not a deepspeed-cpp checkpoint manifest (no \"format\": \"" +
                            std::string(kFormat) + "\")");
    }
    if (integer_at(j, "version", 1, std::numeric_limits<int>::max(), where) > kVersion) {
      throw CheckpointError(where + " has version " + j.at("version").dump() +
                            "; this deepspeed-cpp reads up to version " + std::to_string(kVersion));
    }
    Manifest m;
    m.tag = j.at("tag").get<std::string>();
    m.zero_stage = static_cast<int>(integer_at(j, "zero_stage", 0, 3, where));
    m.dp_world_size = integer_at(j, "dp_world_size", 1, kMaxRanks, where);
    m.mp_world_size = integer_at(j, "mp_world_size", 1, kMaxRanks, where);
    if (!j.at("files").is_object()) corrupt_value(where, "files", j.at("files"), "an object of files");
    for (const auto& [name, e] : j.at("files").items()) m.files.emplace(name, entry_from(name, e, where));
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(where + " is corrupt (" + e.what() + ")");
  }
}

void Manifest::verify(const std::string& name, std::span<const char> bytes, const std::filesystem::path& path) const {
  auto it = files.find(name);
  if (it == files.end()) {
    throw CheckpointError("checkpoint file " + path.string() + " is not listed in the checkpoint's " +
                          std::string(kManifestFile));
  }
  const auto& e = it->second;
  if (bytes.size() != e.size) {
    throw CheckpointError("checkpoint file " + path.string() + " is " +
                          (bytes.size() < e.size ? "truncated" : "longer than written") + ": " +
                          std::to_string(bytes.size()) + " bytes, the manifest says " + std::to_string(e.size));
  }
  if (const auto crc = crc32_hex(bytes); crc != e.crc32) {
    throw CheckpointError("checkpoint file " + path.string() + " is corrupt: CRC32 " + crc +
                          ", the manifest says " + e.crc32);
  }
}

std::string encode_entries(const std::vector<ManifestEntry>& entries) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& e : entries) j[e.name] = entry_json(e);
  return j.dump();
}

std::vector<ManifestEntry> decode_entries(const std::string& text) {
  std::vector<ManifestEntry> out;
  const auto j = nlohmann::json::parse(text);  // named: items() of a temporary would dangle
  for (const auto& [name, e] : j.items()) out.push_back(entry_from(name, e, "checkpoint: the file list a rank sent"));
  return out;
}

}  // namespace deepspeed::checkpoint
