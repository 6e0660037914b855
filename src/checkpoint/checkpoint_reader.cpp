#include "checkpoint/checkpoint_reader.h"

#include <deepspeed/errors.h>

#include "checkpoint/layout.h"
#include "checkpoint/pickle_io.h"

namespace deepspeed::checkpoint {

std::optional<std::string> read_latest_tag(CheckpointStorage& storage, const std::filesystem::path& load_dir) {
  const auto path = load_dir / kLatestFile;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  const auto bytes = storage.read_file(path);
  std::string tag(bytes.begin(), bytes.end());
  const auto first = tag.find_first_not_of(" \t\r\n");
  const auto last = tag.find_last_not_of(" \t\r\n");
  tag = first == std::string::npos ? "" : tag.substr(first, last - first + 1);
  if (tag.empty()) throw CheckpointError("checkpoint: " + path.string() + " is empty; it should name a tag");
  return tag;
}

std::string missing_latest_message(const std::filesystem::path& load_dir) {
  return "Unable to find latest file at " + (load_dir / kLatestFile).string() +
         ", if trying to load latest checkpoint please ensure this file exists or pass an explicit checkpoint tag "
         "when loading a checkpoint.";
}

CheckpointReader::CheckpointReader(CheckpointStorage& storage, std::filesystem::path load_dir, std::string tag)
    : storage_(storage), dir_(tag_dir(load_dir, tag)), tag_(std::move(tag)) {
  check_tag(tag_);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir_, ec)) {
    std::string msg = "checkpoint folder " + dir_.string() + " does not exist";
    if (std::filesystem::exists(staging_dir(load_dir, tag_), ec)) {
      msg += " (" + staging_dir(load_dir, tag_).string() + " is a save of this tag that did not finish)";
    }
    throw CheckpointError(msg);
  }
  const auto manifest_path = dir_ / kManifestFile;
  if (!std::filesystem::exists(manifest_path, ec)) {
    describe_unverified_folder(manifest_path);
    return;
  }
  const auto bytes = storage_.read_file(manifest_path);
  // A manifest that names another tag is a folder renamed by hand, which DeepSpeed allows:
  // nothing in a checkpoint depends on its folder's name, and the files are still checked.
  manifest_ = Manifest::parse(bytes, manifest_path);
}

void CheckpointReader::describe_unverified_folder(const std::filesystem::path& manifest_path) {
  const auto missing = [&](const std::string& why) {
    return CheckpointError("checkpoint manifest " + manifest_path.string() + " is missing: " + why);
  };
  verified_ = false;
  manifest_.tag = tag_;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    if (e.is_regular_file()) manifest_.files[e.path().filename().string()] = {e.path().filename().string(), e.file_size(), "", 0};
  }
  const bool stage3 = manifest_.files.count(zero_model_states_file_name(0, 0)) > 0;
  const auto states_name = stage3 ? zero_model_states_file_name(0, 0) : model_states_file_name(0);
  if (!manifest_.files.count(states_name)) {
    throw missing("the checkpoint is incomplete, or was not written by deepspeed-cpp or DeepSpeed");
  }
  const auto states = read_dict(states_name);
  // Only a save that did not finish lacks the manifest of a folder we wrote (ours keep their RNG
  // states), and its files cannot be trusted.
  if (states.contains("rng_states")) throw missing("the checkpoint is incomplete, or was not written by deepspeed-cpp");
  int64_t shards = 0;
  while (manifest_.files.count(zero_optim_states_file_name(shards, 0, false)) ||
         manifest_.files.count(zero_optim_states_file_name(shards, 0, true))) {
    ++shards;
  }
  manifest_.dp_world_size = states.contains("dp_world_size") && states.at("dp_world_size").isInt()
                                ? states.at("dp_world_size").toInt()
                                : std::max<int64_t>(shards, 1);
  manifest_.mp_world_size = states.contains("mp_world_size") && states.at("mp_world_size").isInt()
                                ? states.at("mp_world_size").toInt()
                                : 1;
  if (stage3) {
    manifest_.zero_stage = 3;
  } else if (shards > 0) {
    const auto name = manifest_.files.count(zero_optim_states_file_name(0, 0, false)) ? zero_optim_states_file_name(0, 0, false)
                                                                                     : zero_optim_states_file_name(0, 0, true);
    const auto inner = read_dict(name);
    const auto osd = inner.contains("optimizer_state_dict") ? inner.at("optimizer_state_dict") : c10::IValue();
    if (!osd.isGenericDict() || !osd.toGenericDict().contains("zero_stage") || !osd.toGenericDict().at("zero_stage").isInt()) {
      throw CheckpointError("checkpoint file " + (dir_ / name).string() +
                            " has no optimizer_state_dict.zero_stage (a BF16_Optimizer checkpoint? those are not supported)");
    }
    manifest_.zero_stage = static_cast<int>(osd.toGenericDict().at("zero_stage").toInt());
  }
}

c10::IValue CheckpointReader::read(const std::string& name) const {
  const auto path = dir_ / name;
  if (!manifest_.files.count(name)) {
    throw CheckpointError("checkpoint " + dir_.string() + " has no " + name + " (its manifest lists " +
                          std::to_string(manifest_.files.size()) + " files)");
  }
  const auto bytes = storage_.read_file(path);
  if (verified_) manifest_.verify(name, bytes, path);
  return from_pickle_bytes(bytes, path.string());
}

c10::impl::GenericDict CheckpointReader::read_dict(const std::string& name) const {
  auto v = read(name);
  if (!v.isGenericDict()) throw CheckpointError("checkpoint file " + (dir_ / name).string() + " does not hold a dict");
  return v.toGenericDict();
}

}  // namespace deepspeed::checkpoint
