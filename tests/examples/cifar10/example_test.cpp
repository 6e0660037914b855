// build/bin/cifar10_deepspeed end to end on small data sets written here: the tutorial's
// output lines, the same loss curve on 1 and 2 ranks for the same global batch, CIFAR-10 from
// a tarball, -b and --use_ema, and the clear error for missing data.
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "data_files.h"
#include "gpu_per_rank.h"
#include "multiprocess.h"
#include "tfevents_reader.h"

using deepspeed::testing::RankResult;
using deepspeed::testing::read_file;
using deepspeed::testing::read_tfevents;
using deepspeed::testing::run_ranks;
using deepspeed::testing::TempDir;
using deepspeed::testing::write_file;
using namespace cifar10::testing;

namespace {

const std::string kExample = DS_BINARY_DIR "/bin/cifar10_deepspeed";

// No warm-up and a large step, so that the loss curve moves within a few steps and a wrong
// data split between ranks would show in it.
const std::string kConfig = R"({
  "train_batch_size": 16,
  "steps_per_print": 10,
  "optimizer": {"type": "Adam", "params": {"lr": 0.005, "betas": [0.8, 0.999], "eps": 1e-8, "weight_decay": 3e-7}},
  "gradient_clipping": 1.0
})";

struct Run {
  std::vector<RankResult> ranks;
  const std::string& out() const { return ranks.at(0).output; }
};

Run run_example(int world_size, const std::vector<std::string>& args) {
  Run r{run_ranks(world_size, kExample, args, {.timeout = std::chrono::seconds(90), .env = {}})};
  for (const auto& rank : r.ranks) {
    EXPECT_FALSE(rank.timed_out) << "rank " << rank.rank << " hung:\n" << rank.output;
  }
  return r;
}

void expect_ok(const Run& r) {
  for (const auto& rank : r.ranks) EXPECT_EQ(rank.exit_code, 0) << "rank " << rank.rank << ":\n" << rank.output;
}

// The "[epoch, batch] loss: x" values, in order.
std::vector<double> loss_curve(const std::string& output) {
  std::vector<double> out;
  std::regex line(R"(\[\d+, +\d+\] loss: (\d+\.\d{3}))");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), line); it != std::sregex_iterator(); ++it) {
    out.push_back(std::stod((*it)[1].str()));
  }
  return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

// Outside the anonymous namespace: the TEST_F classes derive from it, and in a unity build
// g++ warns (-Wsubobject-linkage) about a base with internal linkage.
class Cifar10Example : public ::testing::Test {
 protected:
  void SetUp() override {
    write_fashion_mnist(dir_.path(), 320, 100);
    config_ = dir_.file("ds_config.json");
    write_file(config_, kConfig);
  }
  std::vector<std::string> args(std::vector<std::string> extra) const {
    std::vector<std::string> a = {"--deepspeed_config", config_, "--data_dir", dir_.path()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  TempDir dir_;
  std::string config_;
};

TEST_F(Cifar10Example, PrintsTheTutorialsLines) {
  auto r = run_example(1, args({"-e", "2", "--log_interval", "5"}));
  expect_ok(r);
  const std::string& out = r.out();
  // 320 samples / 16 = 20 mini-batches per epoch: loss lines at 5, 10, 15, 20 in each epoch.
  EXPECT_EQ(loss_curve(out).size(), 8u) << out;
  EXPECT_TRUE(contains(out, "[1,     5] loss: ")) << out;
  EXPECT_TRUE(contains(out, "[2,    20] loss: ")) << out;
  EXPECT_TRUE(contains(out, "SamplesPerSec=")) << out;  // the engine's steps_per_print line
  EXPECT_TRUE(contains(out, "Finished Training")) << out;
  // Four class names, each printed as '%5s' after a blank (the tutorial's format).
  const std::string names = "(T-shirt/top|Trouser|Pullover|Dress| Coat|Sandal|Shirt|Sneaker|  Bag|Ankle boot)";
  EXPECT_TRUE(std::regex_search(out, std::regex("GroundTruth: ( " + names + "){4}\n"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("Predicted: ( " + names + "){4}\n"))) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(Accuracy of the network on the 100 test images: (\d+) %)"))) << out;
  // The synthetic classes are easy: 40 steps learn them well beyond chance (10 %).
  EXPECT_GT(std::stoi(m[1].str()), 50) << out;
  for (const char* name : {"T-shirt/top", "Trouser", "Pullover", "Dress", " Coat", "Sandal", "Shirt", "Sneaker", "  Bag", "Ankle boot"}) {
    EXPECT_TRUE(std::regex_search(out, std::regex(std::string("Accuracy of ") + name + R"( : +\d+ %)"))) << name << "\n" << out;
  }
  // The loss goes down.
  auto curve = loss_curve(out);
  EXPECT_LT(curve.back(), curve.front()) << out;
}

TEST_F(Cifar10Example, OneAndTwoRanksGiveTheSameLossCurve) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  auto one = run_example(1, args({"-e", "1", "--log_interval", "1"}));
  auto two = run_example(2, args({"-e", "1", "--log_interval", "1"}));
  expect_ok(one);
  expect_ok(two);
  auto a = loss_curve(one.out()), b = loss_curve(two.out());
  ASSERT_EQ(a.size(), 20u) << one.out();
  ASSERT_EQ(b.size(), 20u) << two.out();
  for (std::size_t i = 0; i < a.size(); ++i) {
    // Printed with 3 decimals; the sums differ only by float rounding order.
    EXPECT_NEAR(a[i], b[i], 0.0021) << "mini-batch " << i + 1 << "\n" << one.out() << "\n" << two.out();
  }
  EXPECT_GT(std::abs(a.front() - a.back()), 0.1) << "the curve must move for the comparison to mean something";
  // Rank 1 prints no tutorial lines.
  EXPECT_FALSE(contains(two.ranks.at(1).output, "loss: ")) << two.ranks.at(1).output;
  EXPECT_FALSE(contains(two.ranks.at(1).output, "Accuracy")) << two.ranks.at(1).output;
}

TEST_F(Cifar10Example, Cifar10TarballBatchSizeFlagAndEma) {
  std::vector<std::pair<std::string, Bytes>> files;
  uint32_t seed = 10;
  for (int i = 1; i <= 5; ++i) {
    files.push_back({"cifar-10-batches-bin/data_batch_" + std::to_string(i) + ".bin", cifar10_records(64, seed++)});
  }
  files.push_back({"cifar-10-batches-bin/test_batch.bin", cifar10_records(50, 99)});
  const std::string tarball = dir_.file("cifar-10-binary.tar.gz");
  write_bytes(tarball, gzip_bytes(tar_bytes(files)));
  // 320 samples, -b 32: 10 mini-batches; a line every 5.
  auto r = run_example(1, {"--deepspeed_config", config_, "--dataset", "cifar10", "--data_dir", tarball, "-b", "32",
                           "-e", "1", "--log_interval", "5", "--use_ema", "--ema_decay", "0.9"});
  expect_ok(r);
  EXPECT_EQ(loss_curve(r.out()).size(), 2u) << r.out();
  EXPECT_TRUE(contains(r.out(), "[1,    10] loss: ")) << r.out();
  EXPECT_TRUE(contains(r.out(), "Accuracy of the network on the 50 test images: ")) << r.out();
  EXPECT_TRUE(std::regex_search(r.out(), std::regex(R"(Accuracy of plane : +\d+ %)"))) << r.out();
  EXPECT_TRUE(std::regex_search(r.out(), std::regex(R"(Accuracy of truck : +\d+ %)"))) << r.out();
}

TEST_F(Cifar10Example, SliceOfTheDebianFashionMnist) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  auto r = run_example(1, {"--deepspeed_config", config_, "-e", "1", "--train_samples", "480", "--test_samples",
                           "1000", "--log_interval", "10"});
  expect_ok(r);
  EXPECT_EQ(loss_curve(r.out()).size(), 3u) << r.out();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out(), m, std::regex(R"(Accuracy of the network on the 1000 test images: (\d+) %)"))) << r.out();
  EXPECT_GT(std::stoi(m[1].str()), 30) << "30 steps of Adam learn Fashion-MNIST well beyond chance\n" << r.out();
}

TEST_F(Cifar10Example, MissingDataIsAClearError) {
  auto r = run_example(1, {"--deepspeed_config", config_, "--data_dir", dir_.file("nowhere")});
  ASSERT_EQ(r.ranks.size(), 1u);
  EXPECT_EQ(r.ranks[0].exit_code, 1) << r.out();
  EXPECT_TRUE(contains(r.out(), "cifar10_deepspeed: error: " + dir_.file("nowhere") + "/train-images-idx3-ubyte.gz: not found"))
      << r.out();
  auto c = run_example(1, {"--deepspeed_config", config_, "--dataset", "cifar10"});
  EXPECT_EQ(c.ranks.at(0).exit_code, 1) << c.out();
  EXPECT_TRUE(contains(c.out(), "--dataset cifar10 needs --data_dir")) << c.out();
}

// Every config shipped in examples/cifar10/ (fp32, bf16, ZeRO stages 1 and 2, offload)
// trains on a slice with 2 ranks, saves a checkpoint after its epoch, and a second run
// resumes from it for the next epoch.
TEST_F(Cifar10Example, EveryShippedConfigRunsOnTwoRanksAndResumes) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  std::vector<std::string> configs;
  for (const auto& entry : std::filesystem::directory_iterator(DS_SOURCE_DIR "/examples/cifar10")) {
    if (entry.path().extension() == ".json") configs.push_back(entry.path().string());
  }
  ASSERT_FALSE(configs.empty());
  for (const auto& config : configs) {
    SCOPED_TRACE(config);
    const std::string ckpt = dir_.file("ckpt_" + std::filesystem::path(config).stem().string());
    auto r = run_example(2, {"--deepspeed_config", config, "--data_dir", dir_.path(), "-e", "1", "--log_interval", "5",
                             "--save_dir", ckpt});
    expect_ok(r);
    EXPECT_FALSE(loss_curve(r.out()).empty()) << r.out();
    EXPECT_TRUE(contains(r.out(), "Accuracy of the network on the 100 test images: ")) << r.out();
    EXPECT_TRUE(std::filesystem::exists(ckpt + "/epoch1")) << r.out();

    auto resumed = run_example(2, {"--deepspeed_config", config, "--data_dir", dir_.path(), "-e", "2", "--log_interval",
                                   "5", "--load_dir", ckpt});
    expect_ok(resumed);
    // Under ZeRO-3 every rank writes its own model-states file (rank 0's is the one named).
    const std::string states = contains(config, "zero3") ? "zero_pp_rank_0_mp_rank_00_model_states.pt"
                                                         : "mp_rank_00_model_states.pt";
    EXPECT_TRUE(contains(resumed.out(), "Resumed from " + ckpt + "/epoch1/" + states + " after epoch 1"))
        << resumed.out();
    EXPECT_TRUE(contains(resumed.out(), "[2,")) << "the resumed run trains epoch 2:\n" << resumed.out();
    EXPECT_FALSE(contains(resumed.out(), "[1,")) << "the resumed run trained epoch 1 again:\n" << resumed.out();
    EXPECT_TRUE(contains(resumed.out(), "Accuracy of the network on the 100 test images: ")) << resumed.out();
  }
}

// Every monitor and profiler on, on 2 ranks: TensorBoard and CSV files from rank 0 with
// DeepSpeed's tags, the flops profile of the tutorial's Net at its step (its MACs counted by
// hand), the wall-clock lines, and the comms summary at the end.
TEST_F(Cifar10Example, EveryMonitorAndProfilerOnTwoRanks) {
  DS_SKIP_WITHOUT_A_GPU_PER_RANK(2);
  const std::string cfg = dir_.file("ds_config_monitors.json");
  write_file(cfg, R"({
    "train_batch_size": 16,
    "steps_per_print": 10,
    "optimizer": {"type": "Adam", "params": {"lr": 0.005}},
    "wall_clock_breakdown": true,
    "tensorboard": {"enabled": true, "output_path": ")" + dir_.file("tb") + R"(", "job_name": "cifar"},
    "csv_monitor": {"enabled": true, "output_path": ")" + dir_.file("csv") + R"(", "job_name": "cifar"},
    "flops_profiler": {"enabled": true, "profile_step": 3},
    "comms_logger": {"enabled": true}
  })");
  auto r = run_example(2, {"--deepspeed_config", cfg, "--data_dir", dir_.path(), "-e", "1", "--log_interval", "5"});
  expect_ok(r);
  const std::string& out = r.out();
  EXPECT_TRUE(contains(out, "Accuracy of the network on the 100 test images: ")) << out;

  // 320 samples in batches of 16: 20 steps, one point each, x = global samples.
  std::vector<std::string> tb_files;
  for (const auto& e : std::filesystem::directory_iterator(dir_.file("tb/cifar"))) tb_files.push_back(e.path());
  ASSERT_EQ(tb_files.size(), 1u) << "rank 0 alone writes";
  std::map<std::string, std::vector<int64_t>> steps;
  for (const auto& event : read_tfevents(tb_files[0])) {
    for (const auto& s : event.scalars) steps[s.tag].push_back(event.step);
  }
  ASSERT_EQ(steps["Train/Samples/train_loss"].size(), 20u);
  EXPECT_EQ(steps["Train/Samples/train_loss"].front(), 0);
  ASSERT_EQ(steps["Train/Samples/lr"].size(), 20u);
  EXPECT_EQ(steps["Train/Samples/lr"].back(), 320);
  EXPECT_EQ(steps["Train/Samples/elapsed_time_ms_step"].size(), 20u);
  EXPECT_FALSE(steps.count("Train/Samples/loss_scale")) << "fp32: no loss scale";
  const std::string lr = read_file(dir_.file("csv/cifar/Train_Samples_lr.csv"));
  EXPECT_TRUE(lr.starts_with("step,lr\r\n16,0.005\r\n32,0.005\r\n")) << lr;

  // The profile of step 3 on rank 0: per sample conv1 24x24x6 x 25, conv2 8x8x16 x 6 x 25,
  // fc1 256 x 120, fc2 120 x 84, fc3 84 x 10 MACs; 8 samples per rank.
  EXPECT_TRUE(contains(out, "Profile Summary at step 3:")) << out;
  const int64_t macs = 8 * (24 * 24 * 6 * 25 + 8 * 8 * 16 * 6 * 25 + 256 * 120 + 120 * 84 + 84 * 10);
  EXPECT_EQ(macs, 2253120);
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\nfwd MACs per GPU: +2\.25 MMACs)"))) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\n  \(conv1\): Conv2d\(156 = [0-9.]+% Params, 691\.2 KMACs = )"))) << out;
  EXPECT_TRUE(contains(out, "    params      - {'Net': '44.43 K'}")) << out;
  EXPECT_FALSE(contains(r.ranks.at(1).output, "Profile Summary")) << r.ranks.at(1).output;

  // Wall-clock lines at steps 10 and 20; the comms summary after training.
  std::regex global(R"(\[Rank 0\] time \(ms\) \| fwd: \d+\.\d\d \| bwd: \d+\.\d\d \| bwd_inner: )");
  EXPECT_EQ(std::distance(std::sregex_iterator(out.begin(), out.end(), global), std::sregex_iterator()), 2) << out;
  EXPECT_TRUE(contains(out, "Comm. Op            Message Size        Count")) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\nall_reduce\n)"))) << out;
}
