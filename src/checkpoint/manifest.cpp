#include "checkpoint/manifest.h"

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

ManifestEntry entry_from(const std::string& name, const nlohmann::json& j) {
  ManifestEntry e;
  e.name = name;
  e.size = j.at("size").get<uint64_t>();
  e.crc32 = j.at("crc32").get<std::string>();
  e.rank = j.at("rank").get<int64_t>();
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
    if (j.at("version").get<int>() > kVersion) {
      throw CheckpointError(where + " has version " + j.at("version").dump() +
                            "; this deepspeed-cpp reads up to version " + std::to_string(kVersion));
    }
    Manifest m;
    m.tag = j.at("tag").get<std::string>();
    m.zero_stage = j.at("zero_stage").get<int>();
    m.dp_world_size = j.at("dp_world_size").get<int64_t>();
    m.mp_world_size = j.at("mp_world_size").get<int64_t>();
    for (const auto& [name, e] : j.at("files").items()) m.files.emplace(name, entry_from(name, e));
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
  for (const auto& [name, e] : j.items()) out.push_back(entry_from(name, e));
  return out;
}

}  // namespace deepspeed::checkpoint
