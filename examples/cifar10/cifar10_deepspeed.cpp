// The DeepSpeed CIFAR-10 tutorial (DeepSpeedExamples/training/cifar/cifar10_deepspeed.py) in
// C++: the same network, flags, ds_config.json and output, on CIFAR-10 or, by default, on
// Fashion-MNIST (which Debian packages, so the example runs without a download).
//
//   deepspeed --num_gpus 2 build/bin/cifar10_deepspeed --deepspeed_config examples/cifar10/ds_config.json
//
// Every rank trains on its share of each batch; rank 0 prints the loss lines (the mean over
// all ranks of the last --log_interval mini-batches) and, after training, evaluates on the
// test set alone (the weights are the same on every rank, so one evaluation is enough).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

#include "data/cifar10_binary.h"
#include "data/data_error.h"
#include "data/fashion_mnist.h"
#include "data/image_dataset.h"
#include "ema.h"
#include "evaluate.h"
#include "net.h"
#include "progress_bar.h"

namespace cifar10 {
namespace {

struct Options {
  bool with_cuda = false;
  bool use_ema = false;
  double ema_decay = 0.999;
  std::optional<int64_t> batch_size;  // overrides the config's train_batch_size
  int64_t epochs = 30;
  std::string dataset = "fashion-mnist";
  std::string data_dir;
  std::optional<std::size_t> train_samples;
  std::optional<std::size_t> test_samples;
  int64_t log_interval = 2000;
  uint64_t seed = 0;
  std::string save_dir;  // checkpoint at the end of every epoch (tag "epoch<N>")
  std::string load_dir;  // resume from a checkpoint (the one `latest` names, or --ckpt_id)
  std::optional<std::string> ckpt_id;
};

void add_arguments(CLI::App& app, Options& o) {
  app.add_flag("--with_cuda", o.with_cuda, "use CPU in case there's no GPU support (the engine picks the rank's GPU when there is one)");
  app.add_flag("--use_ema", o.use_ema, "whether use exponential moving average (of the weights, for evaluation)");
  app.add_option("--ema_decay", o.ema_decay, "decay of the moving average (default: 0.999)")->check(CLI::Range(0.0, 1.0));
  app.add_option("-b,--batch_size", o.batch_size,
                 "global mini-batch size; overrides the config's train_batch_size (default: the config's)")
      ->check(CLI::PositiveNumber);
  app.add_option("-e,--epochs", o.epochs, "number of total epochs (default: 30)")->check(CLI::NonNegativeNumber);
  app.add_option("--dataset", o.dataset, "fashion-mnist (default) or cifar10")
      ->check(CLI::IsMember({"fashion-mnist", "cifar10"}));
  app.add_option("--data_dir", o.data_dir,
                 std::string("data directory (default for fashion-mnist: ") + kFashionMnistDefaultDir +
                     "; for cifar10: the cifar-10-batches-bin directory, its parent, or cifar-10-binary.tar.gz)");
  app.add_option("--train_samples", o.train_samples, "train on the first N training samples only")
      ->check(CLI::PositiveNumber);
  app.add_option("--test_samples", o.test_samples, "evaluate on the first N test samples only")->check(CLI::PositiveNumber);
  app.add_option("--log_interval", o.log_interval, "print the loss every N mini-batches (default: 2000, as the tutorial)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", o.seed, "seed of the initial weights and of the data order (default: 0)");
  app.add_option("--save_dir", o.save_dir, "save a checkpoint here at the end of every epoch");
  app.add_option("--load_dir", o.load_dir, "resume from the checkpoint in this folder (its `latest`, or --ckpt_id)");
  app.add_option("--ckpt_id", o.ckpt_id, "the checkpoint tag to resume from (default: the one `latest` names)");
}

// -b: the config file with train_batch_size replaced (and the micro batch left for DeepSpeed's
// batch arithmetic to derive from it and the number of ranks).
nlohmann::json config_with_batch_size(const std::string& path, int64_t batch_size) {
  std::ifstream in(path);
  if (!in) throw deepspeed::ConfigError("", path + ": cannot open the config file");
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const nlohmann::json::parse_error& e) {
    throw deepspeed::ConfigError("", path + ": " + e.what());
  }
  if (!config.is_object()) throw deepspeed::ConfigError("", path + ": the config must be a JSON object");
  config["train_batch_size"] = batch_size;
  config.erase("train_micro_batch_size_per_gpu");
  return config;
}

std::string padded_class(const std::vector<std::string>& classes, int64_t c) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%5s", classes.at(static_cast<std::size_t>(c)).c_str());
  return buf;
}

void print_evaluation(const Evaluation& ev, const std::vector<std::string>& classes) {
  // The tutorial's print('GroundTruth: ', ' '.join('%5s' % classes[labels[j]] ...)).
  std::string truth = "GroundTruth: ", predicted = "Predicted: ";
  for (auto c : ev.first_labels) truth += " " + padded_class(classes, c);
  for (auto c : ev.first_predictions) predicted += " " + padded_class(classes, c);
  std::printf("%s\n%s\n", truth.c_str(), predicted.c_str());
  std::printf("Accuracy of the network on the %lld test images: %lld %%\n", static_cast<long long>(ev.total),
              static_cast<long long>(ev.total ? 100 * ev.correct / ev.total : 0));
  for (std::size_t c = 0; c < classes.size(); ++c) {
    if (ev.class_total[c] == 0) {
      std::printf("Accuracy of %5s : n/a (no test images)\n", classes[c].c_str());
    } else {
      std::printf("Accuracy of %5s : %2lld %%\n", classes[c].c_str(),
                  static_cast<long long>(100 * ev.class_correct[c] / ev.class_total[c]));
    }
  }
  std::fflush(stdout);
}

int run(const CLI::App& app, Options o) {
  if (o.data_dir.empty()) {
    if (o.dataset == "cifar10") {
      throw deepspeed::Error("--dataset cifar10 needs --data_dir (the cifar-10-batches-bin directory, its parent, "
                             "or cifar-10-binary.tar.gz)");
    }
    o.data_dir = kFashionMnistDefaultDir;
  }
  // Read the data before initialize(), so that a bad file fails fast, on every rank alike.
  ImageDataset trainset = load_image_dataset(o.dataset, o.data_dir, Split::kTrain, o.train_samples);
  const std::vector<std::string> classes = trainset.classes();

  torch::manual_seed(o.seed);
  auto net = Net(trainset.channels(), trainset.image_size());

  deepspeed::InitializeOptions init;
  init.training_data = deepspeed::training_data(trainset);
  init.data_seed = o.seed;
  deepspeed::InitializeResult ds;
  if (o.batch_size) {
    const auto* config_option = app.get_option("--deepspeed_config");
    if (config_option->count() == 0) {
      throw deepspeed::ConfigError("", "-b/--batch_size needs --deepspeed_config (it overrides its train_batch_size)");
    }
    init.config_json = config_with_batch_size(config_option->as<std::string>(), *o.batch_size);
    init.local_rank = app.get_option("--local_rank")->as<int64_t>();
    ds = deepspeed::initialize(torch::nn::AnyModule(net), net.ptr(), std::move(init));
  } else {
    ds = deepspeed::initialize(app, torch::nn::AnyModule(net), net.ptr(), std::move(init));
  }
  auto& [engine, optimizer, trainloader, scheduler] = ds;
  const bool rank0 = engine->global_rank() == 0;
  if (o.with_cuda && !engine->device().is_cuda() && rank0) {
    std::fprintf(stderr, "cifar10_deepspeed: warning: --with_cuda, but no CUDA device is visible; training on %s\n",
                 engine->device().str().c_str());
  }

  std::optional<WeightEma> ema;
  if (o.use_ema) ema.emplace(*engine->module(), o.ema_decay);

  // Getting Started's checkpoint loop: the epoch travels in the client state, the engine
  // restores the model, optimizer, schedule, counters and the data loader's position.
  int64_t first_epoch = 0;
  if (!o.load_dir.empty()) {
    auto [load_path, client_sd] = engine->load_checkpoint(o.load_dir, o.ckpt_id);
    if (load_path) {
      first_epoch = client_sd.at("epoch").to<int64_t>();
      if (rank0) std::printf("Resumed from %s after epoch %lld\n", load_path->c_str(), static_cast<long long>(first_epoch));
    }
  }

  const auto device = engine->device();
  const auto dtype = engine->model_dtype();
  auto criterion = torch::nn::CrossEntropyLoss();
  const int64_t samples_before = engine->global_samples();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t epoch = first_epoch; epoch < o.epochs; ++epoch) {
    engine->train();
    // The ETA covers this epoch and, at the same rate, the epochs after it.
    const auto per_epoch = static_cast<int64_t>(trainloader->size());
    ProgressBar bar(rank0, per_epoch, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                    per_epoch * (o.epochs - epoch - 1));
    auto running_loss = torch::zeros({}, torch::TensorOptions().device(device));
    int64_t i = 0;
    for (auto batch : *trainloader) {
      // A bf16/fp16 model takes inputs of its dtype; the loss is computed in fp32.
      auto outputs = engine->forward(batch.data.to(device, dtype));
      auto loss = criterion(outputs.to(torch::kFloat32), batch.target.to(device));
      engine->backward(loss);
      // The engine logs at every steps_per_print-th step (progress, throughput, wall-clock
      // breakdown), at every step with wall_clock_breakdown but no steps_per_print, and at
      // the flops profiler's step: erase the bar first, so that its lines start at the left.
      const auto& config = engine->config();
      const int64_t every = config.steps_per_print;
      if ((every > 0 && (engine->global_steps() + 1) % every == 0) || (every == 0 && config.wall_clock_breakdown) ||
          (config.flops_profiler.enabled && engine->global_steps() == config.flops_profiler.profile_step)) {
        bar.clear();
      }
      engine->step();
      if (ema && engine->was_step_applied()) ema->update(*engine->module());
      running_loss += loss.detach();
      // Every rank takes part in the all-reduce (same batch count on every rank), rank 0 prints.
      if (i % o.log_interval == o.log_interval - 1) {
        engine->process_group()->all_reduce(running_loss);
        const double mean = running_loss.item<double>() / static_cast<double>(o.log_interval * engine->world_size());
        if (rank0) {
          bar.clear();
          std::printf("[%lld, %5lld] loss: %.3f\n", static_cast<long long>(epoch + 1), static_cast<long long>(i + 1), mean);
          std::fflush(stdout);
        }
        running_loss.zero_();
      }
      bar.update(++i);
    }
    if (!o.save_dir.empty()) {
      bar.clear();
      deepspeed::ClientState client_sd;
      client_sd["epoch"] = epoch + 1;
      engine->save_checkpoint(o.save_dir, "epoch" + std::to_string(epoch + 1), client_sd);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (rank0) {
    std::printf("Finished Training\n");
    std::printf("Training throughput: %.1f samples/s (%lld samples in %.1f s, world size %lld)\n",
                seconds > 0 ? static_cast<double>(engine->global_samples() - samples_before) / seconds : 0.0,
                static_cast<long long>(engine->global_samples() - samples_before), seconds,
                static_cast<long long>(engine->world_size()));
    std::fflush(stdout);
  }
  // Every rank runs the test pass, as the tutorial's script does, and rank 0 prints it: under
  // ZeRO-3 the parameters are gathered as the pass reads them, which all ranks do together.
  ImageDataset testset = load_image_dataset(o.dataset, o.data_dir, Split::kTest, o.test_samples);
  if (ema) ema->copy_to(*engine->module());
  engine->eval();
  const Evaluation evaluation = evaluate(net, testset, device, dtype);
  if (rank0) print_evaluation(evaluation, classes);
  return 0;
}

}  // namespace
}  // namespace cifar10

int main(int argc, char** argv) {
  CLI::App app{"CIFAR"};
  cifar10::Options options;
  cifar10::add_arguments(app, options);
  deepspeed::add_config_arguments(app);  // --deepspeed, --deepspeed_config, --local_rank
  CLI11_PARSE(app, argc, argv);
  try {
    return cifar10::run(app, options);
  } catch (const std::exception& e) {
    // DataError, ConfigError, CommError...: the message names the file, key or rank.
    std::fflush(stdout);
    std::fprintf(stderr, "cifar10_deepspeed: error: %s\n", e.what());
    return 1;
  }
}
