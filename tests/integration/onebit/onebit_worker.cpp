// One rank of the 1-bit optimizer tests (tests/integration/onebit), in three modes:
//   allreduce --steps S: the compressed all-reduce on this group against its definition,
//     computed here on every rank for all ranks' inputs (the same seeded tensors), with the
//     worker and server errors carried over S calls; prints "allreduce matches" or fails.
//   adam --steps S --freeze_step F: OneBitAdam on seeded per-rank gradients (averaged by hand
//     where the optimizer asks for it, as the engine does) against 1-bit Adam computed here from
//     its definition; prints "adam matches" or fails.
//   train --deepspeed_config C --steps S [--measure_from M] [--save DIR] [--load DIR]: the
//     engine trains an MLP; prints "loss <step> <value>", with --measure_from the bytes the
//     comms logger counted per step from global step M on ("bytes_per_step <n>"), after --load
//     "loaded step <n> averaged <0|1>", and a checksum of the final parameters.
#include <cmath>
#include <iostream>
#include <numeric>

#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

#include "comm/compressed_allreduce.h"

namespace {

using deepspeed::comm::ProcessGroup;

// The definition, for all ranks at once. x[r]: rank r's buffer (padded to the compressed
// length); worker[r] and server[r]: rank r's errors. Returns the result every rank gets.
torch::Tensor reference_allreduce(std::vector<torch::Tensor> x, std::vector<torch::Tensor>& worker,
                                  std::vector<torch::Tensor>& server) {
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t length = x[0].numel();
  const int64_t chunk = length / n;
  auto sign_of = [](const torch::Tensor& v) { return torch::where(v < 0, torch::full_like(v, -1), torch::full_like(v, 1)); };
  std::vector<torch::Tensor> sent(n);
  for (int64_t r = 0; r < n; ++r) {
    x[r] = x[r] + worker[r];
    const auto scale = x[r].norm() / std::sqrt(static_cast<double>(length));
    sent[r] = scale * sign_of(x[r]);
    worker[r] = x[r] - sent[r];
  }
  auto result = torch::zeros({length});
  for (int64_t c = 0; c < n; ++c) {  // rank c serves chunk c
    auto m = torch::zeros({chunk});
    for (int64_t r = 0; r < n; ++r) m = m + sent[r].narrow(0, c * chunk, chunk) / static_cast<double>(n);
    m = m + server[c];
    const auto scale = m.norm() / std::sqrt(static_cast<double>(chunk));
    const auto out = scale * sign_of(m);
    server[c] = m - out;
    result.narrow(0, c * chunk, chunk).copy_(out);
  }
  return result;
}

torch::Tensor padded(const torch::Tensor& t, int64_t length) {
  auto p = torch::zeros({length});
  p.narrow(0, 0, t.numel()).copy_(t.reshape({-1}));
  return p;
}

torch::Tensor seeded(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randn(shape, gen);
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

void check_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  const double diff = (got - want).abs().max().item<double>();
  require(torch::allclose(got, want, 1e-5, 1e-6), what + " differs from the definition by " + std::to_string(diff));
}

int run_allreduce(ProcessGroup& group, int64_t steps) {
  const int64_t n = group.size();
  const std::vector<int64_t> shape{37, 29};  // not a multiple of the chunking: padding is exercised
  const int64_t length = deepspeed::comm::compressed_length(37 * 29, n);
  auto errors = deepspeed::comm::make_compression_errors(37 * 29, n, torch::kCPU);
  std::vector<torch::Tensor> worker(n, torch::zeros({length})), server(n, torch::zeros({length / n}));
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<torch::Tensor> inputs;
    for (int64_t r = 0; r < n; ++r) inputs.push_back(seeded(shape, 1000 * step + r));
    const auto got = deepspeed::comm::compressed_allreduce(group, inputs[group.rank()], errors);
    std::vector<torch::Tensor> x;
    for (const auto& in : inputs) x.push_back(padded(in, length));
    const auto want = reference_allreduce(x, worker, server).narrow(0, 0, 37 * 29).view(shape);
    require(got.sizes() == want.sizes(), "result shape");
    check_close(got, want, "step " + std::to_string(step) + " result");
    check_close(errors.worker, worker[group.rank()], "step " + std::to_string(step) + " worker error");
    check_close(errors.server, server[group.rank()], "step " + std::to_string(step) + " server error");
    // Compression keeps the direction: the result correlates with the true average.
    const auto average = torch::stack(inputs).mean(0);
    const double cosine = (got * average).sum().item<double>() / (got.norm() * average.norm()).item<double>();
    require(cosine > 0.3, "the result does not follow the average (cosine " + std::to_string(cosine) + ")");
  }
  std::cout << "allreduce matches over " << steps << " steps" << std::endl;
  return 0;
}

int run_adam(ProcessGroup& group, int64_t steps, int64_t freeze_step) {
  const int64_t n = group.size();
  const std::vector<std::vector<int64_t>> shapes{{13, 7}, {5}};
  const double lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.01;
  std::vector<torch::Tensor> params, ref_params;
  for (size_t i = 0; i < shapes.size(); ++i) {
    params.push_back(seeded(shapes[i], 77 + i));
    ref_params.push_back(params.back().clone());
  }
  std::vector<deepspeed::ParamGroup> groups(1);
  groups[0].params = params;
  auto optimizer = deepspeed::make_onebit_optimizer(
      "OneBitAdam", {{"lr", lr}, {"freeze_step", freeze_step}, {"weight_decay", wd}}, groups,
      deepspeed::comm::world_group());
  // The definition's state: one m and v per tensor (equal on every rank), each rank's errors.
  struct RefState {
    torch::Tensor m, v;
    std::vector<torch::Tensor> worker, server;
  };
  std::vector<RefState> ref(shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    ref[i].m = torch::zeros(shapes[i]);
    ref[i].v = torch::zeros(shapes[i]);
  }
  bool compressing = false;
  for (int64_t t = 1; t <= steps; ++t) {
    require(optimizer->needs_averaged_gradients() == !compressing, "step " + std::to_string(t) + ": phase");
    for (size_t i = 0; i < shapes.size(); ++i) {
      std::vector<torch::Tensor> grads;
      for (int64_t r = 0; r < n; ++r) grads.push_back(seeded(shapes[i], 5000 * t + 100 * i + r));
      const auto average = torch::stack(grads).mean(0);
      auto g = optimizer->needs_averaged_gradients() ? average : grads[group.rank()];
      params[i].mutable_grad() = g.clone();
      auto& s = ref[i];
      if (t == 1) continue;  // the set-up step updates nothing (its momentum is zero)
      if (!compressing) {
        s.m = beta1 * s.m + (1 - beta1) * average;
        s.v = beta2 * s.v + (1 - beta2) * average * average;
      } else {
        const int64_t length = deepspeed::comm::compressed_length(s.m.numel(), n);
        if (s.worker.empty()) {
          s.worker.assign(n, torch::zeros({length}));
          s.server.assign(n, torch::zeros({length / n}));
        }
        std::vector<torch::Tensor> x;
        for (int64_t r = 0; r < n; ++r) x.push_back(padded(beta1 * s.m + (1 - beta1) * grads[r], length));
        s.m = reference_allreduce(x, s.worker, s.server).narrow(0, 0, s.m.numel()).view(s.m.sizes());
      }
      ref_params[i] = ref_params[i] - lr * (s.m / (s.v.sqrt() + eps) + wd * ref_params[i]);
    }
    optimizer->step();
    for (size_t i = 0; i < shapes.size(); ++i) {
      check_close(params[i], ref_params[i], "step " + std::to_string(t) + " tensor " + std::to_string(i));
      check_close(optimizer->state()[i].at("exp_avg"), ref[i].m, "step " + std::to_string(t) + " exp_avg");
    }
    if (t > 1 && t >= freeze_step) compressing = true;
  }
  std::cout << "adam matches over " << steps << " steps" << std::endl;
  return 0;
}

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(32, 128));
    fc2 = register_module("fc2", torch::nn::Linear(128, 8));
  }
  torch::Tensor forward(torch::Tensor x) { return fc2->forward(torch::tanh(fc1->forward(x))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

class Regression : public torch::data::datasets::Dataset<Regression> {
 public:
  Regression() {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
    x_ = torch::randn({256, 32}, gen);
    y_ = torch::tanh(torch::matmul(x_, torch::randn({32, 8}, gen)));
  }
  torch::data::Example<> get(size_t i) override { return {x_[static_cast<int64_t>(i)], y_[static_cast<int64_t>(i)]}; }
  torch::optional<size_t> size() const override { return static_cast<size_t>(x_.size(0)); }

 private:
  torch::Tensor x_, y_;
};

int64_t logged_bytes() {
  const auto* logger = deepspeed::comm::world_group()->comms_logger();
  int64_t total = 0;
  if (!logger) return 0;
  for (const auto& [name, sizes] : logger->records()) {
    for (const auto& [bytes, entry] : sizes) total += bytes * entry.count;
  }
  return total;
}

int run_train(CLI::App& app, int64_t steps, int64_t measure_from, const std::string& save, const std::string& load) {
  torch::manual_seed(42);
  auto net = std::make_shared<Mlp>();
  deepspeed::InitializeOptions options;
  options.model_parameters = net->parameters();
  options.training_data = deepspeed::training_data(Regression());
  auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(app, torch::nn::AnyModule(net), net, std::move(options));
  if (!load.empty()) {
    engine->load_checkpoint(load);
    std::cout << "loaded step " << optimizer->state().at(0).at("step").item<double>() << " averaged "
              << optimizer->needs_averaged_gradients() << std::endl;
  }
  int64_t start_bytes = -1;
  const int64_t first = engine->global_steps();
  while (engine->global_steps() < steps) {
    for (auto batch : *loader) {
      if (engine->global_steps() == measure_from && start_bytes < 0) start_bytes = logged_bytes();
      // A half-precision model takes half-precision inputs; the loss is computed in fp32.
      auto prediction = engine->forward(batch.data.to(engine->model_dtype()));
      auto loss = torch::mse_loss(prediction.to(torch::kFloat32), batch.target);
      engine->backward(loss);
      engine->step();
      std::cout << "loss " << engine->global_steps() << " " << loss.item<double>() << "\n";
      if (engine->global_steps() >= steps) break;
    }
  }
  if (start_bytes >= 0) {
    std::cout << "bytes_per_step " << (logged_bytes() - start_bytes) / (steps - std::max(measure_from, first)) << "\n";
  }
  double checksum = 0.0;
  for (const auto& p : net->parameters()) checksum += p.detach().to(torch::kFloat64).abs().sum().item<double>();
  std::cout.precision(17);
  std::cout << "checksum " << checksum << std::endl;
  if (!save.empty()) engine->save_checkpoint(save);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"1-bit optimizer test worker"};
  std::string mode, save, load;
  int64_t steps = 4, freeze_step = 3, measure_from = -1;
  app.add_option("mode", mode)->required()->check(CLI::IsMember({"allreduce", "adam", "train"}));
  app.add_option("--steps", steps);
  app.add_option("--freeze_step", freeze_step);
  app.add_option("--measure_from", measure_from);
  app.add_option("--save", save);
  app.add_option("--load", load);
  deepspeed::add_config_arguments(app);
  CLI11_PARSE(app, argc, argv);
  try {
    if (mode == "train") return run_train(app, steps, measure_from, save, load);
    auto group = deepspeed::comm::init_distributed();
    return mode == "allreduce" ? run_allreduce(*group, steps) : run_adam(*group, steps, freeze_step);
  } catch (const std::exception& e) {
    std::cerr << "onebit_worker rank " << (std::getenv("RANK") ? std::getenv("RANK") : "0") << ": " << e.what() << "\n";
    return 1;
  }
}
