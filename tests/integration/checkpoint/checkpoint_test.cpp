// Checkpoints end to end: bit-exact resume in a new process, resharding 2 -> 1 and 2 -> 3
// ranks, a rank killed during a save, each kind of damaged file, tag validation, Python's
// torch.load on our files, and ds_to_fp32.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>

#include "gpu_per_rank.h"
#include "multiprocess.h"

namespace fs = std::filesystem;
using deepspeed::testing::read_file;
using deepspeed::testing::RankResult;
using deepspeed::testing::run_ranks;
using deepspeed::testing::RunOptions;
using deepspeed::testing::TempDir;
using deepspeed::testing::write_file;

namespace {

const std::string kWorker = DS_BINARY_DIR "/bin/ds_test_checkpoint_worker";
const std::string kToFp32 = DS_BINARY_DIR "/bin/ds_to_fp32";
const std::string kPython = "/usr/bin/python3";

std::string config(int micro, int gas, const std::string& extra = "") {
  return R"({"train_micro_batch_size_per_gpu": )" + std::to_string(micro) + R"(, "gradient_accumulation_steps": )" +
         std::to_string(gas) +
         R"(, "steps_per_print": 100, "optimizer": {"type": "AdamW", "params": {"lr": 0.01, "weight_decay": 0.01}},
            "scheduler": {"type": "WarmupDecayLR", "params": {"warmup_num_steps": 5, "total_num_steps": 40}})" +
         extra + "}";
}

struct Run {
  std::vector<RankResult> ranks;
  std::map<int64_t, std::string> losses;  // micro step (1-based) -> rank 0's mean loss, "%a"
  std::string output() const {
    std::string s;
    for (const auto& r : ranks) s += "--- rank " + std::to_string(r.rank) + "\n" + r.output;
    return s;
  }
};

Run run(int world_size, const std::string& cfg, TempDir& dir, std::vector<std::string> args,
        bool expect_success = true, RunOptions options = {}) {
  static int counter = 0;
  const std::string cfg_path = dir.file("ds_config_" + std::to_string(counter++) + ".json");
  write_file(cfg_path, cfg);
  args.insert(args.begin(), {"--deepspeed_config", cfg_path});
  Run r;
  r.ranks = run_ranks(world_size, kWorker, args, options);
  if (expect_success) {
    for (const auto& rank : r.ranks) {
      EXPECT_FALSE(rank.timed_out) << "rank " << rank.rank << " hung:\n" << rank.output;
      EXPECT_EQ(rank.exit_code, 0) << "rank " << rank.rank << ":\n" << rank.output;
    }
  }
  std::istringstream in(r.ranks.at(0).output);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string word, value;
    int64_t step = 0;
    if (words >> word && word == "loss" && words >> step >> value) r.losses[step] = value;
  }
  return r;
}

std::string line_with(const std::string& output, const std::string& prefix) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

std::vector<torch::Tensor> load_tensors(const std::string& path) {
  std::vector<torch::Tensor> t;
  torch::load(t, path);
  return t;
}

bool python_has_torch() {
  static const bool has = std::system((kPython + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  return has;
}

// Runs a Python snippet with Debian's python3-torch; returns its exit status.
int python(const std::string& code, TempDir& dir) {
  const auto script = dir.file("check.py");
  write_file(script, code);
  return std::system((kPython + " " + script).c_str());
}

}  // namespace

// 20 steps straight == 10 steps, save, a new process loads, 10 more steps: every loss, the
// final parameters, the optimizer state and the LR identical to the bit.
void check_bit_exact_resume(const std::string& extra) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  TempDir dir;
  const auto cfg = config(4, 2, extra);
  const std::vector<std::string> common = {"--dropout", "0.1", "--steps", "20"};
  auto args = [&](std::vector<std::string> extra) {
    auto a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto straight = run(2, cfg, dir, args({"--out", dir.file("straight.pt")}));
  run(2, cfg, dir, {"--dropout", "0.1", "--steps", "10", "--save_dir", dir.file("ckpt"), "--save_every", "10"});
  EXPECT_EQ(read_file(dir.file("ckpt/latest")), "global_step10");  // no newline, as DeepSpeed
  auto resumed = run(2, cfg, dir, args({"--save_dir", dir.file("ckpt"), "--load", "--out", dir.file("resumed.pt")}));

  // The tutorial's loop: client_state round-trips, the loader resumes at the next batch.
  EXPECT_NE(resumed.ranks[0].output.find("step 10 global_steps 10 note saved at epoch 1"), std::string::npos)
      << resumed.output();
  // Steps 11..20 are micro steps 21..40 (gradient_accumulation_steps 2).
  ASSERT_EQ(resumed.losses.size(), 20u) << resumed.output();
  EXPECT_EQ(resumed.losses.begin()->first, 21) << "the resumed run did not continue at the next micro batch";
  for (int64_t micro = 21; micro <= 40; ++micro) {
    EXPECT_EQ(straight.losses[micro], resumed.losses[micro]) << "micro step " << micro;
  }
  EXPECT_EQ(line_with(straight.ranks[0].output, "final_lr"), line_with(resumed.ranks[0].output, "final_lr"));
  auto a = load_tensors(dir.file("straight.pt"));
  auto b = load_tensors(dir.file("resumed.pt"));
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 4u) << "no optimizer state was compared";
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
}

TEST(CheckpointResume, BitExactInANewProcess) { check_bit_exact_resume(""); }
// ZeRO: every rank's shard of masters and optimizer state; bf16: the fp32 masters too.
TEST(CheckpointResume, BitExactInANewProcessZeroStage2) {
  check_bit_exact_resume(R"(, "zero_optimization": {"stage": 2, "reduce_bucket_size": 100})");
}
TEST(CheckpointResume, BitExactInANewProcessZeroStage1OffloadBf16) {
  check_bit_exact_resume(
      R"(, "bf16": {"enabled": true}, "zero_optimization": {"stage": 1, "offload_optimizer": {"device": "cpu"}})");
}
TEST(CheckpointResume, BitExactInANewProcessBf16Stage0) { check_bit_exact_resume(R"(, "bf16": {"enabled": true})"); }
// ZeRO-3: partitioned bf16 parameters (their shards are not the masters) and small buckets.
TEST(CheckpointResume, BitExactInANewProcessZeroStage3Bf16) {
  check_bit_exact_resume(
      R"(, "bf16": {"enabled": true}, "zero_optimization": {"stage": 3, "reduce_bucket_size": 40, "stage3_param_persistence_threshold": 5})");
}

// Saved on 2 ranks, resumed on 1 and on 3 with the same global batch: the same losses as
// the uninterrupted 2-rank run (up to float summation order).
void check_resharding(const std::string& extra) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  TempDir dir;
  auto straight = run(2, config(3, 2, extra), dir, {"--steps", "20"});
  run(2, config(3, 2, extra), dir, {"--steps", "10", "--save_dir", dir.file("ckpt"), "--save_every", "10"});
  for (int world : {1, 3}) {
    // With NCCL every rank needs a GPU of its own.
    if (const auto why = deepspeed::testing::too_few_gpus_for(world); !why.empty()) {
      std::cout << "[  SKIPPED ] resuming on " << world << " ranks: " << why << "\n";
      continue;
    }
    auto resumed =
        run(world, config(6 / world, 2, extra), dir, {"--steps", "20", "--save_dir", dir.file("ckpt"), "--load"});
    EXPECT_NE(resumed.ranks[0].output.find("step 10 global_steps 10"), std::string::npos) << resumed.output();
    EXPECT_NE(resumed.ranks[0].output.find("saved on 2 data-parallel ranks onto " + std::to_string(world)),
              std::string::npos)
        << resumed.output();
    ASSERT_EQ(resumed.losses.size(), 20u) << resumed.output();
    for (int64_t micro = 21; micro <= 40; ++micro) {
      ASSERT_TRUE(resumed.losses.count(micro)) << "world " << world << " micro step " << micro;
      const double x = std::strtod(straight.losses[micro].c_str(), nullptr);
      const double y = std::strtod(resumed.losses[micro].c_str(), nullptr);
      EXPECT_NEAR(x, y, 1e-5 * std::abs(x) + 1e-7) << "world " << world << " micro step " << micro;
    }
  }
}

TEST(CheckpointResume, SavedOnTwoRanksLoadsOnOneAndThree) { check_resharding(""); }
// ZeRO partitions are cut again for the new world size (small buckets: parameters straddle).
TEST(CheckpointResume, SavedOnTwoRanksLoadsOnOneAndThreeZeroStage1) {
  check_resharding(R"(, "zero_optimization": {"stage": 1, "reduce_bucket_size": 50})");
}
TEST(CheckpointResume, SavedOnTwoRanksLoadsOnOneAndThreeZeroStage2) {
  check_resharding(R"(, "zero_optimization": {"stage": 2})");
}
TEST(CheckpointResume, SavedOnTwoRanksLoadsOnOneAndThreeZeroStage3) {
  check_resharding(R"(, "zero_optimization": {"stage": 3, "reduce_bucket_size": 50, "stage3_param_persistence_threshold": 0})");
}

// A rank killed in the middle of a save (while writing the model states, the manifest, or
// `latest`) leaves `latest` at the previous complete checkpoint, which loads.
TEST(CheckpointCrash, KilledDuringSaveKeepsPreviousCheckpoint) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  for (const std::string file : {"mp_rank_00_model_states.pt", "ds_manifest.json", "latest"}) {
    SCOPED_TRACE(file);
    TempDir dir;
    RunOptions crash;
    crash.timeout = std::chrono::seconds(90);
    crash.env["DS_TEST_CRASH_IN_SAVE"] = "0:" + file + ":10";
    auto crashed = run(2, config(4, 1), dir, {"--steps", "12", "--save_dir", dir.file("ckpt"), "--save_every", "5"},
                       /*expect_success=*/false, crash);
    EXPECT_NE(crashed.ranks[0].output.find("crashing while writing"), std::string::npos) << crashed.output();
    EXPECT_NE(crashed.ranks[0].exit_code, 0);
    EXPECT_TRUE(crashed.ranks[1].exit_code != 0 || crashed.ranks[1].timed_out) << crashed.output();
    EXPECT_EQ(read_file(dir.file("ckpt/latest")), "global_step5");
    if (file != "latest") {
      EXPECT_FALSE(fs::exists(dir.file("ckpt/global_step10")));
    }

    auto resumed = run(1, config(8, 1), dir, {"--steps", "7", "--save_dir", dir.file("ckpt"), "--load"});
    EXPECT_NE(resumed.ranks[0].output.find("global_step5/mp_rank_00_model_states.pt step 5"), std::string::npos)
        << resumed.output();
    // The next save of the interrupted tag succeeds and clears what the crash left.
    run(1, config(8, 1), dir, {"--steps", "10", "--save_dir", dir.file("ckpt"), "--load", "--save_every", "10"});
    EXPECT_EQ(read_file(dir.file("ckpt/latest")), "global_step10");
    EXPECT_FALSE(fs::exists(dir.file("ckpt/global_step10.partial")));
  }
}

TEST(CheckpointTags, InconsistentTagFailsWhenConfigured) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  TempDir dir;
  auto r = run(2, config(4, 1, R"(, "checkpoint": {"tag_validation": "Fail"})"), dir,
               {"--steps", "2", "--save_dir", dir.file("ckpt"), "--save_every", "1", "--rank_in_tag"},
               /*expect_success=*/false);
  for (const auto& rank : r.ranks) {
    EXPECT_EQ(rank.exit_code, 1) << r.output();
    EXPECT_NE(rank.output.find("[rank=" + std::to_string(rank.rank) + "] The checkpoint tag name 'step1_rank" +
                               std::to_string(rank.rank) + "' is not consistent across all ranks."),
              std::string::npos)
        << rank.output;
  }
  EXPECT_FALSE(fs::exists(dir.file("ckpt/latest")));
}

// ---- in-process: one rank, a small model, the files damaged in each way ----

namespace {

struct Net : torch::nn::Module {
  Net() { fc = register_module("fc", torch::nn::Linear(3, 2)); }
  torch::Tensor forward(torch::Tensor x) { return fc->forward(x); }
  torch::nn::Linear fc{nullptr};
};

std::shared_ptr<deepspeed::Engine> make_engine(std::shared_ptr<Net> net) {
  deepspeed::InitializeOptions o;
  o.config_json = nlohmann::json::parse(config(2, 1));
  return deepspeed::initialize(net, o).engine;
}

// Trains two steps and saves under `dir`; returns the model-states file.
std::string save_small(const std::string& dir, const deepspeed::ClientState& client = {}) {
  auto net = std::make_shared<Net>();
  auto engine = make_engine(net);
  for (int i = 0; i < 2; ++i) {
    engine->backward(engine->forward(torch::ones({2, 3}, engine->device())).pow(2).mean());
    engine->step();
  }
  engine->save_checkpoint(dir, std::nullopt, client);
  return dir + "/global_step2/mp_rank_00_model_states.pt";
}

std::string load_error(const std::string& dir) {
  auto engine = make_engine(std::make_shared<Net>());
  try {
    engine->load_checkpoint(dir);
  } catch (const deepspeed::CheckpointError& e) {
    return e.what();
  }
  return "(no error)";
}

void flip_byte(const std::string& path, size_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

}  // namespace

TEST(CheckpointDamage, EachCaseNamesTheFile) {
  TempDir dir;
  const auto model = save_small(dir.path());
  const auto good = read_file(model);
  const auto manifest = dir.file("global_step2/ds_manifest.json");
  const auto good_manifest = read_file(manifest);
  {
    auto engine = make_engine(std::make_shared<Net>());
    auto [path, client] = engine->load_checkpoint(dir.path());
    EXPECT_EQ(path, model);
    EXPECT_EQ(engine->global_steps(), 2);
  }
  fs::resize_file(model, good.size() / 2);
  auto e = load_error(dir.path());
  EXPECT_NE(e.find(model + " is truncated"), std::string::npos) << e;

  write_file(model, good + "x");
  e = load_error(dir.path());
  EXPECT_NE(e.find(model + " is longer than written: " + std::to_string(good.size() + 1) + " bytes, the manifest says " +
                   std::to_string(good.size())),
            std::string::npos)
      << e;

  write_file(model, good);
  flip_byte(model, good.size() / 2);
  e = load_error(dir.path());
  EXPECT_NE(e.find(model + " is corrupt: CRC32"), std::string::npos) << e;

  fs::remove(model);
  e = load_error(dir.path());
  EXPECT_NE(e.find(model + " is missing"), std::string::npos) << e;

  write_file(model, good);
  write_file(manifest, good_manifest.substr(0, good_manifest.size() / 2));
  e = load_error(dir.path());
  EXPECT_NE(e.find("manifest " + manifest + " is corrupt"), std::string::npos) << e;

  write_file(manifest, R"({"format": "something else"})");
  e = load_error(dir.path());
  EXPECT_NE(e.find(manifest + " is not a deepspeed-cpp checkpoint manifest"), std::string::npos) << e;

  fs::remove(manifest);
  e = load_error(dir.path());
  EXPECT_NE(e.find(manifest + " is missing"), std::string::npos) << e;

  write_file(manifest, good_manifest);
  write_file(dir.file("latest"), "global_step7");
  e = load_error(dir.path());
  EXPECT_NE(e.find(dir.file("global_step7") + " does not exist"), std::string::npos) << e;

  // With everything restored, it loads again.
  write_file(dir.file("latest"), "global_step2");
  EXPECT_EQ(load_error(dir.path()), "(no error)");
}

// DeepSpeed lets a tag folder be renamed by hand (nothing in it names its folder); so does
// this, with the manifest still checking every file.
TEST(CheckpointLoad, FolderRenamedByHandLoads) {
  TempDir dir;
  save_small(dir.path());
  fs::rename(dir.file("global_step2"), dir.file("best"));
  auto engine = make_engine(std::make_shared<Net>());
  auto [path, client] = engine->load_checkpoint(dir.path(), "best");
  EXPECT_EQ(path, dir.file("best/mp_rank_00_model_states.pt"));
  EXPECT_EQ(engine->global_steps(), 2);
  write_file(dir.file("latest"), "best");
  auto other = make_engine(std::make_shared<Net>());
  EXPECT_TRUE(other->load_checkpoint(dir.path()).load_path);
  EXPECT_EQ(other->global_steps(), 2);
  // The renamed folder is checked as any other.
  fs::resize_file(dir.file("best/mp_rank_00_model_states.pt"), 10);
  EXPECT_NE(load_error(dir.path()).find("best/mp_rank_00_model_states.pt is truncated"), std::string::npos);
}

TEST(CheckpointLoad, NoLatestReturnsNothingAndChangesNothing) {
  TempDir dir;
  auto engine = make_engine(std::make_shared<Net>());
  auto result = engine->load_checkpoint(dir.path());
  EXPECT_FALSE(result.load_path.has_value());
  EXPECT_FALSE(static_cast<bool>(result));
  EXPECT_TRUE(result.client_state.empty());
  EXPECT_EQ(engine->global_steps(), 0);
}

TEST(CheckpointLoad, ModuleOnlyAndStrictness) {
  TempDir dir;
  save_small(dir.path(), {{"best", 0.5}});
  auto engine = make_engine(std::make_shared<Net>());
  auto [path, client] = engine->load_checkpoint(dir.path(), std::nullopt, true, true, true, /*load_module_only=*/true);
  ASSERT_TRUE(path);
  EXPECT_EQ(engine->global_steps(), 0) << "load_module_only must leave the counters";
  EXPECT_EQ(client.at("best").as_double(), 0.5);
  EXPECT_EQ(client.size(), 1u) << "only the client's own keys come back";

  struct Other : torch::nn::Module {
    Other() { fc = register_module("fc", torch::nn::Linear(3, 2)); extra = register_parameter("extra", torch::zeros({1})); }
    torch::Tensor forward(torch::Tensor x) { return fc->forward(x) + extra; }
    torch::nn::Linear fc{nullptr};
    torch::Tensor extra;
  };
  deepspeed::InitializeOptions o;
  o.config_json = nlohmann::json::parse(config(2, 1));
  auto other = deepspeed::initialize(std::make_shared<Other>(), o).engine;
  try {
    other->load_checkpoint(dir.path(), std::nullopt, /*load_module_strict=*/true, false, false);
    ADD_FAILURE() << "a missing key should fail a strict load";
  } catch (const deepspeed::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("Missing key(s) in state_dict: \"extra\""), std::string::npos) << e.what();
  }
  EXPECT_TRUE(other->load_checkpoint(dir.path(), std::nullopt, /*load_module_strict=*/false, false, false).load_path);
}

// With bf16 the optimizer steps fp32 masters: loading the weights alone must start them from
// the loaded weights, or the next step writes the old masters back over them.
TEST(CheckpointLoad, ModuleOnlyStartsTheMastersFromTheLoadedWeights) {
  TempDir dir;
  auto bf16_engine = [](double lr) {
    deepspeed::InitializeOptions o;
    o.config_json = nlohmann::json::parse(R"({"train_micro_batch_size_per_gpu": 2, "bf16": {"enabled": true},
        "optimizer": {"type": "Adam", "params": {"lr": )" + std::to_string(lr) + "}}}");
    return deepspeed::initialize(std::make_shared<Net>(), o).engine;
  };
  auto train_step = [](deepspeed::Engine& e) {
    e.backward(e.forward(torch::ones({2, 3}, e.device()).to(torch::kBFloat16)).to(torch::kFloat32).pow(2).mean());
    e.step();
  };
  {
    auto saved = bf16_engine(0.1);
    train_step(*saved);
    train_step(*saved);
    saved->save_checkpoint(dir.path());
  }
  auto engine = bf16_engine(0.0);  // lr 0: a step writes the masters back unchanged
  ASSERT_TRUE(engine->load_checkpoint(dir.path(), std::nullopt, true, true, true, /*load_module_only=*/true).load_path);
  std::vector<torch::Tensor> loaded;
  for (const auto& p : engine->module()->parameters()) loaded.push_back(p.detach().clone());
  train_step(*engine);
  size_t i = 0;
  for (const auto& p : engine->module()->parameters()) {
    EXPECT_TRUE(torch::equal(p.detach(), loaded[i])) << "parameter " << i << " went back to its initial value";
    ++i;
  }
}

TEST(CheckpointSave, ClientKeysTheEngineRestoresAreRefused) {
  TempDir dir;
  try {
    save_small(dir.path(), {{"global_steps", 3}});
    ADD_FAILURE() << "no error";
  } catch (const deepspeed::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("client_state key 'global_steps'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.file("latest")));
  EXPECT_FALSE(fs::exists(dir.file("global_step2"))) << "a failed save must not leave a checkpoint";
}

// A write that fails (here ENOSPC, through the storage seam) fails the save with the error,
// keeps `latest` and the previous checkpoint, and leaves no staging folder behind to hold
// the space of a full disk. (tests/integration/fault fills a real file-size limit.)
TEST(CheckpointSave, FailedWriteCleansUpAndKeepsThePreviousCheckpoint) {
  struct FullDisk : deepspeed::CheckpointStorage {
    void write_file(const std::filesystem::path& path, std::span<const char> bytes) override {
      if (path.filename() == "mp_rank_00_model_states.pt") {
        std::ofstream(path.string() + ".tmp") << "partial";
        throw deepspeed::CheckpointError("checkpoint: cannot write " + path.string() + ".tmp: No space left on device");
      }
      deepspeed::CheckpointStorage::write_file(path, bytes);
    }
  };
  TempDir dir;
  auto engine = make_engine(std::make_shared<Net>());
  auto train_step = [&] {
    engine->backward(engine->forward(torch::ones({2, 3}, engine->device())).pow(2).mean());
    engine->step();
  };
  train_step();
  engine->save_checkpoint(dir.path());
  train_step();
  engine->set_checkpoint_storage(std::make_shared<FullDisk>());
  try {
    engine->save_checkpoint(dir.path());
    ADD_FAILURE() << "no error";
  } catch (const deepspeed::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(dir.file("latest")), "global_step1");
  EXPECT_FALSE(fs::exists(dir.file("global_step2")));
  EXPECT_FALSE(fs::exists(dir.file("global_step2.partial"))) << "a failed save left its staging folder";
  auto fresh = make_engine(std::make_shared<Net>());
  EXPECT_TRUE(fresh->load_checkpoint(dir.path()).load_path);
  EXPECT_EQ(fresh->global_steps(), 1);
}

// A disk that fills up exactly at `latest` (every checkpoint file written, `latest.tmp` not):
// the save fails as a whole (docs/checkpointing.md): the complete new folder is removed to
// free its space, `latest` still names the previous checkpoint, which loads, and the message
// says all of that. A later save, with space again, succeeds.
struct LatestOnFullDisk : deepspeed::CheckpointStorage {
  void write_file(const std::filesystem::path& path, std::span<const char> bytes) override {
    if (path.filename() == "latest") {
      std::ofstream(path.string() + ".tmp") << "";
      throw deepspeed::CheckpointError("checkpoint: cannot write " + path.string() + ".tmp: No space left on device");
    }
    deepspeed::CheckpointStorage::write_file(path, bytes);
  }
};

TEST(CheckpointSave, LatestThatCannotBeWrittenFailsTheSaveAsAWhole) {
  TempDir dir;
  auto engine = make_engine(std::make_shared<Net>());
  auto train_step = [&] {
    engine->backward(engine->forward(torch::ones({2, 3}, engine->device())).pow(2).mean());
    engine->step();
  };
  train_step();
  engine->save_checkpoint(dir.path());
  train_step();
  engine->set_checkpoint_storage(std::make_shared<LatestOnFullDisk>());
  try {
    engine->save_checkpoint(dir.path());
    ADD_FAILURE() << "no error";
  } catch (const deepspeed::CheckpointError& e) {
    const std::string expected = "save_checkpoint: " + dir.file("latest") +
                                 " could not be updated to name 'global_step2' (checkpoint: cannot write " +
                                 dir.file("latest") + ".tmp: No space left on device); the save failed as a whole: " +
                                 dir.file("global_step2") +
                                 ", complete but named by nothing, was removed to free its space, and " +
                                 dir.file("latest") + " still names 'global_step1'";
    EXPECT_EQ(std::string(e.what()), expected);
  }
  EXPECT_EQ(read_file(dir.file("latest")), "global_step1");
  EXPECT_FALSE(fs::exists(dir.file("global_step2")));
  EXPECT_FALSE(fs::exists(dir.file("global_step2.partial")));
  auto fresh = make_engine(std::make_shared<Net>());
  EXPECT_TRUE(fresh->load_checkpoint(dir.path()).load_path);
  EXPECT_EQ(fresh->global_steps(), 1);

  // Saving the tag `latest` already names does not need `latest` written at all.
  EXPECT_TRUE(engine->save_checkpoint(dir.path(), "global_step1"));
  EXPECT_EQ(read_file(dir.file("latest")), "global_step1");
  auto resaved = make_engine(std::make_shared<Net>());
  resaved->load_checkpoint(dir.path());
  EXPECT_EQ(resaved->global_steps(), 2);

  // With space again, the next save goes through.
  engine->set_checkpoint_storage(nullptr);
  engine->save_checkpoint(dir.path());
  EXPECT_EQ(read_file(dir.file("latest")), "global_step2");
}

// Python's torch.load reads the model-states file: DeepSpeed's keys, the module state dict,
// the optimizer in torch.optim's layout, and the client state at top level.
TEST(CheckpointPython, TorchLoadReadsModelStates) {
  if (!python_has_torch()) GTEST_SKIP() << kPython << " has no torch (install python3-torch)";
  TempDir dir;
  deepspeed::ClientState client;
  client["step"] = 2;
  client["name"] = "run-a";
  client["nested"] = deepspeed::StateDict{{"t", torch::arange(3)}, {"l", deepspeed::StateList{1.5, false}}};
  const auto model = save_small(dir.path(), client);
  auto net = std::make_shared<Net>();
  auto engine = make_engine(net);
  engine->load_checkpoint(dir.path());
  std::ostringstream expected_weight;
  expected_weight.precision(9);
  for (int64_t i = 0; i < net->fc->weight.numel(); ++i) {
    expected_weight << net->fc->weight.view(-1)[i].item<float>() << ",";
  }
  const int rc = python(R"(
import torch
sd = torch.load(")" + model + R"(")
keys = ["module", "buffer_names", "optimizer", "param_shapes", "lr_scheduler", "data_sampler", "skipped_steps",
        "global_steps", "global_samples", "dp_world_size", "mp_world_size", "ds_config", "ds_version"]
missing = [k for k in keys if k not in sd]
assert not missing, missing
assert sorted(sd["module"].keys()) == ["fc.bias", "fc.weight"], sd["module"].keys()
w = [float(x) for x in ")" + expected_weight.str() + R"(".split(",") if x]
assert torch.allclose(sd["module"]["fc.weight"].flatten(), torch.tensor(w)), (sd["module"]["fc.weight"], w)
assert sd["global_steps"] == 2 and sd["dp_world_size"] == 1 and sd["mp_world_size"] == 1
opt = sd["optimizer"]
assert set(opt["state"].keys()) == {0, 1}, opt["state"].keys()
assert set(opt["state"][0].keys()) >= {"exp_avg", "exp_avg_sq", "step"}, opt["state"][0].keys()
assert opt["param_groups"][0]["params"] == [0, 1] and opt["param_groups"][0]["betas"] == (0.9, 0.999)
assert sd["lr_scheduler"]["last_batch_iteration"] == 1, sd["lr_scheduler"]
assert sd["ds_config"]["train_micro_batch_size_per_gpu"] == 2
assert sd["step"] == 2 and sd["name"] == "run-a"
assert torch.equal(sd["nested"]["t"], torch.arange(3)) and sd["nested"]["l"] == [1.5, False]
print("python ok")
)",
                        dir);
  EXPECT_EQ(rc, 0);
}

TEST(DsToFp32, WritesTorchAndSafetensors) {
  TempDir dir;
  save_small(dir.path());
  const auto pt = dir.file("fp32.pt");
  const auto st = dir.file("model.safetensors");
  ASSERT_EQ(std::system((kToFp32 + " " + dir.path() + " " + pt + " >/dev/null").c_str()), 0);
  ASSERT_EQ(std::system((kToFp32 + " " + dir.path() + " " + st + " -t global_step2 >/dev/null").c_str()), 0);
  // Read back in C++ (torch's pickle) ...
  std::ifstream in(pt, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  auto dict = torch::pickle_load(bytes).toGenericDict();
  EXPECT_EQ(dict.size(), 2u);
  EXPECT_EQ(dict.at("fc.weight").toTensor().scalar_type(), torch::kFloat32);
  // ... and by Python, both files.
  if (!python_has_torch()) GTEST_SKIP() << kPython << " has no torch; Python checks skipped";
  const int rc = python(R"(
import json, struct, torch
sd = torch.load(")" + pt + R"(")
raw = open(")" + st + R"(", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
for name, t in sd.items():
    h = header[name]
    assert h["dtype"] == "F32" and h["shape"] == list(t.shape), h
    b, e = h["data_offsets"]
    u = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(t.shape)
    assert torch.equal(u, t), name
assert header["__metadata__"] == {"format": "pt"}
print("python ok")
)",
                        dir);
  EXPECT_EQ(rc, 0);
}

// ZeRO-2/3 in bf16 on 2 ranks: ds_to_fp32 reassembles the fp32 masters from both shards; they
// round to the module's bf16 weights and carry more precision than bf16.
void check_fp32_reassembly(int stage) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  TempDir dir;
  const auto cfg = config(4, 1, R"(, "bf16": {"enabled": true}, "zero_optimization": {"stage": )" +
                                    std::to_string(stage) + R"(, "reduce_bucket_size": 50, "stage3_param_persistence_threshold": 0})");
  run(2, cfg, dir, {"--steps", "4", "--save_dir", dir.file("ckpt"), "--save_every", "4", "--out", dir.file("out.pt")});
  const auto pt = dir.file("fp32.pt");
  ASSERT_EQ(std::system((kToFp32 + " " + dir.file("ckpt") + " " + pt + " >/dev/null").c_str()), 0);
  std::ifstream in(pt, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  auto dict = torch::pickle_load(bytes).toGenericDict();
  const auto saved = load_tensors(dir.file("out.pt"));  // the module's bf16 parameters first
  const std::vector<std::string> names = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  bool finer_than_bf16 = false;
  for (size_t i = 0; i < names.size(); ++i) {
    const auto t = dict.at(names[i]).toTensor();
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << names[i];
    EXPECT_TRUE(torch::equal(t.to(torch::kBFloat16), saved[i])) << names[i] << " does not round to the module's weights";
    finer_than_bf16 = finer_than_bf16 || !torch::equal(t, t.to(torch::kBFloat16).to(torch::kFloat32));
  }
  EXPECT_TRUE(finer_than_bf16) << "the output holds bf16 values, not the fp32 masters";
}

TEST(DsToFp32, ReassemblesZeroMastersFromEveryShard) { check_fp32_reassembly(2); }

// save_16bit_model under ZeRO-3 on 2 ranks: with stage3_gather_16bit_weights_on_model_save
// rank 0 writes the whole bf16 state dict (the gathered parameters); without it, nothing and
// DeepSpeed's warning.
TEST(Save16BitModel, ZeroStage3GathersOnlyWhenConfigured) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  TempDir dir;
  const std::string zero = R"(, "bf16": {"enabled": true}, "zero_optimization": {"stage": 3, "reduce_bucket_size": 50,
      "stage3_param_persistence_threshold": 0, "stage3_gather_16bit_weights_on_model_save": )";
  auto on = run(2, config(4, 1, zero + "true}"), dir,
                {"--steps", "3", "--save_16bit", dir.file("on"), "--out", dir.file("out.pt")});
  EXPECT_NE(on.ranks[0].output.find("save_16bit_model true"), std::string::npos) << on.output();
  std::ifstream in(dir.file("on/pytorch_model.bin"), std::ios::binary);
  ASSERT_TRUE(in) << "no on/pytorch_model.bin";
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  auto dict = torch::pickle_load(bytes).toGenericDict();
  const auto saved = load_tensors(dir.file("out.pt"));  // the module's parameters first
  const std::vector<std::string> names = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  for (size_t i = 0; i < names.size(); ++i) {
    const auto t = dict.at(names[i]).toTensor();
    EXPECT_EQ(t.scalar_type(), torch::kBFloat16) << names[i];
    EXPECT_TRUE(torch::equal(t, saved[i])) << names[i];
  }
  auto off = run(2, config(4, 1, zero + "false}"), dir, {"--steps", "1", "--save_16bit", dir.file("off")});
  EXPECT_NE(off.ranks[0].output.find("save_16bit_model false"), std::string::npos) << off.output();
  EXPECT_NE(off.ranks[0].output.find("because stage3_gather_16bit_weights_on_model_save is False"), std::string::npos)
      << off.output();
  EXPECT_FALSE(std::filesystem::exists(dir.file("off/pytorch_model.bin")));
}
// ZeRO-3's model states hold empty tensors for partitioned parameters; shapes come from
// param_shapes.
TEST(DsToFp32, ReassemblesZeroStage3MastersFromEveryShard) { check_fp32_reassembly(3); }

TEST(DsToFp32, RefusesADamagedCheckpointNamingTheFile) {
  TempDir dir;
  save_small(dir.path());
  fs::resize_file(dir.file("global_step2/mp_rank_00_model_states.pt"), 100);
  const auto log = dir.file("err.txt");
  EXPECT_NE(std::system((kToFp32 + " " + dir.path() + " " + dir.file("out.pt") + " 2>" + log).c_str()), 0);
  EXPECT_NE(read_file(log).find("mp_rank_00_model_states.pt is truncated"), std::string::npos) << read_file(log);
  EXPECT_FALSE(fs::exists(dir.file("out.pt")));
}

namespace {

const std::string kThirdParty = DS_SOURCE_DIR "/tests/third_party/deepspeed";

// Python that imports DeepSpeed's zero_to_fp32.py as `z` (tests/third_party/deepspeed/README.md).
std::string zero_to_fp32_prelude() {
  return "import sys, os, torch\nsys.path.append('" + kThirdParty + "/shim')\nsys.path.insert(0, '" + kThirdParty +
         "')\nimport zero_to_fp32 as z\n";
}

}  // namespace

// DeepSpeed's own zero_to_fp32.py on our ZeRO checkpoints of 2 ranks (buckets smaller than the
// parameters, so that our partitions differ from DeepSpeed's): its size checks pass and it
// gives exactly ds_to_fp32's weights, by both its converter and
// get_fp32_state_dict_from_zero_checkpoint. The files carry DeepSpeed's fields as it pickles
// them (torch.Size, its loss scaler and fragment_address classes, the bf16_ prefix).
void check_zero_to_fp32(int stage, bool bf16) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  if (!python_has_torch()) GTEST_SKIP() << kPython << " has no torch (install python3-torch)";
  TempDir dir;
  const auto cfg = config(4, 1, std::string(bf16 ? R"(, "bf16": {"enabled": true})" : "") +
                                    R"(, "zero_optimization": {"stage": )" + std::to_string(stage) +
                                    R"(, "reduce_bucket_size": 50, "stage3_param_persistence_threshold": 0})");
  const auto ckpt = dir.file("ckpt");
  run(2, cfg, dir, {"--steps", "4", "--save_dir", ckpt, "--save_every", "4"});
  const auto ours = dir.file("ours.pt");
  ASSERT_EQ(std::system((kToFp32 + " " + ckpt + " " + ours + " >/dev/null").c_str()), 0);
  const std::string prefix = bf16 ? "bf16_" : "";
  const int rc = python(zero_to_fp32_prelude() + R"(
ckpt, out, ours = ")" + ckpt + R"(", ")" + dir.file("out") + R"(", ")" + ours + R"("
tag = os.path.join(ckpt, "global_step4")
names = sorted(f for f in os.listdir(tag) if f.endswith(".pt"))
optim = [")" + prefix + R"(zero_pp_rank_0_mp_rank_00_optim_states.pt", ")" + prefix + R"(zero_pp_rank_1_mp_rank_00_optim_states.pt"]
assert all(o in names for o in optim), names
z.convert_zero_checkpoint_to_fp32_state_dict(ckpt, out, max_shard_size=None)
theirs = torch.load(os.path.join(out, "pytorch_model.bin"))
mine = torch.load(ours)
assert sorted(theirs) == sorted(mine), (sorted(theirs), sorted(mine))
for k in mine:
    assert theirs[k].dtype == torch.float32 and theirs[k].shape == mine[k].shape, k
    assert torch.equal(theirs[k], mine[k]), (k, (theirs[k] - mine[k]).abs().max())
sd = z.get_fp32_state_dict_from_zero_checkpoint(ckpt)
assert all(torch.equal(sd[k], mine[k]) for k in mine)

states = torch.load(os.path.join(tag, "zero_pp_rank_0_mp_rank_00_model_states.pt" if )" + std::to_string(stage) + R"( == 3 else "mp_rank_00_model_states.pt"))
assert all(type(s) is torch.Size for g in states["param_shapes"] for s in g.values())
assert list(states["param_shapes"][0]) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"], states["param_shapes"]
assert states["data_sampler"] is None and states["shared_params"] == {}
assert (states["frozen_param_shapes"] == {}) if )" + std::to_string(stage) + R"( >= 2 else states["frozen_param_shapes"] is None
o = torch.load(os.path.join(tag, optim[1]))["optimizer_state_dict"]
assert o["zero_stage"] == )" + std::to_string(stage) + R"( and o["partition_count"] == 2
from deepspeed.runtime.fp16.loss_scaler import LossScaler
assert isinstance(o["loss_scaler"], LossScaler) and o["loss_scaler"].cur_scale == 1.0
if )" + std::to_string(stage) + R"( < 3:
    m = o["param_slice_mappings"][0]
    assert type(m["fc2.bias"]).__name__ == "fragment_address" and m["fc2.bias"].numel == 4, m
    assert o["group_paddings"] == [(212 + 3) // 4 * 4 - 212], o["group_paddings"]
    assert o["base_optimizer_state"]["state"][0]["exp_avg"].numel() == 106
else:
    assert o["fp32_flat_groups"][0].numel() == 64 + 8 + 32 + 2
print("python ok")
)",
                        dir);
  EXPECT_EQ(rc, 0);
}

TEST(DeepSpeedZeroToFp32, ReadsOurZeroStage1) { check_zero_to_fp32(1, false); }
TEST(DeepSpeedZeroToFp32, ReadsOurZeroStage2) { check_zero_to_fp32(2, false); }
TEST(DeepSpeedZeroToFp32, ReadsOurZeroStage3) { check_zero_to_fp32(3, false); }
TEST(DeepSpeedZeroToFp32, ReadsOurZeroStage1Bf16) { check_zero_to_fp32(1, true); }
TEST(DeepSpeedZeroToFp32, ReadsOurZeroStage2Bf16) { check_zero_to_fp32(2, true); }
TEST(DeepSpeedZeroToFp32, ReadsOurZeroStage3Bf16) { check_zero_to_fp32(3, true); }

// A checkpoint in Python DeepSpeed's exact layout (written by deepspeed_layout.py from a
// stage-0 checkpoint of ours, field by field as DeepSpeed's writer, no manifest) loads into
// our engine at its stage on 2 ranks (as saved) and on 1 and 3, and training goes on with
// the losses of the uninterrupted run. DeepSpeed keeps no data position: as its users do,
// the loop restarts the loader at the next epoch (the save is at an epoch's end).
void check_deepspeed_layout(int stage) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  if (!python_has_torch()) GTEST_SKIP() << kPython << " has no torch (install python3-torch)";
  TempDir dir;
  const std::string zero = R"(, "zero_optimization": {"stage": )" + std::to_string(stage) +
                           R"(, "reduce_bucket_size": 50, "stage3_param_persistence_threshold": 0})";
  auto straight = run(2, config(3, 2, zero), dir, {"--steps", "16"});
  run(2, config(3, 2), dir, {"--steps", "8", "--save_dir", dir.file("ours"), "--save_every", "8"});
  const auto script = std::string(DS_SOURCE_DIR) + "/tests/integration/checkpoint/deepspeed_layout.py";
  ASSERT_EQ(std::system((kPython + " " + script + " " + dir.file("ours") + " global_step8 " + dir.file("ds") + " " +
                         std::to_string(stage) + " 2")
                            .c_str()),
            0);
  ASSERT_FALSE(fs::exists(dir.file("ds/global_step8/ds_manifest.json")));
  for (int world : {2, 1, 3}) {
    if (const auto why = deepspeed::testing::too_few_gpus_for(world); !why.empty()) {
      std::cout << "[  SKIPPED ] resuming on " << world << " ranks: " << why << "\n";
      continue;
    }
    auto resumed = run(world, config(6 / world, 2, zero), dir,
                       {"--steps", "16", "--save_dir", dir.file("ds"), "--load", "--start_epoch", "1"});
    EXPECT_NE(resumed.ranks[0].output.find("step 8 global_steps 8 note saved at epoch"), std::string::npos)
        << resumed.output();
    EXPECT_NE(resumed.ranks[0].output.find("its files are not verified"), std::string::npos) << resumed.output();
    ASSERT_EQ(resumed.losses.size(), 16u) << resumed.output();
    for (int64_t micro = 17; micro <= 32; ++micro) {
      ASSERT_TRUE(resumed.losses.count(micro)) << "world " << world << " micro step " << micro;
      const double x = std::strtod(straight.losses[micro].c_str(), nullptr);
      const double y = std::strtod(resumed.losses[micro].c_str(), nullptr);
      EXPECT_NEAR(x, y, 1e-5 * std::abs(x) + 1e-7) << "world " << world << " micro step " << micro;
    }
  }
}

TEST(DeepSpeedLayout, LoadsStage0) { check_deepspeed_layout(0); }
TEST(DeepSpeedLayout, LoadsStage1) { check_deepspeed_layout(1); }
TEST(DeepSpeedLayout, LoadsStage2) { check_deepspeed_layout(2); }
TEST(DeepSpeedLayout, LoadsStage3) { check_deepspeed_layout(3); }
