// One rank of an activation-checkpointing run, started by the tests' multi-process harness.
//
// Trains a small residual model with dropout twice through the engine, from the same seed and
// on the same samples: once without checkpointing (the reference) and once with the options
// given, and writes <--out>.rank<R>.pt: for each run the step losses, the gradient norms, the
// final weights (flattened, fp32) and the bytes the checkpoints held after a forward (device,
// host), the most over the steps. With --tensor_parallel 2 both ranks hold the whole model
// (replicated) and are one model-parallel group: what partition_activations splits across.
#include <iostream>

#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

namespace {

namespace ds = deepspeed;

constexpr int64_t kWidth = 16, kTokens = 6, kGlobalBatch = 8, kBlocks = 4;

// Each block also uses `shared`, a layer the model uses outside the blocks too (as a tied
// embedding is): its gradient comes from every checkpoint and from outside them, and must be
// reduced once, whole.
struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(torch::nn::Linear shared) : shared(std::move(shared)) {
    fc1 = register_module("fc1", torch::nn::Linear(kWidth, 2 * kWidth));
    fc2 = register_module("fc2", torch::nn::Linear(2 * kWidth, kWidth));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = x + 0.1 * shared->forward(x);
    return x + fc2->forward(torch::dropout(torch::gelu(fc1->forward(x)), 0.25, is_training()));
  }
  torch::nn::Linear shared{nullptr}, fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Block);

struct Net : torch::nn::Module {
  explicit Net(int64_t every) : every_(every) {
    shared = register_module("shared", torch::nn::Linear(kWidth, kWidth));
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < kBlocks; ++i) blocks->push_back(Block(shared));
    head = register_module("head", torch::nn::Linear(kWidth, 1));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = shared->forward(x);
    if (every_ > 0) {
      x = ds::checkpointing::checkpoint_sequential<BlockImpl>(blocks, x, every_);
    } else {
      for (const auto& b : *blocks) x = b->as<BlockImpl>()->forward(x);
    }
    return head->forward(x).squeeze(-1);
  }
  int64_t every_;
  torch::nn::Linear shared{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Linear head{nullptr};
};

struct RunResult {
  std::vector<double> losses, norms;
  torch::Tensor weights;
  int64_t device_bytes = 0, host_bytes = 0;
};

RunResult train(int64_t every, const ds::checkpointing::Options& options, const nlohmann::json& config,
                const std::shared_ptr<ds::Groups>& groups, int64_t steps) {
  ds::checkpointing::configure(groups, options);
  torch::manual_seed(1234);
  auto model = std::make_shared<Net>(every);
  ds::InitializeOptions init;
  init.config_json = config;
  init.mpu = groups;
  auto engine = ds::initialize(torch::nn::AnyModule(model), model, init).engine;
  const bool bf16 = engine->config().bf16_enabled();

  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const auto x = torch::randn({kGlobalBatch * steps, kTokens, kWidth}, gen);
  const auto y = torch::randn({kGlobalBatch * steps, kTokens}, gen);
  const int64_t dp = engine->dp_world_size(), gas = engine->gradient_accumulation_steps();
  const int64_t micro = kGlobalBatch / (dp * gas);
  const int64_t dp_rank = groups->data_parallel()->rank();
  RunResult r;
  while (engine->global_steps() < steps) {
    const int64_t s = engine->global_steps();
    auto step_loss = torch::zeros({1});
    for (int64_t m = 0; m < gas; ++m) {
      const int64_t first = s * kGlobalBatch + (m * dp + dp_rank) * micro;
      auto input = x.narrow(0, first, micro).to(engine->device());
      if (bf16) input = input.to(torch::kBFloat16);
      auto out = engine->forward(input);
      const auto held = ds::checkpointing::saved_bytes();
      r.device_bytes = std::max(r.device_bytes, held.device);
      r.host_bytes = std::max(r.host_bytes, held.host);
      auto loss = torch::mse_loss(out.to(torch::kFloat32), y.narrow(0, first, micro).to(engine->device()));
      step_loss += engine->backward(loss).detach().cpu().reshape({1});
      engine->step();
    }
    groups->data_parallel()->all_reduce(step_loss);
    r.losses.push_back(step_loss.item<double>() / static_cast<double>(dp));
    r.norms.push_back(engine->get_global_grad_norm().value_or(-1.0));
  }
  const auto whole = engine->gathered_parameters();
  std::vector<torch::Tensor> flat;
  for (const auto& p : model->parameters()) flat.push_back(p.detach().to(torch::kCPU, torch::kFloat32).reshape(-1));
  r.weights = torch::cat(flat);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deepspeed-cpp activation checkpointing test worker"};
  int64_t steps = 3, stage = 0, gas = 1, tensor_parallel = 1, every = 1;
  bool partition = false, cpu = false, contiguous = false, bf16 = false;
  std::string out;
  app.add_option("--steps", steps);
  app.add_option("--stage", stage);
  app.add_option("--gas", gas);
  app.add_option("--tensor_parallel", tensor_parallel);
  app.add_option("--every", every, "checkpoint every k-th block in the second run");
  app.add_flag("--partition", partition);
  app.add_flag("--cpu", cpu);
  app.add_flag("--contiguous", contiguous);
  app.add_flag("--bf16", bf16);
  app.add_option("--out", out)->required();
  CLI11_PARSE(app, argc, argv);

  try {
    auto world = ds::comm::init_distributed();
    ds::ParallelSizes sizes;
    sizes.tensor = tensor_parallel;
    auto groups = ds::Groups::create(world, sizes);
    nlohmann::json config = {{"train_batch_size", kGlobalBatch},
                             {"gradient_accumulation_steps", gas},
                             {"steps_per_print", 1000},
                             {"gradient_clipping", 1.0},
                             {"optimizer", {{"type", "Adam"}, {"params", {{"lr", 0.01}}}}},
                             {"zero_optimization", {{"stage", stage}, {"stage3_param_persistence_threshold", 0}}}};
    if (bf16) config["bf16"] = {{"enabled", true}};

    const auto reference = train(0, {}, config, groups, steps);
    ds::checkpointing::Options options;
    options.partition_activations = partition;
    options.checkpoint_in_cpu = cpu;
    options.contiguous_checkpointing = contiguous;
    if (contiguous) options.num_checkpoints = (kBlocks + every - 1) / every;
    const auto checkpointed = train(every, options, config, groups, steps);

    std::vector<torch::Tensor> result;
    for (const auto* r : {&reference, &checkpointed}) {
      result.push_back(torch::tensor(r->losses, torch::kFloat64));
      result.push_back(torch::tensor(r->norms, torch::kFloat64));
      result.push_back(r->weights);
      result.push_back(torch::tensor({r->device_bytes, r->host_bytes}, torch::kLong));
    }
    torch::save(result, out + ".rank" + std::to_string(world->rank()) + ".pt");
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
