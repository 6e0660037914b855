// One rank of the engine-API tests (engine_forward_test.cpp), started by run_ranks.
//
// --case forward: a tuple-returning model (forward(x) -> (output, hidden)) and a two-input
// model (forward(x, y) -> a struct with the loss) trained through engine->forward at ZeRO
// stages 0-3; each step prints "forward <model> <stage> <step> <engine loss> <direct loss>",
// the direct loss from calling the module itself (engine->module()->forward) on the same
// batch just before.
// --case no_sync --stage S: prints "grad <when> <checksum of .grad> <checksum of the local
// gradients>" inside no_sync ("inside") and after the next backward outside it ("after"),
// what step() and a second no_sync inside no_sync, and no_sync at ZeRO stage 2, say
// ("refused <message>"), and after the step "params <global steps> <checksum>".
#include <iomanip>
#include <iostream>

#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

namespace {

torch::Tensor batch(int64_t rank, int64_t step, int64_t cols) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 * step + rank);
  return torch::randn({2, cols}, gen);
}

// Logits and a hidden state, as models that return more than their output do.
struct TupleNet : torch::nn::Module {
  TupleNet() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 4));
  }
  std::tuple<torch::Tensor, torch::Tensor> forward(torch::Tensor x) {
    auto hidden = torch::tanh(fc1->forward(x));
    return {fc2->forward(hidden), hidden};
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

struct Output {
  torch::Tensor prediction;
  torch::Tensor loss;
};

// Inputs and targets in, the loss out (as Hugging Face models take labels).
struct TwoInputNet : torch::nn::Module {
  TwoInputNet() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 4));
  }
  Output forward(torch::Tensor x, const torch::Tensor& target) {
    auto prediction = fc2->forward(torch::relu(fc1->forward(x)));
    return {prediction, torch::mse_loss(prediction, target)};
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

torch::Tensor loss_of(const std::tuple<torch::Tensor, torch::Tensor>& out, const torch::Tensor& target) {
  return torch::mse_loss(std::get<0>(out), target) + 0.01 * std::get<1>(out).pow(2).mean();
}
torch::Tensor loss_of(const Output& out, const torch::Tensor&) { return out.loss; }

nlohmann::json config(int stage, int64_t world) {
  nlohmann::json zero = {{"stage", stage}};
  if (stage == 3) zero["stage3_param_persistence_threshold"] = 0;  // partition even these small tensors
  return {{"train_batch_size", 2 * world},
          {"steps_per_print", 1000},
          {"optimizer", {{"type", "Adam"}, {"params", {{"lr", 0.01}}}}},
          {"zero_optimization", zero}};
}

template <typename Net>
void train(const std::string& name, int stage, int64_t rank, int64_t world) {
  torch::manual_seed(7);
  auto net = std::make_shared<Net>();
  deepspeed::InitializeOptions options;
  options.config_json = config(stage, world);
  auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(net, options);
  for (int64_t step = 0; step < 5; ++step) {
    const auto x = batch(rank, step, 8).to(engine->device());
    const auto y = batch(rank + 100, step, 4).to(engine->device());
    double direct = 0;
    {
      torch::NoGradGuard no_grad;
      const auto whole = engine->gathered_parameters();  // ZeRO-3: the parameters whole
      if constexpr (std::is_same_v<Net, TupleNet>) {
        direct = loss_of(engine->module()->forward(x), y).template item<double>();
      } else {
        direct = loss_of(engine->module()->forward(x, y), y).template item<double>();
      }
    }
    torch::Tensor loss;
    if constexpr (std::is_same_v<Net, TupleNet>) {
      auto [output, hidden] = engine->forward(x);
      loss = loss_of(std::make_tuple(output, hidden), y);
    } else {
      loss = loss_of(engine->forward(x, y), y);
    }
    engine->backward(loss);
    engine->step();
    std::cout << std::setprecision(17) << "forward " << name << " " << stage << " " << step << " "
              << loss.item<double>() << " " << direct << "\n";
  }
}

double checksum(const std::vector<torch::Tensor>& grads) {
  double sum = 0;
  for (size_t i = 0; i < grads.size(); ++i) sum += static_cast<double>(i + 1) * grads[i].sum().item<double>();
  return sum;
}

std::vector<torch::Tensor> grads_of(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return out;
}

void no_sync(int stage, int64_t rank, int64_t world) {
  torch::manual_seed(7);
  auto net = std::make_shared<TupleNet>();
  auto reference = std::make_shared<TupleNet>();  // the same weights, plain LibTorch
  deepspeed::InitializeOptions options;
  options.config_json = config(stage, world);
  auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(net, options);
  reference->to(engine->device());
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < net->parameters().size(); ++i) {
      reference->parameters()[i].copy_(net->parameters()[i]);
    }
  }
  const auto y = batch(rank + 100, 0, 4).to(engine->device());
  auto local = [&](const torch::Tensor& x) { loss_of(reference->forward(x), y).backward(); };
  try {
    const auto guard = engine->no_sync();
    const auto x = batch(rank, 0, 8).to(engine->device());
    engine->backward(loss_of(engine->forward(x), y));
    local(x);
    std::cout << std::setprecision(17) << "grad inside " << checksum(grads_of(*net)) << " "
              << checksum(grads_of(*reference)) << "\n";
    try {
      engine->step();
    } catch (const deepspeed::EngineError& e) {
      std::cout << "refused " << e.what() << "\n";
    }
    try {
      const auto second = engine->no_sync();
    } catch (const deepspeed::EngineError& e) {
      std::cout << "refused " << e.what() << "\n";
    }
  } catch (const deepspeed::EngineError& e) {
    std::cout << "refused " << e.what() << "\n";
    return;
  }
  const auto x = batch(rank, 1, 8).to(engine->device());
  engine->backward(loss_of(engine->forward(x), y));
  local(x);
  std::cout << std::setprecision(17) << "grad after " << checksum(grads_of(*net)) << " "
            << checksum(grads_of(*reference)) << "\n";
  engine->step();
  std::vector<torch::Tensor> params;
  for (const auto& p : net->parameters()) params.push_back(p.detach());
  std::cout << std::setprecision(17) << "params " << engine->global_steps() << " " << checksum(params) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"engine API test worker"};
  std::string which;
  int stage = 0;
  app.add_option("--case", which)->required();
  app.add_option("--stage", stage);
  CLI11_PARSE(app, argc, argv);
  const int64_t rank = std::atoll(std::getenv("RANK") ? std::getenv("RANK") : "0");
  const int64_t world = std::atoll(std::getenv("WORLD_SIZE") ? std::getenv("WORLD_SIZE") : "1");
  if (which == "forward") {
    for (int s = 0; s <= 3; ++s) train<TupleNet>("tuple", s, rank, world);
    for (int s = 0; s <= 3; ++s) train<TwoInputNet>("two_input", s, rank, world);
  } else if (which == "no_sync") {
    no_sync(stage, rank, world);
  }
  return 0;
}
