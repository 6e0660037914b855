// DeepSpeed's checkpoint layout (docs/checkpointing.md, "What is saved"): which file holds
// what, by name. Everything
// that builds a checkpoint path goes through here, so that ZeRO stages add their files in
// one place.
//
//   save_dir/latest                                   the last complete tag (no newline)
//   save_dir/<tag>/mp_rank_00_model_states.pt         stage 0-2: module, counters, ...
//   save_dir/<tag>/zero_pp_rank_<dp>_mp_rank_00_model_states.pt   stage 3, every DP rank
//   save_dir/<tag>/[bf16_]zero_pp_rank_<dp>_mp_rank_00_optim_states.pt  stage 1-3
//   save_dir/<tag>/layer_<L>_expert_<E>_mp_rank_00_model_states.pt  MoE: expert E of MoE layer L
//   save_dir/<tag>/expp_rank_<r>_mp_rank_00_optim_states.pt     MoE, stage 0: expert-parallel rank r's optimizer
//   save_dir/<tag>/ds_manifest.json                   ours: sizes and CRC32s of the above
//   save_dir/<tag>.partial/                           ours: a save in progress
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace deepspeed::checkpoint {

inline constexpr const char* kLatestFile = "latest";
inline constexpr const char* kManifestFile = "ds_manifest.json";
// Suffix of the folder a save is written into before it becomes <tag>.
inline constexpr const char* kStagingSuffix = ".partial";

// DeepSpeed's default tag: "global_step<N>".
std::string default_tag(int64_t global_steps);

// mp_rank_{mp:02d}_model_states.pt
std::string model_states_file_name(int64_t mp_rank);
// zero_pp_rank_{dp}_mp_rank_{mp:02d}_model_states.pt (ZeRO-3: every DP rank has one)
std::string zero_model_states_file_name(int64_t dp_rank, int64_t mp_rank);
// [bf16_]zero_pp_rank_{dp}_mp_rank_{mp:02d}_optim_states.pt (ZeRO 1-3)
std::string zero_optim_states_file_name(int64_t dp_rank, int64_t mp_rank, bool bf16);
// MoE (docs/moe.md): layer_{layer}_expert_{expert}_mp_rank_{mp:02d}_model_states.pt holds one
// expert of one MoE layer (layers counted in module order, experts by their global number).
std::string expert_model_states_file_name(int64_t layer, int64_t expert, int64_t mp_rank);
// expp_rank_{ep_rank}_mp_rank_{mp:02d}_optim_states.pt: below ZeRO, the optimizer of the ranks at
// expert-parallel rank ep_rank (their experts' state differs from the other ranks').
std::string expert_optim_states_file_name(int64_t ep_rank, int64_t mp_rank);

// Which files rank `dp_rank` writes for a ZeRO stage (empty for a rank that writes none):
// stage 0 only DP rank 0 writes the model states; stages 1-2 add every rank's optimizer
// shard; stage 3 makes the model states per rank too.
std::vector<std::string> files_written_by(int zero_stage, int64_t dp_rank, int64_t mp_rank, bool bf16);

// A tag names a folder directly under save_dir: not empty, no '/', not "." or "..", and
// not our staging suffix. Throws CheckpointError saying why.
void check_tag(const std::string& tag);

std::filesystem::path tag_dir(const std::filesystem::path& dir, const std::string& tag);
std::filesystem::path staging_dir(const std::filesystem::path& dir, const std::string& tag);

}  // namespace deepspeed::checkpoint
