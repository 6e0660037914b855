// Engine benchmarks against their peers, measured in the same run.
//
//   bench_engine --mode overhead [--steps N] [--repeats R]
//       one process: the same model, data and optimizer algorithm trained by a hand-written
//       LibTorch loop and by deepspeed::Engine, alternating, R rounds of N steps each; prints
//       the median step time of each and the ratio.
//   bench_engine --mode train --deepspeed_config CFG [--steps N]
//       one rank of a data-parallel run (start it with build/bin/deepspeed); rank 0 prints
//       "samples_per_sec <x>" over the timed steps. bench/engine/ddp_compare.sh runs it beside
//       PyTorch's DistributedDataParallel on Gloo.
//
// The model is the CIFAR-10 tutorial's network on 3x32x32 inputs, batch 64 per rank: the
// size of model that people who start with the tutorial train.
#include <algorithm>
#include <chrono>
#include <iostream>

#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

namespace {

struct TutorialNet : torch::nn::Module {
  TutorialNet() {
    conv1 = register_module("conv1", torch::nn::Conv2d(3, 6, 5));
    conv2 = register_module("conv2", torch::nn::Conv2d(6, 16, 5));
    fc1 = register_module("fc1", torch::nn::Linear(16 * 5 * 5, 120));
    fc2 = register_module("fc2", torch::nn::Linear(120, 84));
    fc3 = register_module("fc3", torch::nn::Linear(84, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2);
    x = x.flatten(1);
    x = torch::relu(fc1->forward(x));
    x = torch::relu(fc2->forward(x));
    return fc3->forward(x);
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
};

constexpr int64_t kBatch = 64;

class RandomImages : public torch::data::datasets::Dataset<RandomImages> {
 public:
  explicit RandomImages(int64_t n) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    x_ = torch::randn({n, 3, 32, 32}, gen);
    y_ = torch::randint(0, 10, {n}, gen);
  }
  torch::data::Example<> get(size_t i) override {
    return {x_[static_cast<int64_t>(i)], y_[static_cast<int64_t>(i)]};
  }
  torch::optional<size_t> size() const override { return static_cast<size_t>(x_.size(0)); }
  void to(torch::Device device) {
    x_ = x_.to(device);
    y_ = y_.to(device);
  }
  torch::data::Example<> batch(int64_t first, int64_t n) const {
    return {x_.narrow(0, first, n), y_.narrow(0, first, n)};
  }

 private:
  torch::Tensor x_, y_;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Hand-written loop: LibTorch's own AdamW, plain forward/backward/step.
double hand_written_round(TutorialNet& net, torch::optim::AdamW& opt, const RandomImages& data, int64_t steps) {
  auto start = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < steps; ++s) {
    auto b = data.batch((s * kBatch) % (1024 - kBatch), kBatch);
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net.forward(b.data), b.target);
    loss.backward();
    opt.step();
  }
  return seconds_since(start) / static_cast<double>(steps);
}

double engine_round(deepspeed::Engine& engine, const RandomImages& data, int64_t steps) {
  auto start = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < steps; ++s) {
    auto b = data.batch((s * kBatch) % (1024 - kBatch), kBatch);
    auto loss = torch::nn::functional::cross_entropy(engine.forward(b.data), b.target);
    engine.backward(loss);
    engine.step();
  }
  return seconds_since(start) / static_cast<double>(steps);
}

int overhead(int64_t steps, int64_t repeats) {
  RandomImages data(1024);
  torch::manual_seed(0);
  TutorialNet hand;

  torch::manual_seed(0);
  auto net = std::make_shared<TutorialNet>();
  deepspeed::InitializeOptions options;
  options.config = R"({"train_batch_size": 64, "steps_per_print": 0,
                       "optimizer": {"type": "AdamW", "params": {"lr": 0.001, "weight_decay": 0.0}}})";
  auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(net, options);
  // Both on the engine's device (a GPU when there is one), the data already there.
  hand.to(engine->device());
  data.to(engine->device());
  torch::optim::AdamW opt(hand.parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0.0));

  hand_written_round(hand, opt, data, steps);  // warm-up
  engine_round(*engine, data, steps);
  std::vector<double> a, b;
  for (int64_t r = 0; r < repeats; ++r) {
    a.push_back(hand_written_round(hand, opt, data, steps));
    b.push_back(engine_round(*engine, data, steps));
  }
  const double ma = median(a), mb = median(b);
  std::cout << "model: CIFAR-10 tutorial net, batch " << kBatch << ", AdamW, 1 rank, " << at::get_num_threads()
            << " threads, " << engine->device() << ", " << repeats << " rounds x " << steps << " steps (median)\n";
  std::cout << "hand-written LibTorch loop: " << ma * 1e3 << " ms/step\n";
  std::cout << "deepspeed::Engine:          " << mb * 1e3 << " ms/step\n";
  std::cout << "engine / hand-written:      " << mb / ma << " (" << (mb / ma - 1.0) * 100.0 << "% overhead)\n";
  return 0;
}

int train(const CLI::App& app, int64_t steps) {
  torch::manual_seed(0);
  auto net = std::make_shared<TutorialNet>();
  auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(app, net, net->parameters(), RandomImages(4096));
  const int64_t warmup = 5;
  int64_t step = 0;
  std::chrono::steady_clock::time_point start;
  while (step < steps + warmup) {
    for (auto batch : *loader) {
      if (step == warmup) start = std::chrono::steady_clock::now();
      auto loss = torch::nn::functional::cross_entropy(engine->forward(batch.data.to(engine->device())),
                                                       batch.target.to(engine->device()));
      engine->backward(loss);
      engine->step();
      if (++step == steps + warmup) break;
    }
  }
  const double secs = seconds_since(start);
  if (engine->global_rank() == 0) {
    std::cout << "samples_per_sec "
              << static_cast<double>(steps * engine->train_micro_batch_size_per_gpu() * engine->world_size()) / secs
              << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A --mode option rather than subcommands: the launcher puts --local_rank=N before the
  // program's own arguments, as DeepSpeed's does.
  CLI::App app{"deepspeed-cpp engine benchmarks"};
  std::string mode;
  int64_t steps = 100, repeats = 7;
  app.add_option("--mode", mode, "overhead | train")->required()->check(CLI::IsMember({"overhead", "train"}));
  app.add_option("--steps", steps);
  app.add_option("--repeats", repeats, "overhead: rounds of --steps steps");
  deepspeed::add_config_arguments(app);
  CLI11_PARSE(app, argc, argv);
  try {
    if (mode == "overhead") return overhead(steps, repeats);
    return train(app, steps);
  } catch (const std::exception& e) {
    std::cerr << "bench_engine: " << e.what() << "\n";
    return 1;
  }
}
