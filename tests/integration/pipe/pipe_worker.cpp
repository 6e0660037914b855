// One rank of a pipeline-parallel run, started by the tests' multi-process harness.
//
// Trains a small model of LayerSpecs (and, with --tied, an input layer whose weight the last
// layer reuses through a TiedLayerSpec) through the PipelineEngine with the given stages,
// gradient accumulation, ZeRO stage, clipping, precision and topology, and the same model
// without pipelining (every layer in this process, torch's own optimizer, the whole global
// batch) from the same per-layer seeds on the same samples. Writes <--out>.rank<R>.pt:
// [engine losses, reference losses, engine norms, reference norms, largest weight difference
// to the reference in units of the tolerance (1e-7 + 1e-5 |reference|), the tied weight (or an
// empty tensor), {eval_batch loss after training, the reference's}]. --save/--load write or
// read a checkpoint after --save_after steps (--load: the loaded run trains --steps steps from
// there). --die_at/--die_rank: that rank exits abruptly at that step (a stage failure).
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>
#include <deepspeed/pipe_engine.h>

namespace {

namespace ds = deepspeed;
namespace pipe = deepspeed::pipe;

constexpr int64_t kWidth = 8, kMicroBatch = 2, kBaseSeed = 4321;

// A deterministic micro batch for (step, data-parallel rank, micro batch), drawing no random
// numbers: the pipelined run and the reference see the same samples. It depends on the micro
// batch's place in the global batch (dp_rank x gas + micro), so that runs with another
// data-parallel size and the same global batch see the same samples.
ds::PipeBatch sample(int64_t step, int64_t dp_rank, int64_t micro, int64_t gas) {
  const double s = static_cast<double>(step * 1000 + dp_rank * gas + micro);
  auto grid = torch::arange(kMicroBatch * kWidth, torch::kFloat32).reshape({kMicroBatch, kWidth});
  return {torch::sin(grid * 0.37 + s * 1.3), torch::cos(grid * 0.21 - s * 0.7)};
}

torch::Tensor tied_head(torch::nn::Module& embed, torch::Tensor x) {
  // The head reuses the input layer's weight, transposed (an LM head tied to its embedding).
  return torch::matmul(x, embed.named_parameters()["weight"]);
}

std::vector<pipe::Layer> layers(bool tied, int64_t depth) {
  std::vector<pipe::Layer> out;
  if (tied) {
    out.push_back(pipe::TiedLayerSpec{"embed", pipe::LayerSpec::of<torch::nn::Linear>(
                                                   torch::nn::LinearOptions(kWidth, kWidth).bias(false))});
  }
  for (int64_t i = 0; i < depth; ++i) {
    out.push_back(pipe::LayerSpec::of<torch::nn::Linear>(kWidth, kWidth));
    out.push_back(pipe::LayerSpec::function("tanh", [](torch::Tensor x) { return torch::tanh(x); }));
  }
  if (tied) {
    out.push_back(pipe::TiedLayerSpec{"embed",
                                      pipe::LayerSpec::of<torch::nn::Linear>(
                                          torch::nn::LinearOptions(kWidth, kWidth).bias(false)),
                                      tied_head});
  } else {
    out.push_back(pipe::LayerSpec::of<torch::nn::Linear>(kWidth, kWidth));
  }
  return out;
}

// In fp32 whatever the model's dtype (LibTorch's CPU mse_loss has no bf16 kernel).
torch::Tensor mse(const torch::Tensor& out, const torch::Tensor& y) {
  return torch::mse_loss(out.to(torch::kFloat32), y.to(torch::kFloat32));
}

// The same model without pipelining: every layer, seeded as PipelineModule seeds it, named as
// it names its parameters ("<layer>.<name>", "tied_modules.<key>.<name>").
struct Reference {
  std::vector<std::function<torch::Tensor(torch::Tensor)>> forward;
  std::vector<std::pair<std::string, torch::Tensor>> parameters;
  std::vector<torch::nn::AnyModule> keep;

  explicit Reference(const std::vector<pipe::Layer>& specs) {
    std::map<std::string, torch::nn::AnyModule> tied;
    for (size_t i = 0; i < specs.size(); ++i) {
      torch::manual_seed(static_cast<uint64_t>(kBaseSeed + static_cast<int64_t>(i)));
      if (const auto* t = std::get_if<pipe::TiedLayerSpec>(&specs[i])) {
        if (!tied.count(t->key)) {
          tied.emplace(t->key, t->spec.build());
          for (const auto& p : tied.at(t->key).ptr()->named_parameters()) {
            parameters.emplace_back("tied_modules." + t->key + "." + p.key(), p.value());
          }
        }
        auto m = tied.at(t->key);
        if (t->forward_fn) {
          forward.push_back([fn = t->forward_fn, m](torch::Tensor x) { return fn(*m.ptr(), x); });
        } else {
          forward.push_back([m](torch::Tensor x) mutable { return m.forward<torch::Tensor>(x); });
        }
        continue;
      }
      const auto& spec = std::get<pipe::LayerSpec>(specs[i]);
      if (spec.is_function()) {
        forward.push_back(spec.function());
        continue;
      }
      auto m = spec.build();
      keep.push_back(m);
      for (const auto& p : m.ptr()->named_parameters()) parameters.emplace_back(std::to_string(i) + "." + p.key(), p.value());
      forward.push_back([m](torch::Tensor x) mutable { return m.forward<torch::Tensor>(x); });
    }
  }
  torch::Tensor operator()(torch::Tensor x) {
    for (auto& f : forward) x = f(x);
    return x;
  }
  std::vector<torch::Tensor> tensors() const {
    std::vector<torch::Tensor> out;
    for (const auto& [n, p] : parameters) out.push_back(p);
    return out;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pipeline worker"};
  int64_t stages = 2, gas = 1, steps = 3, zero = 0, depth = 3, save_after = 0, die_at = -1, die_rank = -1;
  double clip = 0.0;
  bool tied = false, bf16 = false;
  int64_t tensor = 1, checkpoint_interval = 0;
  std::string out, save, load, optimizer = "Adam", partition = "parameters", config_extra = "{}";
  app.add_option("--stages", stages);
  app.add_option("--gas", gas);
  app.add_option("--steps", steps);
  app.add_option("--zero", zero);
  app.add_option("--depth", depth);
  app.add_option("--clip", clip);
  app.add_flag("--tied", tied);
  app.add_flag("--bf16", bf16);
  app.add_option("--tensor", tensor, "a (pipe, data, model) topology with this many (replicated) tensor ranks");
  app.add_option("--checkpoint_interval", checkpoint_interval, "the config's pipeline.activation_checkpoint_interval");
  app.add_option("--optimizer", optimizer);
  app.add_option("--partition", partition);
  app.add_option("--out", out)->required();
  app.add_option("--save", save);
  app.add_option("--load", load);
  app.add_option("--save_after", save_after);
  app.add_option("--die_at", die_at);
  app.add_option("--die_rank", die_rank);
  app.add_option("--config", config_extra, "JSON merged into the config");
  CLI11_PARSE(app, argc, argv);

  const auto specs = layers(tied, depth);
  pipe::PipelineOptions options;
  if (tensor > 1) {
    const int64_t world = std::stoll(std::getenv("WORLD_SIZE"));
    options.topology = ds::PipeModelDataParallelTopology(stages, tensor, world / (stages * tensor));
  } else {
    options.num_stages = stages;
  }
  options.loss_fn = mse;
  options.seed_layers = true;
  options.base_seed = kBaseSeed;
  options.partition_method = partition;
  auto net = std::make_shared<pipe::PipelineModule>(specs, options);

  nlohmann::json config = {
      {"train_micro_batch_size_per_gpu", kMicroBatch},
      {"gradient_accumulation_steps", gas},
      {"steps_per_print", 1},
      {"optimizer", {{"type", optimizer}, {"params", {{"lr", 0.01}}}}},
      {"zero_optimization", {{"stage", zero}}},
  };
  if (clip > 0) config["gradient_clipping"] = clip;
  if (bf16) config["bf16"] = {{"enabled", true}};
  if (checkpoint_interval > 0) config["pipeline"] = {{"activation_checkpoint_interval", checkpoint_interval}};
  config.merge_patch(nlohmann::json::parse(config_extra));
  ds::InitializeOptions init;
  init.config_json = config;
  auto [engine, opt, loader, sched] = ds::initialize(net, init);
  const int64_t rank = engine->global_rank();
  const int64_t dp_rank = engine->groups()->data_parallel()->rank();
  const int64_t dp = engine->dp_world_size();

  // A bf16 model takes bf16 inputs (as in DeepSpeed, the engine casts none unless fp16.auto_cast).
  auto model_input = [bf16](ds::PipeBatch b) {
    if (bf16) b.inputs = b.inputs.to(torch::kBFloat16);
    return b;
  };
  int64_t step = 0;
  if (!load.empty()) {
    engine->load_checkpoint(load);
    step = engine->global_steps();
  }
  std::vector<double> losses, norms;
  int64_t micro = 0;
  const int64_t first = step;
  for (; step < first + steps; ++step) {
    if (step == die_at && rank == die_rank) {
      std::cerr << "rank " << rank << " exits at step " << step << " (stage failure)" << std::endl;
      std::_Exit(3);
    }
    micro = 0;
    const int64_t this_step = step;
    auto loss = engine->train_batch([&] { return model_input(sample(this_step, dp_rank, micro++, gas)); });
    losses.push_back(loss.item<double>());
    norms.push_back(engine->get_global_grad_norm().value_or(0.0));
    if (!save.empty() && step + 1 == save_after) engine->save_checkpoint(save);
  }

  // An evaluation batch after training: the mean loss over the micro batches and data ranks.
  const int64_t eval_step = 1000;
  micro = 0;
  const auto evaluated = engine->eval_batch([&] { return model_input(sample(eval_step, dp_rank, micro++, gas)); });

  // The reference: the whole model, the whole global batch, torch's optimizer.
  Reference reference(specs);
  std::unique_ptr<torch::optim::Optimizer> ref_opt;
  if (optimizer == "Adam") {
    ref_opt = std::make_unique<torch::optim::Adam>(reference.tensors(), torch::optim::AdamOptions(0.01));
  } else {
    ref_opt = std::make_unique<torch::optim::SGD>(reference.tensors(), torch::optim::SGDOptions(0.01));
  }
  std::vector<double> ref_losses, ref_norms;
  for (int64_t s = 0; s < first + steps; ++s) {
    ref_opt->zero_grad();
    torch::Tensor total = torch::zeros({});
    for (int64_t d = 0; d < dp; ++d) {
      for (int64_t m = 0; m < gas; ++m) {
        const auto b = sample(s, d, m, gas);
        auto l = mse(reference(b.inputs), b.labels) / static_cast<double>(gas * dp);
        l.backward();
        total = total + l.detach();
      }
    }
    double norm = 0.0;
    if (clip > 0) norm = torch::nn::utils::clip_grad_norm_(reference.tensors(), clip);
    ref_opt->step();
    if (s >= first) {
      ref_losses.push_back(total.item<double>());
      ref_norms.push_back(norm);
    }
  }
  double ref_eval = 0.0;
  {
    torch::NoGradGuard no_grad;
    for (int64_t d = 0; d < dp; ++d) {
      for (int64_t m = 0; m < gas; ++m) {
        const auto b = sample(eval_step, d, m, gas);
        ref_eval += mse(reference(b.inputs), b.labels).item<double>() / static_cast<double>(gas * dp);
      }
    }
  }
  // This stage's weights against the reference's, by name.
  double worst = 0.0;
  auto named = net->named_parameters();
  for (const auto& [name, p] : reference.parameters) {
    const auto* mine = named.find(name);
    if (!mine) continue;  // another stage's layer
    if (bf16) continue;   // bf16 weights: the losses are compared, within bf16's precision
    // In units of the tolerance |a - b| <= 1e-7 + 1e-5 |b|: at most 1 passes.
    const auto diff = ((*mine - p).abs() / (p.abs() * 1e-5 + 1e-7)).max().item<double>();
    worst = std::max(worst, diff);
  }
  torch::Tensor tied_weight = tied && named.find("tied_modules.embed.weight") ? named["tied_modules.embed.weight"].clone()
                                                                             : torch::empty({0});
  std::vector<torch::Tensor> result{torch::tensor(losses, torch::kFloat64), torch::tensor(ref_losses, torch::kFloat64),
                                    torch::tensor(norms, torch::kFloat64), torch::tensor(ref_norms, torch::kFloat64),
                                    torch::tensor({worst}, torch::kFloat64), tied_weight,
                                    torch::tensor({evaluated.loss.item<double>(), ref_eval}, torch::kFloat64)};
  torch::save(result, out + ".rank" + std::to_string(rank) + ".pt");
  std::cout << "rank " << rank << " stage " << engine->stage_id() << " done; largest weight difference (in tolerances) "
            << worst << std::endl;
  return 0;
}
