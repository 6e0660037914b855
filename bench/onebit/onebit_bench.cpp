// One rank of the 1-bit optimizer benchmark: an MLP (--width, --layers) trained data-parallel
// with --optimizer for --steps steps after --warmup_steps (the 1-bit optimizers' freeze_step is
// set to the warm-up, so the timed steps are compressed ones). Rank 0 prints the mean step time
// and, with --log_bytes, the bytes per step the comms logger counted:
//   "optimizer <name> parameters <n> step_ms <t> bytes_per_step <b>".
#include <chrono>
#include <iostream>

#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

namespace {

struct Mlp : torch::nn::Module {
  Mlp(int64_t width, int64_t layers) {
    for (int64_t i = 0; i < layers; ++i) {
      blocks.push_back(register_module("fc" + std::to_string(i), torch::nn::Linear(width, width)));
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& b : blocks) x = torch::tanh(b->forward(x));
    return x;
  }
  std::vector<torch::nn::Linear> blocks;
};

int64_t logged_bytes(const deepspeed::comm::CommsLogger* logger) {
  int64_t total = 0;
  if (!logger) return 0;
  for (const auto& [name, sizes] : logger->records()) {
    for (const auto& [bytes, entry] : sizes) total += bytes * entry.count;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"1-bit optimizer step benchmark"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // later flags win
  std::string optimizer_type = "Adam";
  int64_t width = 1024, layers = 4, batch = 8, steps = 20, warmup_steps = 5;
  bool log_bytes = false;
  app.add_option("--optimizer", optimizer_type);
  app.add_option("--width", width);
  app.add_option("--layers", layers);
  app.add_option("--batch", batch);
  app.add_option("--steps", steps);
  app.add_option("--warmup_steps", warmup_steps);
  app.add_flag("--log_bytes", log_bytes, "count bytes with the comms logger (it waits for each collective)");
  CLI11_PARSE(app, argc, argv);
  try {
    nlohmann::json params = {{"lr", 1e-4}};
    if (optimizer_type != "Adam") params["freeze_step"] = warmup_steps;
    nlohmann::json cfg = {{"train_micro_batch_size_per_gpu", batch},
                          {"steps_per_print", 1000000},
                          {"optimizer", {{"type", optimizer_type}, {"params", params}}}};
    if (optimizer_type == "ZeroOneAdam") {
      cfg["optimizer"]["params"].erase("freeze_step");
      cfg["optimizer"]["params"]["var_freeze_step"] = warmup_steps;
    }
    if (log_bytes) cfg["comms_logger"] = {{"enabled", true}};
    torch::manual_seed(1);
    auto net = std::make_shared<Mlp>(width, layers);
    deepspeed::InitializeOptions options;
    options.model_parameters = net->parameters();
    options.config_json = cfg;
    auto [engine, optimizer, loader, scheduler] =
        deepspeed::initialize(torch::nn::AnyModule(net), net, std::move(options));
    auto x = torch::randn({batch, width});
    auto y = torch::randn({batch, width});
    auto one_step = [&] {
      auto loss = torch::mse_loss(engine->forward(x), y);
      engine->backward(loss);
      engine->step();
    };
    for (int64_t i = 0; i < warmup_steps + 2; ++i) one_step();
    const auto* logger = deepspeed::comm::world_group()->comms_logger();
    const int64_t bytes_before = logged_bytes(logger);
    engine->data_parallel_group()->barrier();
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < steps; ++i) {
      one_step();
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (engine->global_rank() == 0) {
      std::cout << "optimizer " << optimizer_type << " parameters " << (layers * (width * width + width))
                << " step_ms " << ms / static_cast<double>(steps) << " bytes_per_step "
                << (logged_bytes(logger) - bytes_before) / steps << std::endl;
    }
  } catch (const std::exception& e) {
    std::cerr << "onebit_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
