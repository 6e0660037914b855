// The tensorboard and csv_monitor files, read back: TFRecord framing with both CRCs, the
// Event protos (file version first, then one scalar per event), DeepSpeed's file names and
// CSV layout; the online monitors' clear error; and the engine's Train/Samples/* events.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include <deepspeed/deepspeed.h>

#include "multiprocess.h"
#include "runtime/monitor/csv_monitor.h"
#include "runtime/monitor/event_file_writer.h"
#include "runtime/monitor/event_proto.h"
#include "runtime/monitor/tensorboard_monitor.h"
#include "runtime/monitor/tfrecord.h"
#include "runtime/step/precision.h"
#include "scoped_env.h"
#include "tfevents_reader.h"

namespace deepspeed {
namespace {

using testing::read_file;
using testing::read_tfevents;
using testing::TempDir;
using testing::TfEvent;

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(TfRecord, Crc32cMatchesTheKnownValueAndAnIndependentImplementation) {
  EXPECT_EQ(monitor::crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(monitor::crc32c(""), 0u);
  const std::string data = "brain.Event:2 \x01\x02\xff";
  EXPECT_EQ(monitor::crc32c(data), testing::reference_crc32c(data));
  EXPECT_EQ(monitor::masked_crc32c(data), testing::reference_masked_crc32c(data));
}

TEST(TfRecord, FramesLengthCrcDataCrc) {
  const std::string r = monitor::tfrecord("abc");
  ASSERT_EQ(r.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(r.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(r.substr(12, 3), "abc");
}

TEST(EventFile, ReadsBackWithBothCrcsAndTheScalars) {
  TempDir dir;
  std::string path;
  {
    monitor::EventFileWriter w(dir.file("run"));
    path = w.path();
    w.add_scalar("Train/Samples/lr", 0.001, 16, 1700000000.5);
    w.add_scalar("Train/Samples/train_loss", 2.25, 0, 1700000001.0);  // step 0: left out, read as 0
    w.add_scalar("neg", -3.5, -2, 1700000002.0);
    w.flush();
  }
  // events.out.tfevents.<10-digit time>.<host>.<pid>.<n>, as TensorBoard's writer.
  EXPECT_TRUE(std::regex_match(std::filesystem::path(path).filename().string(),
                               std::regex(R"(events\.out\.tfevents\.\d{10}\..+\.\d+\.0)")))
      << path;
  const auto events = read_tfevents(path);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_EQ(events[0].source_writer, "deepspeed-cpp");
  EXPECT_GT(events[0].wall_time, 1.6e9);
  EXPECT_TRUE(events[0].scalars.empty());
  ASSERT_EQ(events[1].scalars.size(), 1u);
  EXPECT_EQ(events[1].scalars[0].tag, "Train/Samples/lr");
  EXPECT_FLOAT_EQ(events[1].scalars[0].value, 0.001f);
  EXPECT_EQ(events[1].step, 16);
  EXPECT_DOUBLE_EQ(events[1].wall_time, 1700000000.5);
  EXPECT_EQ(events[2].step, 0);
  EXPECT_FLOAT_EQ(events[2].scalars.at(0).value, 2.25f);
  EXPECT_EQ(events[3].step, -2);
  EXPECT_FLOAT_EQ(events[3].scalars.at(0).value, -3.5f);

  // A second writer in the same folder and second gets the next number.
  monitor::EventFileWriter second(dir.file("run"));
  EXPECT_NE(second.path(), path);
}

TEST(EventFile, TheReaderRejectsACorruptRecord) {
  TempDir dir;
  std::string path;
  {
    monitor::EventFileWriter w(dir.path());
    path = w.path();
    w.add_scalar("x", 1.0, 1, 1.0);
    w.flush();
  }
  std::string bytes = read_file(path);
  bytes[bytes.size() - 6] ^= 0x01;  // inside the last record's data
  testing::write_file(path, bytes);
  EXPECT_THROW(read_tfevents(path), std::runtime_error);
}

TEST(TensorBoardMonitor, WritesUnderOutputPathAndJobName) {
  TempDir dir;
  MonitorConfig c;
  c.enabled = true;
  c.output_path = dir.file("tb");
  c.job_name = "my_job";
  monitor::TensorBoardMonitor m(c);
  m.write_events({{"Train/Samples/lr", 0.5, 8}, {"Train/Samples/loss_scale", 65536.0, 8}});
  ASSERT_EQ(std::filesystem::path(m.path()).parent_path().string(), dir.file("tb") + "/my_job");
  const auto events = read_tfevents(m.path());  // written through: readable before the monitor closes
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].scalars.at(0).tag, "Train/Samples/loss_scale");
  EXPECT_FLOAT_EQ(events[2].scalars.at(0).value, 65536.0f);
  EXPECT_EQ(events[2].step, 8);
}

TEST(CsvMonitor, OneFilePerTagAsDeepSpeedLaysThemOut) {
  TempDir dir;
  MonitorConfig c;
  c.enabled = true;
  c.output_path = dir.path();
  c.job_name = "job";
  {
    monitor::CsvMonitor m(c);
    m.write_events({{"Train/Samples/lr", 0.001, 16}, {"Train/Samples/train_loss", 2.5, 0}});
    m.write_events({{"Train/Samples/lr", 1e-05, 32}, {"my tag", 3.0, 1}});
  }
  EXPECT_EQ(read_file(dir.file("job/Train_Samples_lr.csv")), "step,lr\r\n16,0.001\r\n32,1e-05\r\n");
  EXPECT_EQ(read_file(dir.file("job/Train_Samples_train_loss.csv")), "step,train_loss\r\n0,2.5\r\n");
  EXPECT_EQ(read_file(dir.file("job/my_tag.csv")), "step,my tag\r\n1,3.0\r\n");
  // A second run appends, with its own header (as DeepSpeed's csvMonitor).
  monitor::CsvMonitor again(c);
  again.write_events({{"Train/Samples/lr", 0.5, 48}});
  EXPECT_EQ(read_file(dir.file("job/Train_Samples_lr.csv")),
            "step,lr\r\n16,0.001\r\n32,1e-05\r\nstep,lr\r\n48,0.5\r\n");
}

TEST(CsvMonitor, AFolderThatCannotBeMadeIsAnErrorNamingIt) {
  TempDir dir;
  testing::write_file(dir.file("file"), "x");
  MonitorConfig c;
  c.enabled = true;
  c.output_path = dir.file("file");
  try {
    monitor::CsvMonitor m(c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("file") + "/DeepSpeedJobName"), std::string::npos) << e.what();
  }
}

DeepSpeedConfig config_with(const std::string& extra) {
  return parse_config(R"({"train_batch_size": 1)" + extra + "}", 1);
}

TEST(MonitorMaster, OnlineMonitorsAreAClearErrorNamingTheKey) {
  for (const auto& [key, section] : std::vector<std::pair<std::string, std::string>>{
           {"wandb.enabled", R"(, "wandb": {"enabled": true, "project": "p"})"},
           {"comet.enabled", R"(, "comet": {"enabled": true, "samples_log_interval": 10})"},
           {"trackio.enabled", R"(, "trackio": {"enabled": true})"}}) {
    try {
      MonitorMaster m(config_with(section), 1);  // every rank refuses, not only rank 0
      FAIL() << key;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.path(), key);
      EXPECT_NE(std::string(e.what()).find("network service"), std::string::npos) << e.what();
    }
  }
  // Disabled sections are fine.
  EXPECT_FALSE(MonitorMaster(config_with(R"(, "wandb": {"enabled": false, "team": "t"})"), 0).enabled());
}

TEST(MonitorMaster, OnlyRankZeroWrites) {
  TempDir dir;
  const auto config = config_with(R"(, "csv_monitor": {"enabled": true, "output_path": ")" + dir.path() +
                                  R"(", "job_name": "j"}, "tensorboard": {"enabled": true, "output_path": ")" +
                                  dir.path() + R"(", "job_name": "j"})");
  MonitorMaster rank1(config, 1);
  EXPECT_TRUE(rank1.enabled());
  rank1.write_events({{"a", 1.0, 1}});
  EXPECT_FALSE(std::filesystem::exists(dir.file("j")));
  MonitorMaster rank0(config, 0);
  rank0.write_events({{"a", 1.0, 1}});
  const auto files = files_in(dir.file("j"));
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(std::filesystem::path(files[0]).filename(), "a.csv");
  EXPECT_EQ(read_tfevents(files[1]).size(), 2u);
}

// Element-wise only: LibTorch 1.13 has no fp16 matmul on the CPU.
struct WeightedSum : torch::nn::Module {
  WeightedSum() { w = register_parameter("w", torch::ones({4})); }
  torch::Tensor forward(torch::Tensor x) { return (x * w).sum(-1); }
  torch::Tensor w;
};

std::map<std::string, std::vector<std::pair<int64_t, float>>> scalars_by_tag(const std::vector<TfEvent>& events) {
  std::map<std::string, std::vector<std::pair<int64_t, float>>> out;
  for (const auto& e : events) {
    for (const auto& s : e.scalars) out[s.tag].emplace_back(e.step, s.value);
  }
  return out;
}

// DeepSpeed's events and x axis: train_loss at the samples seen before the step, lr and
// loss_scale and the phase timings after it; the loss is the mean over the accumulation window.
TEST(EngineMonitors, WritesDeepSpeedsTrainSamplesEvents) {
  TempDir dir;
  auto config = nlohmann::json::parse(R"({"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 2,
      "steps_per_print": 0, "wall_clock_breakdown": true,
      "fp16": {"enabled": true, "initial_scale_power": 8},
      "optimizer": {"type": "SGD", "params": {"lr": 0.1}}})");
  config["tensorboard"] = {{"enabled", true}, {"output_path", dir.path()}, {"job_name", "tb"}};
  config["csv_monitor"] = {{"enabled", true}, {"output_path", dir.path()}, {"job_name", "csv"}};
  auto net = std::make_shared<WeightedSum>();
  InitializeOptions options;
  options.config_json = config;
  // Element-wise models: LibTorch 1.13 does their fp16 on the CPU (precision.h).
  const testing::ScopedEnv allow_cpu_fp16(kAllowCpuFp16Env, "1");
  auto [engine, optimizer, loader, scheduler] = initialize(net, options);
  std::vector<double> losses;
  for (int micro = 0; micro < 6; ++micro) {
    auto x = torch::full({2, 4}, 0.1 * (micro + 1)).to(engine->device(), torch::kHalf);
    auto loss = engine->forward(x).to(torch::kFloat32).pow(2).mean();
    losses.push_back(loss.item<double>());
    engine->backward(loss);
    engine->step();
  }
  ASSERT_EQ(engine->global_steps(), 3);

  const auto tb_files = files_in(dir.file("tb"));
  ASSERT_EQ(tb_files.size(), 1u);
  const auto tb = scalars_by_tag(read_tfevents(tb_files[0]));
  ASSERT_EQ(tb.at("Train/Samples/train_loss").size(), 3u);
  for (int s = 0; s < 3; ++s) {
    const auto [x, v] = tb.at("Train/Samples/train_loss")[s];
    EXPECT_EQ(x, 4 * s);  // global samples before the step
    EXPECT_NEAR(v, (losses[2 * s] + losses[2 * s + 1]) / 2, 1e-3 * std::abs(v) + 1e-6) << "step " << s;
    EXPECT_EQ(tb.at("Train/Samples/lr")[s].first, 4 * (s + 1));
    EXPECT_FLOAT_EQ(tb.at("Train/Samples/lr")[s].second, 0.1f);
    EXPECT_EQ(tb.at("Train/Samples/loss_scale")[s].first, 4 * (s + 1));
    EXPECT_EQ(tb.at("Train/Samples/loss_scale")[s].second, 256.0f);
  }
  for (const char* tag : {"Train/Samples/elapsed_time_ms_forward", "Train/Samples/elapsed_time_ms_backward",
                          "Train/Samples/elapsed_time_ms_backward_inner",
                          "Train/Samples/elapsed_time_ms_backward_allreduce", "Train/Samples/elapsed_time_ms_step"}) {
    ASSERT_EQ(tb.at(tag).size(), 3u) << tag;
    EXPECT_GE(tb.at(tag)[0].second, 0.0f) << tag;
    EXPECT_EQ(tb.at(tag)[2].first, 12) << tag;
  }
  EXPECT_GE(tb.at("Train/Samples/elapsed_time_ms_backward")[0].second,
            tb.at("Train/Samples/elapsed_time_ms_backward_inner")[0].second);

  // The CSV files hold the same points.
  const std::string lr = read_file(dir.file("csv/Train_Samples_lr.csv"));
  EXPECT_EQ(lr, "step,lr\r\n4,0.1\r\n8,0.1\r\n12,0.1\r\n");
  EXPECT_EQ(read_file(dir.file("csv/Train_Samples_loss_scale.csv")), "step,loss_scale\r\n4,256.0\r\n8,256.0\r\n12,256.0\r\n");
  EXPECT_TRUE(std::filesystem::exists(dir.file("csv/Train_Samples_elapsed_time_ms_step.csv")));
  EXPECT_TRUE(read_file(dir.file("csv/Train_Samples_train_loss.csv")).starts_with("step,train_loss\r\n0,"));
}

TEST(EngineMonitors, OnlineMonitorFailsInitialize) {
  auto net = std::make_shared<WeightedSum>();
  InitializeOptions options;
  options.config_json = nlohmann::json::parse(
      R"({"train_batch_size": 1, "optimizer": {"type": "SGD", "params": {"lr": 0.1}}, "wandb": {"enabled": true}})");
  try {
    initialize(net, options);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "wandb.enabled") << e.what();
  }
}

// TensorBoard itself reads the files, where its Python package is installed.
TEST(TensorBoardMonitor, TensorBoardLoadsTheFile) {
  if (std::system("python3 -c 'import tensorboard' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "the tensorboard Python package is not installed (python3 -c 'import tensorboard' fails)";
  }
  TempDir dir;
  MonitorConfig c;
  c.enabled = true;
  c.output_path = dir.path();
  c.job_name = "job";
  {
    monitor::TensorBoardMonitor m(c);
    m.write_events({{"Train/Samples/lr", 0.25, 16}, {"Train/Samples/lr", 0.5, 32}, {"Train/Samples/train_loss", 1.5, 16}});
  }
  const std::string script = dir.file("read.py");
  testing::write_file(script, R"(import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1])
acc.Reload()
for tag in sorted(acc.Tags()["scalars"]):
    for s in acc.Scalars(tag):
        print(f"{tag} {s.step} {s.value}")
)");
  const std::string out = dir.file("out.txt");
  ASSERT_EQ(std::system(("python3 " + script + " " + dir.file("job") + " > " + out + " 2>&1").c_str()), 0)
      << read_file(out);
  EXPECT_EQ(read_file(out), "Train/Samples/lr 16 0.25\nTrain/Samples/lr 32 0.5\nTrain/Samples/train_loss 16 1.5\n");
}

}  // namespace
}  // namespace deepspeed
