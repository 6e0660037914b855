// One rank of a pipeline-parallel run, started by the tests' multi-process harness.
//
// Trains a small model of LayerSpecs (and, with --tied, an input layer whose weight the last
// layer reuses through a TiedLayerSpec) through the PipelineEngine with the given stages,
// gradient accumulation, ZeRO stage, clipping, precision and topology, and the same model
// without pipelining (every layer in this process, torch's own optimizer, the whole global
// batch) from the same per-layer seeds on the same samples. Writes <--out>.rank<R>.pt:
// [engine losses, reference losses, engine norms, reference norms, largest weight difference
// to the reference in units of the tolerance (1e-7 + 1e-5 |reference|), the tied weight (or an
// empty tensor), {eval_batch loss after training, the reference's}, eval_batch's variants
// (--eval_variants; else empty): {1 where bcast_loss=false left the loss on the last stage
// only, then in tolerances against the reference: that loss, reduce_output "none"'s losses,
// return_logits' logits, compute_loss=false's averaged outputs}, per step {skipped steps so
// far, loss scale, how much this stage's weights moved}]. --save/--load write or
// read a checkpoint after --save_after steps (--load: the loaded run trains --steps steps from
// there). --die_at/--die_rank: that rank exits abruptly at that step (a stage failure).
#include <cstdlib>
#include <iostream>
#include <limits>

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
// With --vary_rows, odd micro batches have one row more (activations change shape). With
// --tuple, the inputs are a tuple: the features and an int mask.
bool vary_rows = false, tuple_inputs = false;

ds::PipeBatch sample(int64_t step, int64_t dp_rank, int64_t micro, int64_t gas) {
  const double s = static_cast<double>(step * 1000 + dp_rank * gas + micro);
  const int64_t rows = kMicroBatch + (vary_rows ? micro % 2 : 0);
  auto grid = torch::arange(rows * kWidth, torch::kFloat32).reshape({rows, kWidth});
  ds::PipeBatch b{torch::sin(grid * 0.37 + s * 1.3), torch::cos(grid * 0.21 - s * 0.7), {}};
  if (tuple_inputs) b.input_tuple = {b.inputs, (torch::cos(grid * 0.53 + s) > 0).to(torch::kLong)};
  return b;
}

torch::Tensor tied_head(torch::nn::Module& embed, torch::Tensor x) {
  // The head reuses the input layer's weight, transposed (an LM head tied to its embedding).
  return torch::matmul(x, embed.named_parameters()["weight"]);
}

// x * w + b, element by element: a layer whose fp16 runs on LibTorch 1.13's CPU (no matmul).
struct ScaleImpl : torch::nn::Module {
  ScaleImpl(int64_t width, double init)
      : w(register_parameter("w", torch::full({width}, init))), b(register_parameter("b", torch::zeros({width}))) {}
  torch::Tensor forward(torch::Tensor x) { return x * w + b; }
  torch::Tensor w, b;
};
TORCH_MODULE(Scale);

// A layer on tuples: (features, int mask[, bool flags, float scale]) in, (features, the
// mask, bool flags, a float scale that depends on no parameter) out. The features are gated
// by the mask, raised where the flags are set and scaled by the scale, so every tensor of the
// tuple matters; only the features carry a gradient back to a parameter.
struct GatedLinearImpl : torch::nn::Module {
  explicit GatedLinearImpl(int64_t width) : linear(register_module("linear", torch::nn::Linear(width, width))) {}
  std::vector<torch::Tensor> forward(std::vector<torch::Tensor> in) {
    auto h = in.at(0);
    const auto& mask = in.at(1);
    if (in.size() > 2) h = h + 0.1 * in[2].to(h.scalar_type()) * in[3];
    auto out = torch::tanh(linear(h)) * (mask.to(h.scalar_type()) * 0.5 + 0.5);
    auto scale = torch::full({out.size(0), 1}, 0.75, out.options());
    return {out, mask, out > 0, scale};
  }
  torch::nn::Linear linear;
};
TORCH_MODULE(GatedLinear);

// --tuple: tuples between the layers (and so between stages), then one tensor for the loss.
std::vector<pipe::Layer> tuple_layers(int64_t depth) {
  std::vector<pipe::Layer> out;
  for (int64_t i = 0; i < depth + 1; ++i) out.push_back(pipe::LayerSpec::of_tuple<GatedLinear>(kWidth));
  out.push_back(pipe::LayerSpec::activation_function("features", [](pipe::Activation x) {
    return pipe::Activation(x.tensors.at(0) * x.tensors.at(3));
  }));
  out.push_back(pipe::LayerSpec::of<torch::nn::Linear>(kWidth, kWidth));
  return out;
}

// --elementwise: element-wise layers only.
std::vector<pipe::Layer> elementwise_layers(int64_t depth) {
  std::vector<pipe::Layer> out{pipe::LayerSpec::of<Scale>(kWidth, 0.5)};
  for (int64_t i = 0; i < depth; ++i) {
    out.push_back(pipe::LayerSpec::of<Scale>(kWidth, 0.9));
    // x / (1 + |x|): LibTorch 1.13's CPU has no half tanh.
    out.push_back(pipe::LayerSpec::function("softsign", [](torch::Tensor x) { return x / (x.abs() + 1); }));
  }
  out.push_back(pipe::LayerSpec::of<Scale>(kWidth, 1.0));
  return out;
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
  std::vector<pipe::LayerSpec::ActivationFunction> forward;
  std::vector<std::pair<std::string, torch::Tensor>> parameters;

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
          forward.push_back([fn = t->forward_fn, m](pipe::Activation x) { return pipe::Activation(fn(*m.ptr(), x.tensor())); });
        } else {
          forward.push_back(t->spec.module_forward(m));
        }
        continue;
      }
      const auto& spec = std::get<pipe::LayerSpec>(specs[i]);
      if (spec.is_function()) {
        forward.push_back(spec.function());
        continue;
      }
      auto m = spec.build();
      for (const auto& p : m.ptr()->named_parameters()) parameters.emplace_back(std::to_string(i) + "." + p.key(), p.value());
      forward.push_back(spec.module_forward(m));
    }
  }
  torch::Tensor operator()(const ds::PipeBatch& b) {
    pipe::Activation x = b.input_tuple.empty() ? pipe::Activation(b.inputs) : pipe::Activation::tuple(b.input_tuple);
    for (auto& f : forward) x = f(std::move(x));
    return x.tensor();
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
  bool tied = false, bf16 = false, fp16 = false, elementwise = false, eval_variants = false, dynamic_shape = false;
  int64_t overflow_at = -1;
  int64_t tensor = 1, checkpoint_interval = 0;
  std::string out, save, load, optimizer = "Adam", partition = "parameters", config_extra = "{}", monitor_dir;
  app.add_option("--stages", stages);
  app.add_option("--gas", gas);
  app.add_option("--steps", steps);
  app.add_option("--zero", zero);
  app.add_option("--depth", depth);
  app.add_option("--clip", clip);
  app.add_flag("--tied", tied);
  app.add_flag("--bf16", bf16);
  app.add_flag("--fp16", fp16, "fp16 with a dynamic loss scale from 2^8 (needs --elementwise on a CPU)");
  app.add_flag("--elementwise", elementwise, "element-wise layers (Scale) instead of Linear ones");
  app.add_flag("--tuple", tuple_inputs, "tuples of tensors between layers and stages (GatedLinear)");
  app.add_flag("--vary_rows", vary_rows, "odd micro batches have one more row");
  app.add_flag("--dynamic_shape", dynamic_shape, "the PipelineModule's dynamic_shape");
  app.add_option("--overflow_at", overflow_at, "at this step, an inf gradient on data-parallel rank 0's first stage");
  app.add_flag("--eval_variants", eval_variants, "eval_batch without bcast_loss, with reduce_output none and "
                                                 "return_logits, and without compute_loss");
  app.add_option("--tensor", tensor, "a (pipe, data, model) topology with this many (replicated) tensor ranks");
  app.add_option("--checkpoint_interval", checkpoint_interval, "the config's pipeline.activation_checkpoint_interval");
  app.add_option("--optimizer", optimizer);
  app.add_option("--partition", partition);
  app.add_option("--out", out)->required();
  int64_t local_rank = 0;
  app.add_option("--local_rank", local_rank, "the launcher's (the rank comes from the environment)");
  app.add_option("--save", save);
  app.add_option("--load", load);
  app.add_option("--save_after", save_after);
  app.add_option("--die_at", die_at);
  app.add_option("--die_rank", die_rank);
  app.add_option("--config", config_extra, "JSON merged into the config");
  app.add_option("--monitor", monitor_dir, "csv_monitor's output_path (job_name \"pipe\")");
  CLI11_PARSE(app, argc, argv);

  const auto specs = elementwise ? elementwise_layers(depth) : tuple_inputs ? tuple_layers(depth) : layers(tied, depth);
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
  options.dynamic_shape = dynamic_shape;
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
  if (fp16) config["fp16"] = {{"enabled", true}, {"initial_scale_power", 8}};
  if (!monitor_dir.empty()) config["csv_monitor"] = {{"enabled", true}, {"output_path", monitor_dir}, {"job_name", "pipe"}};
  if (checkpoint_interval > 0) config["pipeline"] = {{"activation_checkpoint_interval", checkpoint_interval}};
  config.merge_patch(nlohmann::json::parse(config_extra));
  ds::InitializeOptions init;
  init.config_json = config;
  auto [engine, opt, loader, sched] = ds::initialize(net, init);
  const int64_t rank = engine->global_rank();
  const int64_t dp_rank = engine->groups()->data_parallel()->rank();
  const int64_t dp = engine->dp_world_size();

  // A bf16 model takes bf16 inputs (as in DeepSpeed, the engine casts none unless fp16.auto_cast).
  auto model_input = [bf16, fp16](ds::PipeBatch b) {
    if (bf16) b.inputs = b.inputs.to(torch::kBFloat16);
    if (fp16) b.inputs = b.inputs.to(torch::kHalf);
    return b;
  };
  int64_t step = 0;
  if (!load.empty()) {
    engine->load_checkpoint(load);
    step = engine->global_steps();
  }
  // --overflow_at: an inf in one parameter's gradient on data-parallel rank 0's first stage.
  int64_t current_step = step;
  if (overflow_at >= 0 && engine->is_first_stage() && dp_rank == 0) {
    net->parameters().front().register_hook([&current_step, overflow_at](torch::Tensor g) {
      return current_step == overflow_at ? torch::full_like(g, std::numeric_limits<double>::infinity()) : g;
    });
  }
  std::vector<double> losses, norms, record;  // record: per step, skipped steps, loss scale, weight change
  auto stage_weights = [&] {
    std::vector<torch::Tensor> w;
    for (const auto& p : net->parameters()) w.push_back(p.detach().to(torch::kFloat64).clone());
    return w;
  };
  int64_t micro = 0;
  const int64_t first = step;
  for (; step < first + steps; ++step) {
    if (step == die_at && rank == die_rank) {
      std::cerr << "rank " << rank << " exits at step " << step << " (stage failure)" << std::endl;
      std::_Exit(3);
    }
    micro = 0;
    const int64_t this_step = step;
    current_step = step;
    const auto before = stage_weights();
    auto loss = engine->train_batch([&] {
      auto b = sample(this_step, dp_rank, micro++, gas);
      return model_input(b);
    });
    losses.push_back(loss.item<double>());
    double change = 0.0;
    const auto after = stage_weights();
    for (size_t i = 0; i < after.size(); ++i) change += (after[i] - before[i]).abs().sum().item<double>();
    record.insert(record.end(), {static_cast<double>(engine->skipped_steps()), engine->cur_scale(), change});
    norms.push_back(engine->get_global_grad_norm().value_or(0.0));
    if (!save.empty() && step + 1 == save_after) engine->save_checkpoint(save);
  }

  // An evaluation batch after training: the mean loss over the micro batches and data ranks.
  const int64_t eval_step = 1000;
  micro = 0;
  const auto evaluated = engine->eval_batch([&] { return model_input(sample(eval_step, dp_rank, micro++, gas)); });
  std::vector<ds::EvalBatchOutput> variants;
  if (eval_variants) {
    auto eval_iter = [&] { return model_input(sample(eval_step, dp_rank, micro++, gas)); };
    micro = 0;
    variants.push_back(engine->eval_batch(eval_iter, false, true, "avg", /*bcast_loss=*/false));
    micro = 0;
    variants.push_back(engine->eval_batch(eval_iter, /*return_logits=*/true, true, "none"));
    micro = 0;
    variants.push_back(engine->eval_batch(eval_iter, false, /*compute_loss=*/false, "AVG"));
  }

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
        auto l = mse(reference(b), b.labels) / static_cast<double>(gas * dp);
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
        ref_eval += mse(reference(b), b.labels).item<double>() / static_cast<double>(gas * dp);
      }
    }
  }
  // eval_batch's variants against the reference: each in units of the tolerance.
  std::vector<double> eval_checks;
  if (eval_variants) {
    torch::NoGradGuard no_grad;
    const bool last = engine->is_last_stage();
    auto tolerances = [](const torch::Tensor& got, const torch::Tensor& want) {
      if (!got.defined() || got.sizes() != want.sizes()) return 1e9;
      return ((got.to(torch::kFloat64) - want.to(torch::kFloat64)).abs() / (want.to(torch::kFloat64).abs() * 1e-5 + 1e-7))
          .max()
          .item<double>();
    };
    const auto& no_bcast = variants[0];
    const auto& none = variants[1];
    const auto& outputs = variants[2];
    eval_checks.push_back(no_bcast.loss.defined() == last ? 1.0 : 0.0);
    eval_checks.push_back(last ? tolerances(no_bcast.loss, torch::tensor(ref_eval, torch::kFloat64)) : 0.0);
    double none_error = 0.0, logits_error = 0.0;
    torch::Tensor mean_output;
    for (int64_t d = 0; d < dp; ++d) {
      for (int64_t m = 0; m < gas; ++m) {
        const auto b = sample(eval_step, d, m, gas);
        const auto out = reference(b);
        mean_output = mean_output.defined() ? mean_output + out : out.clone();
        if (!last || d != dp_rank) continue;
        none_error = std::max(none_error, static_cast<size_t>(m) < none.outputs.size()
                                              ? tolerances(none.outputs[m], mse(out, b.labels))
                                              : 1e9);
        if (m == gas - 1) logits_error = tolerances(none.logits, out);
      }
    }
    mean_output /= static_cast<double>(dp * gas);
    if (last && none.outputs.size() != static_cast<size_t>(gas)) none_error = 1e9;
    if (!last && (!none.outputs.empty() || none.logits.defined() || none.loss.defined())) none_error = 1e9;
    if (!last && outputs.loss.defined()) logits_error = 1e9;
    eval_checks.push_back(none_error);
    eval_checks.push_back(logits_error);
    eval_checks.push_back(last ? tolerances(outputs.loss, mean_output) : 0.0);
  }

  // This stage's weights against the reference's, by name.
  double worst = 0.0;
  auto named = net->named_parameters();
  for (const auto& [name, p] : reference.parameters) {
    const auto* mine = named.find(name);
    if (!mine) continue;  // another stage's layer
    if (bf16 || fp16) continue;  // the losses are compared, within their precision
    // In units of the tolerance |a - b| <= 1e-7 + 1e-5 |b|: at most 1 passes.
    const auto diff = ((*mine - p).abs() / (p.abs() * 1e-5 + 1e-7)).max().item<double>();
    worst = std::max(worst, diff);
  }
  torch::Tensor tied_weight = tied && named.find("tied_modules.embed.weight") ? named["tied_modules.embed.weight"].clone()
                                                                             : torch::empty({0});
  std::vector<torch::Tensor> result{torch::tensor(losses, torch::kFloat64), torch::tensor(ref_losses, torch::kFloat64),
                                    torch::tensor(norms, torch::kFloat64), torch::tensor(ref_norms, torch::kFloat64),
                                    torch::tensor({worst}, torch::kFloat64), tied_weight,
                                    torch::tensor({evaluated.loss.item<double>(), ref_eval}, torch::kFloat64),
                                    torch::tensor(eval_checks, torch::kFloat64), torch::tensor(record, torch::kFloat64)};
  torch::save(result, out + ".rank" + std::to_string(rank) + ".pt");
  std::cout << "rank " << rank << " stage " << engine->stage_id() << " done; largest weight difference (in tolerances) "
            << worst << std::endl;
  return 0;
}
