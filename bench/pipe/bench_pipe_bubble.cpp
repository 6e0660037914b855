// The pipeline bubble on CPU ranks: one rank per stage, each stage one layer, M micro batches
// per train_batch. Against the ideal of a synchronous 1F1B pipeline, (M + S - 1) x the time one
// stage takes for one micro batch's forward and backward (measured on the stage itself, alone,
// before the pipeline runs), rank 0 prints one JSON line:
//   {"stages": S, "micro_batches": M, "work": ..., "stage_ms": t, "ideal_ms": (M+S-1) t,
//    "step_ms": median train_batch, "ratio": step / ideal}
//
// --work compute: the layer is a stack of Linear+tanh sized to about --work_ms of forward,
// on one intra-op thread. Every stage computes at once in the pipeline's steady state, so this
// measures the schedule only where the machine has a core per stage.
// --work sleep: the layer's forward waits --work_ms and its backward twice that, as a rank
// that drives an accelerator waits for its kernels: what is left is the schedule, the
// point-to-point transfers and the engine's own work, whatever the number of cores.
// Started by bench/pipe/run_bubble.sh (or any launcher setting RANK, WORLD_SIZE, ...).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <deepspeed/deepspeed.h>
#include <deepspeed/pipe_engine.h>

namespace {

namespace ds = deepspeed;
namespace pipe = deepspeed::pipe;

using Clock = std::chrono::steady_clock;

// Waits as a device kernel would: `ms` in forward, 2 x `ms` in backward.
struct Wait : torch::autograd::Function<Wait> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, double ms) {
    ctx->saved_data["ms"] = ms;
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
    return x.clone();
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(2 * ctx->saved_data["ms"].toDouble()));
    return {grads[0], torch::Tensor()};
  }
};

struct WaitLayerImpl : torch::nn::Module {
  WaitLayerImpl(int64_t width, double ms) : ms(ms) { scale = register_parameter("scale", torch::ones({width})); }
  torch::Tensor forward(torch::Tensor x) { return Wait::apply(x * scale, ms); }
  double ms;
  torch::Tensor scale;
};
TORCH_MODULE(WaitLayer);

struct ComputeLayerImpl : torch::nn::Module {
  ComputeLayerImpl(int64_t width, int64_t depth) {
    for (int64_t i = 0; i < depth; ++i) layers->push_back(torch::nn::Linear(width, width));
    register_module("layers", layers);
  }
  torch::Tensor forward(torch::Tensor x) {
    for (const auto& l : *layers) x = torch::tanh(l->as<torch::nn::Linear>()->forward(x));
    return x;
  }
  torch::nn::ModuleList layers;
};
TORCH_MODULE(ComputeLayer);

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pipeline bubble benchmark"};
  int64_t micro_batches = 8, steps = 6, width = 256, batch = 16, depth = 4;
  double work_ms = 20.0;
  std::string work = "sleep";
  app.add_option("--micro_batches", micro_batches);
  app.add_option("--steps", steps, "timed train_batch calls (after one warm-up)");
  app.add_option("--work", work)->check(CLI::IsMember({"sleep", "compute"}));
  app.add_option("--work_ms", work_ms, "sleep: forward wait per micro batch");
  app.add_option("--width", width);
  app.add_option("--batch", batch, "micro batch size");
  app.add_option("--depth", depth, "compute: Linear layers per stage");
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(1);

  auto world = ds::comm::init_distributed();
  const int64_t stages = world->size();
  const bool sleep = work == "sleep";
  auto make_layer = [&]() -> torch::nn::AnyModule {
    return sleep ? torch::nn::AnyModule(WaitLayer(width, work_ms)) : torch::nn::AnyModule(ComputeLayer(width, depth));
  };
  std::vector<pipe::Layer> layers;
  for (int64_t s = 0; s < stages; ++s) layers.emplace_back(pipe::LayerSpec(sleep ? "WaitLayer" : "ComputeLayer", make_layer));
  pipe::PipelineOptions options;
  options.num_stages = stages;
  options.partition_method = "uniform";
  options.loss_fn = [](const torch::Tensor& out, const torch::Tensor& y) { return torch::mse_loss(out, y); };
  auto net = std::make_shared<pipe::PipelineModule>(layers, options);

  // One stage's forward and backward of one micro batch, alone.
  auto x = torch::randn({batch, width});
  auto y = torch::randn({batch, width});
  std::vector<double> alone;
  {
    auto layer = make_layer();
    for (int i = 0; i < 7; ++i) {
      auto in = x.clone().requires_grad_(true);
      const auto t0 = Clock::now();
      auto out = layer.forward<torch::Tensor>(in);
      out.backward(torch::ones_like(out));
      alone.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
  }
  const double stage_ms = median(std::vector<double>(alone.begin() + 2, alone.end()));

  ds::InitializeOptions init;
  init.config_json = {{"train_micro_batch_size_per_gpu", batch},
                      {"gradient_accumulation_steps", micro_batches},
                      {"steps_per_print", 1000000},
                      {"log_level", "warning"},
                      {"optimizer", {{"type", "SGD"}, {"params", {{"lr", 1e-6}}}}}};
  auto [engine, optimizer, loader, scheduler] = ds::initialize(net, init);
  const ds::PipeDataIterator data = [&] { return ds::PipeBatch{x, y}; };
  engine->train_batch(data);  // warm-up: shapes exchanged, buffers allocated
  std::vector<double> times;
  for (int64_t s = 0; s < steps; ++s) {
    world->barrier();
    const auto t0 = Clock::now();
    engine->train_batch(data);
    times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const double step_ms = median(times);
  const double ideal_ms = static_cast<double>(micro_batches + stages - 1) * stage_ms;
  if (world->rank() == 0) {
    std::printf("{\"stages\": %lld, \"micro_batches\": %lld, \"work\": \"%s\", \"stage_ms\": %.3f, \"ideal_ms\": %.2f, "
                "\"step_ms\": %.2f, \"ratio\": %.3f}\n",
                static_cast<long long>(stages), static_cast<long long>(micro_batches), work.c_str(), stage_ms, ideal_ms,
                step_ms, step_ms / ideal_ms);
    std::fflush(stdout);
  }
  return 0;
}
