// One rank of a small training run, started by the tests' multi-process harness (or by the
// deepspeed launcher). Trains a two-layer MLP on a synthetic regression set for --steps
// optimizer steps with the given ds_config, prints "loss <micro_step> <value>" per micro
// batch (and with --report the engine's memory report after every backward), and saves the
// final parameters (as fp32) to <--out>.rank<R>.pt.
//
// Faults, for tests/integration/fault: --fault hang|die --fault_rank R --fault_at_step S makes
// rank R stop answering (sleep) or die (SIGKILL) just before global step S; --bad_loss_at M
// makes the loss of micro step M NaN (or --bad_loss_value inf) on --bad_loss_rank (-1: every
// rank); --comm_timeout_ms sets the collective timeout (InitOptions::timeout).
// --hold_until FILE keeps every rank alive after training until FILE exists (at most 120 s):
// a job that still holds its master port while a test starts another one on it.
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <limits>
#include <thread>

#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

namespace {

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 4));
  }
  torch::Tensor forward(torch::Tensor x) { return fc2->forward(torch::tanh(fc1->forward(x))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

// The same samples on every rank (a fixed generator), as a real data set would be.
class SyntheticData : public torch::data::datasets::Dataset<SyntheticData> {
 public:
  explicit SyntheticData(int64_t n) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
    x_ = torch::randn({n, 8}, gen);
    auto w = torch::randn({8, 4}, gen);
    y_ = torch::matmul(x_, w) + 0.1 * torch::randn({n, 4}, gen);
  }
  torch::data::Example<> get(size_t i) override { return {x_[static_cast<int64_t>(i)], y_[static_cast<int64_t>(i)]}; }
  torch::optional<size_t> size() const override { return static_cast<size_t>(x_.size(0)); }

 private:
  torch::Tensor x_, y_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deepspeed-cpp test worker"};
  int64_t steps = 20;
  int64_t samples = 96;
  std::string out;
  app.add_option("--steps", steps);
  app.add_option("--samples", samples);
  app.add_option("--out", out);
  bool report = false;
  app.add_flag("--report", report, "print the engine's memory report after every backward");
  int64_t comm_timeout_ms = 0, fault_rank = -1, fault_at_step = -1, bad_loss_at = -1, bad_loss_rank = 0;
  std::string fault, bad_loss_value = "nan";
  app.add_option("--comm_timeout_ms", comm_timeout_ms, "collective timeout (0: DEEPSPEED_TIMEOUT's)");
  std::string hold_until;
  app.add_option("--hold_until", hold_until, "after training, wait until this file exists");
  app.add_option("--fault", fault, "hang (sleep) or die (SIGKILL)")->check(CLI::IsMember({"hang", "die"}));
  app.add_option("--fault_rank", fault_rank, "the rank that hangs or dies");
  app.add_option("--fault_at_step", fault_at_step, "just before this global step");
  app.add_option("--bad_loss_at", bad_loss_at, "micro step whose loss is made non-finite");
  app.add_option("--bad_loss_value", bad_loss_value, "nan or inf")->check(CLI::IsMember({"nan", "inf"}));
  app.add_option("--bad_loss_rank", bad_loss_rank, "rank whose loss is made non-finite (-1: all)");
  deepspeed::add_config_arguments(app);
  CLI11_PARSE(app, argc, argv);
  try {
    const int64_t rank = std::atoll(std::getenv("RANK") ? std::getenv("RANK") : "0");
    torch::manual_seed(42 + rank);
    auto net = std::make_shared<Mlp>();
    deepspeed::InitializeOptions options;
    options.model_parameters = net->parameters();
    options.training_data = deepspeed::training_data(SyntheticData(samples));
    if (comm_timeout_ms > 0) options.distributed.timeout = std::chrono::milliseconds(comm_timeout_ms);
    auto [engine, optimizer, loader, scheduler] =
        deepspeed::initialize(app, torch::nn::AnyModule(net), net, std::move(options));
    if (report) std::cout << "wrapper " << engine->optimizer_wrapper_name() << "\n";
    const double bad = bad_loss_value == "inf" ? std::numeric_limits<double>::infinity()
                                               : std::numeric_limits<double>::quiet_NaN();
    int64_t micro = 0;
    while (engine->global_steps() < steps) {
      for (auto batch : *loader) {
        if (rank == fault_rank && engine->global_steps() + 1 == fault_at_step) {
          std::cout << (fault == "hang" ? "hanging" : "dying") << " before global step " << fault_at_step << std::endl;
          if (fault == "die") std::raise(SIGKILL);
          std::this_thread::sleep_for(std::chrono::hours(1));
        }
        // A half-precision model takes half-precision inputs; the loss is computed in fp32.
        auto prediction = engine->forward(batch.data.to(engine->device(), engine->model_dtype()));
        auto loss = torch::mse_loss(prediction.to(torch::kFloat32), batch.target.to(engine->device()));
        if (micro == bad_loss_at && (bad_loss_rank < 0 || bad_loss_rank == rank)) loss = loss * bad;
        engine->backward(loss);
        if (report) {
          const auto m = engine->memory_report();
          std::cout << "memory " << micro << " parameters=" << m.parameters << " parameters_peak=" << m.parameters_peak
                    << " gradients=" << m.gradients
                    << " master_weights=" << m.master_weights << " optimizer_states=" << m.optimizer_states << "\n";
        }
        engine->step();
        std::cout << "loss " << micro++ << " " << loss.item<double>() << "\n";
        if (engine->global_steps() >= steps) break;
      }
    }
    std::cout << "lr " << engine->get_lr().at(0) << "\n";
    std::cout << "skipped " << engine->skipped_steps() << " scale " << engine->cur_scale() << "\n";
    // ZeRO-3: the weights whole on every rank while this lives.
    const auto whole = engine->gathered_parameters();
    bool finite = true;
    for (auto& p : net->parameters()) finite = finite && torch::isfinite(p).all().item<bool>();
    std::cout << "parameters " << (finite ? "finite" : "NOT finite") << std::endl;
    if (!hold_until.empty()) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
      while (!std::filesystem::exists(hold_until)) {
        if (std::chrono::steady_clock::now() > give_up) {
          std::cerr << "error: " << hold_until << " never appeared\n";
          return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    if (!out.empty()) {
      std::vector<torch::Tensor> params;
      for (auto& p : net->parameters()) params.push_back(p.detach().cpu().to(torch::kFloat32).clone());
      torch::save(params, out + ".rank" + std::to_string(engine->global_rank()) + ".pt");
    }
  } catch (const deepspeed::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
