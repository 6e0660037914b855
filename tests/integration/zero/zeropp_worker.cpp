// One rank of a small ZeRO-3 run with or without ZeRO++ (tests/integration/zero/zeropp_test.cpp).
// Trains an MLP for --steps optimizer steps (one micro batch each) with the given ds_config and
// prints, per step, "loss <step> <value>" and "norm <step> <value>" (the global gradient
// norm, with gradient_clipping); for step --measure (with comms_logger on), what the comms
// logger saw in that step's forward and backward: "comm <forward|backward> <op> <count>
// <bytes>" per operation name, and "gather_sizes backward <bytes>..." (each backward
// all_gather's message: 1/g of a bucket for a group of g ranks). At the end the parameters,
// gathered in full precision, go to <--out>.rank<R>.pt; --save / --load write / read a checkpoint.
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include <deepspeed/comms_logger.h>
#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

namespace {

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(16, 64));
    fc2 = register_module("fc2", torch::nn::Linear(64, 64));
    fc3 = register_module("fc3", torch::nn::Linear(64, 4));
  }
  torch::Tensor forward(torch::Tensor x) {
    return fc3->forward(torch::tanh(fc2->forward(torch::tanh(fc1->forward(x)))));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
};

class Regression : public torch::data::datasets::Dataset<Regression> {
 public:
  Regression() {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
    x_ = torch::randn({512, 16}, gen);
    y_ = torch::tanh(torch::matmul(x_, torch::randn({16, 4}, gen)));
  }
  torch::data::Example<> get(size_t i) override { return {x_[static_cast<int64_t>(i)], y_[static_cast<int64_t>(i)]}; }
  torch::optional<size_t> size() const override { return static_cast<size_t>(x_.size(0)); }

 private:
  torch::Tensor x_, y_;
};

struct OpTotal {
  int64_t count = 0;
  int64_t bytes = 0;
};
using Snapshot = std::map<std::string, OpTotal>;

Snapshot snapshot() {
  Snapshot out;
  const auto* logger = deepspeed::comm::world_group()->comms_logger();
  if (!logger) return out;
  for (const auto& [name, sizes] : logger->records()) {
    auto& t = out[name.substr(0, name.find(' '))];
    for (const auto& [bytes, entry] : sizes) {
      t.count += entry.count;
      t.bytes += bytes * entry.count;
    }
  }
  return out;
}

std::map<int64_t, int64_t> all_gather_sizes() {
  std::map<int64_t, int64_t> out;
  const auto* logger = deepspeed::comm::world_group()->comms_logger();
  if (!logger) return out;
  for (const auto& [name, sizes] : logger->records()) {
    if (name.rfind("all_gather", 0) != 0) continue;
    for (const auto& [bytes, entry] : sizes) out[bytes] += entry.count;
  }
  return out;
}

void print_delta(const std::string& phase, const Snapshot& before, const Snapshot& after) {
  for (const auto& [op, t] : after) {
    const auto it = before.find(op);
    const OpTotal b = it == before.end() ? OpTotal{} : it->second;
    if (t.count == b.count) continue;
    std::cout << "comm " << phase << " " << op << " " << t.count - b.count << " " << t.bytes - b.bytes << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ZeRO++ test worker"};
  int64_t steps = 10, measure = -1;
  std::string out, save, load;
  app.add_option("--steps", steps);
  app.add_option("--measure", measure);
  app.add_option("--out", out);
  app.add_option("--save", save);
  app.add_option("--load", load);
  deepspeed::add_config_arguments(app);
  CLI11_PARSE(app, argc, argv);
  try {
    torch::manual_seed(42);
    auto net = std::make_shared<Mlp>();
    deepspeed::InitializeOptions options;
    options.model_parameters = net->parameters();
    options.training_data = deepspeed::training_data(Regression());
    auto [engine, optimizer, loader, scheduler] =
        deepspeed::initialize(app, torch::nn::AnyModule(net), net, std::move(options));
    if (!load.empty()) engine->load_checkpoint(load);
    std::cout.precision(17);
    while (engine->global_steps() < steps) {
      for (auto batch : *loader) {
        const int64_t step = engine->global_steps();
        const auto s0 = snapshot();
        auto loss = torch::mse_loss(engine->forward(batch.data), batch.target);
        const auto s1 = snapshot();
        const auto g1 = all_gather_sizes();
        engine->backward(loss);
        const auto s2 = snapshot();
        const auto g2 = all_gather_sizes();
        engine->step();
        std::cout << "loss " << step << " " << loss.item<double>() << "\n";
        if (const auto norm = engine->get_global_grad_norm()) std::cout << "norm " << step << " " << *norm << "\n";
        if (step == measure) {
          print_delta("forward", s0, s1);
          print_delta("backward", s1, s2);
          std::cout << "gather_sizes backward";
          for (const auto& [bytes, count] : g2) {
            const auto it = g1.find(bytes);
            for (int64_t i = count - (it == g1.end() ? 0 : it->second); i > 0; --i) std::cout << " " << bytes;
          }
          std::cout << "\n";
        }
        if (engine->global_steps() >= steps) break;
      }
    }
    if (!save.empty()) engine->save_checkpoint(save);
    if (!out.empty()) {
      std::vector<torch::Tensor> params;
      {
        auto gathered = engine->gathered_parameters();
        for (const auto& p : net->parameters()) params.push_back(p.detach().to(torch::kFloat32).clone());
      }
      torch::save(params, out + ".rank" + std::to_string(engine->global_rank()) + ".pt");
    }
    std::cout << std::flush;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "zeropp_worker rank " << (std::getenv("RANK") ? std::getenv("RANK") : "0") << ": " << e.what() << "\n";
    return 1;
  }
}
