// One rank of a data-parallel run whose model holds an MoE layer with its experts split over
// --ep_size ranks, trained by the engine (fp32, stage 0, gradient accumulation, clipping at 0.2).
// The initial weights are the same whatever ep_size (each rank's experts are copied from one
// whole layer), and so is the data: every ep_size must give the same losses and norms.
// Prints "losses <hex floats>" and "norms <hex floats>" (rank 0's view; every rank's losses
// are all-reduced). --save_after N saves a checkpoint after step N and goes on; --load_dir
// starts from a checkpoint and trains the steps after it (the same data as a run from the start).
#include <iostream>
#include <map>

#include <deepspeed/deepspeed.h>
#include <deepspeed/moe.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace ds = deepspeed;

namespace {

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 8));
  }
  torch::Tensor forward(torch::Tensor x) { return fc2->forward(torch::tanh(fc1->forward(x))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

ds::moe::MoEOptions moe_options(int64_t ep_size) {
  ds::moe::MoEOptions o;
  o.num_experts = 4;
  o.ep_size = ep_size;
  o.k = 2;
  o.capacity_factor = 1.0;
  o.min_capacity = 0;
  o.use_rts = false;
  o.top2_2nd_expert_sampling = false;
  return o;
}

struct Net : torch::nn::Module {
  explicit Net(int64_t ep_size) {
    in = register_module("in", torch::nn::Linear(4, 8));
    moe = register_module("moe", ds::moe::MoE(8, [] { return torch::nn::AnyModule(std::make_shared<Mlp>()); },
                                               moe_options(ep_size)));
    out = register_module("out", torch::nn::Linear(8, 1));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto [h, aux, counts] = moe->forward(torch::tanh(in->forward(x)));
    l_aux = aux;
    return out->forward(h);
  }
  torch::nn::Linear in{nullptr}, out{nullptr};
  ds::moe::MoE moe{nullptr};
  torch::Tensor l_aux;
};

const std::string kExperts = "moe.deepspeed_moe.experts.deepspeed_experts.";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deepspeed-cpp MoE training worker"};
  int64_t ep_size = 1, steps = 4, zero_stage = 0;
  int64_t save_after = -1;
  bool no_split = false;
  std::string save_dir, load_dir, precision = "fp32";
  app.add_option("--ep_size", ep_size);
  app.add_option("--steps", steps, "train up to this step");
  app.add_option("--zero_stage", zero_stage);
  app.add_option("--precision", precision)->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--save_dir", save_dir, "save a checkpoint here after training (or after --save_after steps)");
  app.add_option("--save_after", save_after, "save after this many steps, then go on");
  app.add_option("--load_dir", load_dir, "start from the latest checkpoint here");
  app.add_flag("--no_split", no_split, "one optimizer group for everything (experts not in groups of their own)");
  CLI11_PARSE(app, argc, argv);
  try {
    auto world = ds::comm::init_distributed();
    auto groups = ds::Groups::create(world, {});
    // Every rank draws the whole model; the experts this rank holds are copied from it.
    torch::manual_seed(1);
    auto whole = std::make_shared<Net>(1);
    auto model = std::make_shared<Net>(ep_size);
    groups->create_expert_groups(ep_size);
    const int64_t ep_rank = groups->expert_parallel(ep_size)->rank();
    const int64_t local = 4 / ep_size;
    {
      torch::NoGradGuard no_grad;
      auto source = whole->named_parameters();
      for (auto& p : model->named_parameters()) {
        std::string name = p.key();
        if (name.rfind(kExperts, 0) == 0) {
          const auto rest = name.substr(kExperts.size());
          const auto dot = rest.find('.');
          name = kExperts + std::to_string(ep_rank * local + std::stoll(rest.substr(0, dot))) + rest.substr(dot);
        }
        p.value().copy_(source[name]);
      }
    }
    ds::InitializeOptions options;
    options.mpu = groups;
    options.config_json = nlohmann::json::parse(fmt::format(
        R"({{"train_micro_batch_size_per_gpu": 6, "gradient_accumulation_steps": 2, "gradient_clipping": 0.2,
            "steps_per_print": 100, "zero_optimization": {{"stage": {}}},
            "bf16": {{"enabled": {}}}, "optimizer": {{"type": "Adam", "params": {{"lr": 0.05}}}}}})",
        zero_stage, precision == "bf16"));
    ds::ParamGroup all;
    all.params = model->parameters();
    options.param_groups = no_split ? std::vector<ds::ParamGroup>{all}
                                    : ds::moe::split_params_into_different_moe_groups_for_optimizer({all}, *model);
    auto engine = ds::initialize(model, options).engine;
    if (!load_dir.empty() && !engine->load_checkpoint(load_dir)) throw std::runtime_error("nothing loaded");
    const int64_t first_step = engine->global_steps();

    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    const int64_t dp = world->size(), gas = 2, micro = 6;
    const auto x = torch::randn({steps * gas * dp * micro, 4}, gen);
    const auto y = torch::randn({steps * gas * dp * micro, 1}, gen);
    std::vector<std::string> losses, norms;
    for (int64_t s = first_step; s < steps; ++s) {
      auto step_loss = torch::zeros({1});
      for (int64_t m = 0; m < gas; ++m) {
        const int64_t first = ((s * gas + m) * dp + world->rank()) * micro;
        auto prediction = engine->forward(x.narrow(0, first, micro).to(engine->model_dtype()));
        auto loss = torch::mse_loss(prediction.to(torch::kFloat32), y.narrow(0, first, micro)) + 0.01 * model->l_aux;
        step_loss += engine->backward(loss).detach().reshape({1});
        engine->step();
      }
      world->all_reduce(step_loss);
      losses.push_back(fmt::format("{:a}", step_loss.item<double>()));
      norms.push_back(fmt::format("{:a}", engine->get_global_grad_norm().value_or(-1.0)));
      if (s + 1 == save_after) engine->save_checkpoint(save_dir);
    }
    std::cout << fmt::format("losses {}\nnorms {}\n", fmt::join(losses, ","), fmt::join(norms, ",")) << std::flush;
    if (!save_dir.empty() && save_after < 0) engine->save_checkpoint(save_dir);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
