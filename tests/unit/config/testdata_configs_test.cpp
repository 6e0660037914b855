// The conformance set: 60 ds_config files that real projects run, kept beside the checkout
// (kConfigDir; the test skips, saying so, where they are absent).
// Each must load for a world size that makes its batch keys consistent, or be rejected with
// a ConfigError naming the offending key: Hugging Face templates with top-level "auto", and
// keys DeepSpeed itself rejects.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include <deepspeed/config.h>

namespace deepspeed {
namespace {

namespace fs = std::filesystem;

const fs::path kConfigDir = fs::path(DS_SOURCE_DIR) / ".." / "shared" / "testdata" / "ds_configs";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// MANIFEST.tsv: file → whether it has a top-level "auto" (column "top_level_auto").
std::map<std::string, bool> read_manifest() {
  std::map<std::string, bool> top_level_auto;
  std::istringstream lines(read_file(kConfigDir / "MANIFEST.tsv"));
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    std::vector<std::string> cells;
    std::istringstream row(line);
    for (std::string cell; std::getline(row, cell, '\t');) cells.push_back(cell);
    if (cells.size() >= 4) top_level_auto[cells[0]] = cells[3] == "yes";
  }
  return top_level_auto;
}

// The batch-size errors are the only ones that depend on the world size.
bool is_batch_arithmetic_error(const ConfigError& e) {
  const std::string what = e.what();
  return what.find("has to be greater than 0") != std::string::npos ||
         what.find("Check batch related parameters") != std::string::npos;
}

struct Outcome {
  std::optional<int64_t> world_size;  // the smallest that loads
  std::string error;                  // otherwise
  std::string error_path;
};

Outcome load_for_some_world_size(const fs::path& file) {
  const std::string text = read_file(file);
  Outcome outcome;
  for (int64_t w = 1; w <= 64; ++w) {
    try {
      parse_config(text, w, file.filename().string());
      outcome.world_size = w;
      return outcome;
    } catch (const ConfigError& e) {
      outcome.error = e.what();
      outcome.error_path = e.path();
      if (!is_batch_arithmetic_error(e)) return outcome;
    }
  }
  return outcome;
}

// Files without top-level "auto" that are rejected, and the key each error must name.
// Each is a key DeepSpeed 0.19.6 rejects too.
const std::map<std::string, std::string> kExpectedRejections = {
    // fp16 carries Apex's opt_level and fp16_scale_tolerance: extra keys in a pydantic model.
    {"CarperAI__trlx__examples__summarize_rlhf__configs__ds_config_trlx_gptj_summarize.json",
     "fp16.fp16_scale_tolerance"},
    // bf16 carrying fp16's loss-scale keys.
    {"deepspeedai__DeepSpeed__tests__torch_compile__ds_config.json", "bf16.hysteresis"},
    // max_grad_norm among the optimizer params.
    {"deepspeedai__DeepSpeed__tests__model__Megatron_GPT2__ds_config_func_bs8.json", "optimizer.params.max_grad_norm"},
    {"microsoft__Megatron-DeepSpeed__examples__curriculum_learning__ds_config_cl.json",
     "optimizer.params.max_grad_norm"},
    // Misspelled stage3_param_persistence_threshold (and cpu_offload_params).
    {"microsoft__DeepSpeedExamples__Megatron-LM-v1.1.5-ZeRO3__examples__ds_zero_stage_3_config_release.json",
     "zero_optimization.cpu_offload_params"},
    {"microsoft__DeepSpeedExamples__Megatron-LM-v1.1.5-ZeRO3__examples__ds_zero_stage_infinity_config.json",
     "zero_optimization.stage3_param_persitence_threshold"},
};

TEST(TestdataConfigs, EachLoadsOrIsRejectedNamingTheKey) {
  if (!fs::is_directory(kConfigDir)) GTEST_SKIP() << "no conformance set at " << kConfigDir;
  const auto top_level_auto = read_manifest();
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(kConfigDir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 60u);

  int loaded = 0;
  int rejected = 0;
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    SCOPED_TRACE(name);
    const Outcome o = load_for_some_world_size(file);
    if (o.world_size) {
      ++loaded;
      std::cout << "[loaded   w=" << *o.world_size << "] " << name << "\n";
    } else {
      ++rejected;
      std::cout << "[rejected] " << name << "\n           " << o.error << "\n";
      EXPECT_FALSE(o.error_path.empty()) << o.error;
      EXPECT_NE(o.error.find(o.error_path), std::string::npos) << o.error;
    }

    ASSERT_TRUE(top_level_auto.count(name)) << "not in MANIFEST.tsv";
    if (top_level_auto.at(name)) {
      EXPECT_FALSE(o.world_size) << "a top-level \"auto\" template loaded";
      EXPECT_NE(o.error.find("\"auto\" is a template value"), std::string::npos) << o.error;
    } else if (auto it = kExpectedRejections.find(name); it != kExpectedRejections.end()) {
      EXPECT_FALSE(o.world_size);
      EXPECT_EQ(o.error_path, it->second) << o.error;
    } else {
      EXPECT_TRUE(o.world_size) << o.error;
    }
  }
  std::cout << loaded << " loaded, " << rejected << " rejected\n";
}

}  // namespace
}  // namespace deepspeed
