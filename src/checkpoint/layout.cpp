#include "checkpoint/layout.h"

#include <fmt/format.h>

#include <deepspeed/errors.h>

namespace deepspeed::checkpoint {

std::string default_tag(int64_t global_steps) { return "global_step" + std::to_string(global_steps); }

std::string model_states_file_name(int64_t mp_rank) { return fmt::format("mp_rank_{:02d}_model_states.pt", mp_rank); }

std::string zero_model_states_file_name(int64_t dp_rank, int64_t mp_rank) {
  return fmt::format("zero_pp_rank_{}_mp_rank_{:02d}_model_states.pt", dp_rank, mp_rank);
}

std::string zero_optim_states_file_name(int64_t dp_rank, int64_t mp_rank, bool bf16) {
  return fmt::format("{}zero_pp_rank_{}_mp_rank_{:02d}_optim_states.pt", bf16 ? "bf16_" : "", dp_rank, mp_rank);
}

std::string expert_model_states_file_name(int64_t layer, int64_t expert, int64_t mp_rank) {
  return fmt::format("layer_{}_expert_{}_mp_rank_{:02d}_model_states.pt", layer, expert, mp_rank);
}

std::string expert_optim_states_file_name(int64_t ep_rank, int64_t mp_rank) {
  return fmt::format("expp_rank_{}_mp_rank_{:02d}_optim_states.pt", ep_rank, mp_rank);
}

std::vector<std::string> files_written_by(int zero_stage, int64_t dp_rank, int64_t mp_rank, bool bf16) {
  std::vector<std::string> files;
  if (zero_stage == 3) {
    files.push_back(zero_model_states_file_name(dp_rank, mp_rank));
  } else if (dp_rank == 0) {
    files.push_back(model_states_file_name(mp_rank));
  }
  if (zero_stage >= 1) files.push_back(zero_optim_states_file_name(dp_rank, mp_rank, bf16));
  return files;
}

void check_tag(const std::string& tag) {
  std::string why;
  if (tag.empty()) why = "it is empty";
  else if (tag.find('/') != std::string::npos) why = "it contains '/'";
  else if (tag.find('\0') != std::string::npos) why = "it contains a NUL byte";
  else if (tag == "." || tag == "..") why = "it is not a folder name";
  else if (tag.ends_with(kStagingSuffix)) why = fmt::format("it ends in {}, which marks a save in progress", kStagingSuffix);
  if (!why.empty()) throw CheckpointError(fmt::format("checkpoint tag '{}' cannot be used: {}", tag, why));
}

std::filesystem::path tag_dir(const std::filesystem::path& dir, const std::string& tag) { return dir / tag; }

std::filesystem::path staging_dir(const std::filesystem::path& dir, const std::string& tag) {
  return dir / (tag + kStagingSuffix);
}

}  // namespace deepspeed::checkpoint
