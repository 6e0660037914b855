// One rank of the 1-bit optimizer tests (tests/integration/onebit), in three modes:
//   allreduce --steps S: the compressed all-reduce on this group against its definition,
//     computed here on every rank for all ranks' inputs (the same seeded tensors), with the
//     worker and server errors carried over S calls; prints "allreduce matches" or fails.
//   adam --steps S --freeze_step F: OneBitAdam on seeded per-rank gradients (averaged by hand
//     where the optimizer asks for it, as the engine does) against 1-bit Adam computed here from
//     its definition; prints "adam matches" or fails.
//   zeroone --steps S: ZeroOneAdam (var_freeze_step 8, var_update_scaler 2, local_step_scaler 2,
//     local_step_clipper 4) against DeepSpeed's 0/1 Adam written out for every rank; prints
//     "zeroone matches" or fails.
//   lamb --steps S --freeze_step F: OneBitLamb against DeepSpeed's 1-bit LAMB written out;
//     prints "lamb matches" or fails.
//   train --deepspeed_config C --steps S [--measure_from M] [--save DIR] [--load DIR]: the
//     engine trains an MLP; prints "loss <step> <value>", with --measure_from the bytes the
//     comms logger counted per step from global step M on ("bytes_per_step <n>"), after --load
//     "loaded step <n> averaged <0|1>", and a checksum of the final parameters.
#include <algorithm>
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

// Seeded gradients of tensor i at step t, one per rank (the same on every rank that computes them).
std::vector<torch::Tensor> rank_gradients(const std::vector<int64_t>& shape, int64_t t, size_t i, int64_t n) {
  std::vector<torch::Tensor> grads;
  for (int64_t r = 0; r < n; ++r) grads.push_back(seeded(shape, 5000 * t + 100 * i + r));
  return grads;
}

// 0/1 Adam against DeepSpeed's ZeroOneAdam written out for every rank: the variance updated on
// steps t % var_interval == 0 (the interval doubling every var_update_scaler of them), the
// gradient compressed in between, then (t > var_freeze_step) local steps whose accumulated
// update u is undone, compressed in gradient units and redone every local_step_interval steps.
int run_zeroone(ProcessGroup& group, int64_t steps) {
  const int64_t n = group.size();
  const std::vector<std::vector<int64_t>> shapes{{13, 7}, {6}};
  const double lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.01;
  const int64_t var_freeze_step = 8, var_update_scaler = 2, local_step_scaler = 2, local_step_clipper = 4;
  std::vector<torch::Tensor> params;
  for (size_t i = 0; i < shapes.size(); ++i) params.push_back(seeded(shapes[i], 77 + i));
  std::vector<deepspeed::ParamGroup> groups(1);
  groups[0].params = params;
  auto optimizer = deepspeed::make_onebit_optimizer(
      "ZeroOneAdam",
      {{"lr", lr}, {"weight_decay", wd}, {"var_freeze_step", var_freeze_step}, {"var_update_scaler", var_update_scaler},
       {"local_step_scaler", local_step_scaler}, {"local_step_clipper", local_step_clipper}},
      groups, deepspeed::comm::world_group());
  // Per tensor: each rank's weights, momentum and accumulator (they part after the freeze); the
  // variance and the schedule's counters, equal on every rank; each rank's errors.
  struct RefState {
    std::vector<torch::Tensor> p, m, u, worker, server;
    torch::Tensor v;
    double lrs = 0;
  };
  std::vector<RefState> ref(shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    const int64_t length = deepspeed::comm::compressed_length(params[i].numel(), n);
    for (int64_t r = 0; r < n; ++r) {
      ref[i].p.push_back(params[i].clone());
      ref[i].m.push_back(torch::zeros(shapes[i]));
      ref[i].u.push_back(torch::zeros(shapes[i]));
      ref[i].worker.push_back(torch::zeros({length}));
      ref[i].server.push_back(torch::zeros({length / n}));
    }
    ref[i].v = torch::zeros(shapes[i]);
  }
  int64_t var_interval = 1, var_counter = 0, local_interval = 1, local_counter = 0;
  bool frozen = false, averaged = true;
  const int64_t me = group.rank();
  for (int64_t t = 1; t <= steps; ++t) {
    const std::string at = "step " + std::to_string(t);
    require(optimizer->needs_averaged_gradients() == averaged, at + ": averaged gradients");
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto grads = rank_gradients(shapes[i], t, i, n);
      const auto average = torch::stack(grads).mean(0);
      params[i].mutable_grad() = (averaged ? average : grads[me]).clone();
      if (t == 1) continue;  // the set-up step
      auto& s = ref[i];
      const int64_t numel = params[i].numel();
      auto compressed = [&](const std::vector<torch::Tensor>& per_rank) {
        std::vector<torch::Tensor> x;
        for (const auto& b : per_rank) x.push_back(padded(b, s.worker[0].numel()));
        return reference_allreduce(x, s.worker, s.server).narrow(0, 0, numel).view(shapes[i]);
      };
      const auto denom = [&] { return s.v.sqrt() + eps; };
      if (!frozen) {
        torch::Tensor g;
        if (t % var_interval == 0) {
          s.v = beta2 * s.v + (1 - beta2) * average * average;
          g = average;
        } else {
          g = compressed(grads);
        }
        for (int64_t r = 0; r < n; ++r) {
          s.m[r] = beta1 * s.m[r] + (1 - beta1) * g;
          s.p[r] = s.p[r] - lr * (s.m[r] / denom() + wd * s.p[r]);
        }
      } else {
        s.lrs += lr;
        for (int64_t r = 0; r < n; ++r) {
          s.m[r] = beta1 * s.m[r] + (1 - beta1) * grads[r];
          const auto update = s.m[r] / denom() + wd * s.p[r];
          s.p[r] = s.p[r] - lr * update;
          s.u[r] = s.u[r] - lr * update;
        }
        if (t % local_interval == 0) {
          std::vector<torch::Tensor> x;
          for (int64_t r = 0; r < n; ++r) x.push_back(s.u[r] * denom());
          const auto agreed = compressed(x);
          for (int64_t r = 0; r < n; ++r) {
            s.p[r] = s.p[r] - s.u[r] + agreed / denom();
            s.m[r] = -agreed / s.lrs;
            s.u[r] = torch::zeros(shapes[i]);
          }
          s.lrs = 0;
        }
      }
    }
    if (t > 1) {
      if (!frozen) {
        if (t % var_interval == 0 && ++var_counter == var_update_scaler) {
          var_counter = 0;
          var_interval *= 2;
        }
        averaged = (t + 1) % var_interval == 0;
      } else if (++local_counter == local_step_scaler) {
        local_counter = 0;
        local_interval = std::min(local_step_clipper, local_interval * 2);
      }
      if (!frozen && t > var_freeze_step) {
        frozen = true;
        averaged = false;
        for (auto& s : ref) {  // the errors now carry accumulated updates, not gradients
          for (auto& e : s.worker) e.zero_();
          for (auto& e : s.server) e.zero_();
        }
      }
    }
    optimizer->step();
    for (size_t i = 0; i < shapes.size(); ++i) {
      check_close(params[i], ref[i].p[me], at + " tensor " + std::to_string(i));
      check_close(optimizer->state()[i].at("exp_avg"), ref[i].m[me], at + " exp_avg " + std::to_string(i));
      check_close(optimizer->state()[i].at("exp_avg_sq"), ref[i].v, at + " exp_avg_sq " + std::to_string(i));
    }
  }
  require(frozen && local_interval == local_step_clipper, "the run did not reach the local steps' largest interval");
  std::cout << "zeroone matches over " << steps << " steps" << std::endl;
  return 0;
}

// 1-bit LAMB against DeepSpeed's OnebitLamb written out: LAMB without bias correction whose
// trust ratio is averaged into lamb_coeff_freeze, then (after a step t >= freeze_step) every
// tensor's momentum, scaled by scaling_coeff, compressed in one flat padded buffer; the frozen
// ratio times a factor from the frozen and a fresh variance, bounded per step.
int run_lamb(ProcessGroup& group, int64_t steps, int64_t freeze_step) {
  const int64_t n = group.size();
  const std::vector<std::vector<int64_t>> shapes{{13, 7}, {6}};  // 97 elements: the flat buffer is padded
  // A short β2 and gradients 3x, then 0.05x their warm-up size after the freeze: the fresh
  // variance moves away from the frozen one fast, so the factor meets both of its bounds.
  const double lr = 0.01, beta1 = 0.9, beta2 = 0.5, eps = 1e-8, wd = 0.01;
  auto gradient_scale = [&](int64_t t) { return t <= freeze_step ? 1.0 : t <= 10 ? 3.0 : 0.05; };
  const double max_coeff = 10, min_coeff = 0.01, coeff_beta = 0.9, factor_max = 4, factor_min = 0.5,
               factor_threshold = 0.1;
  std::vector<torch::Tensor> params, p;
  for (size_t i = 0; i < shapes.size(); ++i) {
    params.push_back(seeded(shapes[i], 77 + i));
    p.push_back(params.back().clone());
  }
  std::vector<deepspeed::ParamGroup> groups(1);
  groups[0].params = params;
  auto optimizer = deepspeed::make_onebit_optimizer(
      "OneBitLamb", {{"lr", lr}, {"betas", {beta1, beta2}}, {"weight_decay", wd}, {"freeze_step", freeze_step}}, groups,
      deepspeed::comm::world_group());
  const size_t k = shapes.size();
  std::vector<torch::Tensor> m(k), v(k), fresh(k);
  std::vector<double> coeff_freeze(k, 0.0), last_factor(k, 1.0), scaling;
  for (size_t i = 0; i < k; ++i) m[i] = v[i] = fresh[i] = torch::zeros(shapes[i]);
  int64_t numel = 0;
  for (const auto& t : p) numel += t.numel();
  const int64_t length = deepspeed::comm::compressed_length(numel, n);
  std::vector<torch::Tensor> worker(n, torch::zeros({length})), server(n, torch::zeros({length / n}));
  auto padding = torch::zeros({length - numel});
  bool compressing = false;
  for (int64_t t = 1; t <= steps; ++t) {
    const std::string at = "step " + std::to_string(t);
    require(optimizer->needs_averaged_gradients() == !compressing, at + ": averaged gradients");
    std::vector<std::vector<torch::Tensor>> grads;
    for (size_t i = 0; i < k; ++i) {
      grads.push_back(rank_gradients(shapes[i], t, i, n));
      for (auto& g : grads.back()) g = g * gradient_scale(t);
      params[i].mutable_grad() = (compressing ? grads[i][group.rank()] : torch::stack(grads[i]).mean(0)).clone();
    }
    if (t > 1 && !compressing) {
      for (size_t i = 0; i < k; ++i) {
        const auto g = torch::stack(grads[i]).mean(0);
        m[i] = beta1 * m[i] + (1 - beta1) * g;
        v[i] = beta2 * v[i] + (1 - beta2) * g * g;
        if (t == freeze_step) fresh[i] = v[i].clone();
        const auto update = m[i] / (v[i].sqrt() + eps) + wd * p[i];
        const double c = std::clamp(p[i].norm().item<double>() / update.norm().item<double>(), min_coeff, max_coeff);
        if (c != 1.0) coeff_freeze[i] = coeff_beta * coeff_freeze[i] + (1 - coeff_beta) * c;
        p[i] = p[i] - lr * c * update;
      }
    } else if (t > 1) {
      if (scaling.empty()) {  // fixed from the momentum at the first compressed step
        std::vector<double> rms;
        for (const auto& x : m) rms.push_back(x.norm().item<double>() / std::sqrt(static_cast<double>(x.numel())));
        const double united = std::accumulate(rms.begin(), rms.end(), 0.0) / static_cast<double>(k);
        for (double x : rms) scaling.push_back(united / x);
      }
      std::vector<torch::Tensor> flat;
      for (int64_t r = 0; r < n; ++r) {
        std::vector<torch::Tensor> parts;
        for (size_t i = 0; i < k; ++i) {
          parts.push_back(((beta1 * m[i] + (1 - beta1) * grads[i][r]) * scaling[i]).reshape({-1}));
        }
        parts.push_back(padding);
        flat.push_back(torch::cat(parts));
      }
      const auto result = reference_allreduce(flat, worker, server);
      padding = result.narrow(0, numel, length - numel).clone();
      int64_t offset = 0;
      for (size_t i = 0; i < k; ++i) {
        const auto before = m[i];
        m[i] = result.narrow(0, offset, p[i].numel()).view(shapes[i]) / scaling[i];
        offset += p[i].numel();
        const auto g = (m[i] - beta1 * before) / (1 - beta1);
        fresh[i] = beta2 * fresh[i] + (1 - beta2) * g * g;
        const auto denom = v[i].sqrt() + eps;
        const auto prelim = m[i] / denom;
        const auto update = prelim + wd * p[i];
        double factor = (denom / (fresh[i].sqrt() + eps)).max().item<double>();
        const double ratio = std::min(1.0, prelim.norm().item<double>() / update.norm().item<double>());
        factor = std::clamp(factor * ratio + (1 - ratio), factor_min, factor_max);
        factor = std::clamp(factor, last_factor[i] * (1 - factor_threshold), last_factor[i] * (1 + factor_threshold));
        last_factor[i] = factor;
        p[i] = p[i] - lr * coeff_freeze[i] * factor * update;
      }
    }
    optimizer->step();
    for (size_t i = 0; i < k; ++i) {
      check_close(params[i], p[i], at + " tensor " + std::to_string(i));
      check_close(optimizer->state()[i].at("exp_avg"), m[i], at + " exp_avg " + std::to_string(i));
      check_close(optimizer->state()[i].at("exp_avg_sq_fresh"), fresh[i],
                  at + " exp_avg_sq_fresh " + std::to_string(i));
    }
    if (t > 1 && t >= freeze_step) compressing = true;
  }
  require(compressing && !scaling.empty(), "the run did not reach the compressed phase");
  std::cout << "lamb matches over " << steps << " steps" << std::endl;
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
  app.add_option("mode", mode)->required()->check(CLI::IsMember({"allreduce", "adam", "zeroone", "lamb", "train"}));
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
    if (mode == "allreduce") return run_allreduce(*group, steps);
    if (mode == "zeroone") return run_zeroone(*group, steps);
    if (mode == "lamb") return run_lamb(*group, steps, freeze_step);
    return run_adam(*group, steps, freeze_step);
  } catch (const std::exception& e) {
    std::cerr << "onebit_worker rank " << (std::getenv("RANK") ? std::getenv("RANK") : "0") << ": " << e.what() << "\n";
    return 1;
  }
}
