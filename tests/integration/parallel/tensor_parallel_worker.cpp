// One rank of a data x tensor parallel run, started by the tests' multi-process harness.
//
// The model is written for tensor parallelism by hand, as a Megatron user writes it: a
// replicated linear layer, then a column-parallel layer (this tensor rank's rows of W1 and b1),
// then a row-parallel layer (its columns of W2) whose partial outputs are summed over the
// tensor-parallel group, plus a replicated bias. With --tensor_parallel 1 it is the whole model
// on every rank; every rank draws the whole model from one seed and keeps its part, so runs of
// any layout start from the same weights.
//
// Step s trains on samples [8s, 8s + 8): split into data-parallel ranks x accumulation steps
// equal micro batches. Writes <--out>.rank<R>.pt: the step losses (averaged over the
// data-parallel group), the gradient norms, the whole parameters (gathered over the tensor
// group), this rank's memory report, and the group sizes.
#include <iostream>

#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

namespace {

namespace ds = deepspeed;

// The tensor-parallel group of this process (a test program's one piece of global state).
ds::comm::ProcessGroup* tensor_group = nullptr;

torch::Tensor all_reduced(const torch::Tensor& t) {
  if (tensor_group->size() == 1) return t;
  auto out = t.detach().clone();
  tensor_group->all_reduce(out);
  return out;
}

// Megatron's copy_to_tensor_model_parallel_region: identity forward, summed gradient backward.
struct CopyToTensorParallel : torch::autograd::Function<CopyToTensorParallel> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, torch::Tensor x) { return x.view_as(x); }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*, torch::autograd::tensor_list g) {
    return {all_reduced(g[0])};
  }
};

// Megatron's reduce_from_tensor_model_parallel_region: summed forward, identity backward.
struct ReduceFromTensorParallel : torch::autograd::Function<ReduceFromTensorParallel> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, torch::Tensor x) { return all_reduced(x); }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*, torch::autograd::tensor_list g) {
    return {g[0]};
  }
};

constexpr int64_t kIn = 6, kHidden = 8, kOut = 3, kGlobalBatch = 8, kMaxSteps = 32;

struct TensorParallelMlp : torch::nn::Module {
  TensorParallelMlp(int64_t tp, int64_t tp_rank) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
    auto draw = [&](std::vector<int64_t> shape) { return 0.5 * torch::randn(shape, gen); };
    auto l0w = draw({kIn, kIn}), l0b = draw({kIn}), w1 = draw({kHidden, kIn}), b1 = draw({kHidden});
    auto w2 = draw({kOut, kHidden}), b2 = draw({kOut});
    const int64_t part = kHidden / tp;
    l0_weight = register_parameter("l0_weight", l0w);
    l0_bias = register_parameter("l0_bias", l0b);
    w1_part = register_parameter("w1", w1.narrow(0, tp_rank * part, part).clone());
    b1_part = register_parameter("b1", b1.narrow(0, tp_rank * part, part).clone());
    w2_part = register_parameter("w2", w2.narrow(1, tp_rank * part, part).clone());
    b2_ = register_parameter("b2", b2);
  }
  torch::Tensor forward(torch::Tensor x) {
    auto h = torch::tanh(torch::linear(x, l0_weight, l0_bias));
    h = torch::tanh(torch::linear(CopyToTensorParallel::apply(h), w1_part, b1_part));
    return ReduceFromTensorParallel::apply(torch::linear(h, w2_part)) + b2_;
  }
  // The split parameters (Megatron's tensor_model_parallel ones).
  std::vector<torch::Tensor> split() const { return {w1_part, b1_part, w2_part}; }

  torch::Tensor l0_weight, l0_bias, w1_part, b1_part, w2_part, b2_;
};

torch::Tensor gathered(const torch::Tensor& part, int64_t dim) {
  if (tensor_group->size() == 1) return part.detach().clone();
  std::vector<torch::Tensor> parts(static_cast<size_t>(tensor_group->size()));
  for (auto& p : parts) p = torch::empty_like(part);
  tensor_group->all_gather(parts, part.detach().contiguous());
  return torch::cat(parts, dim);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deepspeed-cpp tensor-parallel test worker"};
  int64_t steps = 6, tensor_parallel = 1, save_after = -1;
  std::string out, save_dir, load_dir;
  app.add_option("--steps", steps, "train until this global step");
  app.add_option("--tensor_parallel", tensor_parallel);
  app.add_option("--out", out)->required();
  app.add_option("--save_dir", save_dir, "save a checkpoint here after --save_after steps");
  app.add_option("--save_after", save_after);
  app.add_option("--load_dir", load_dir, "start from the latest checkpoint here");
  ds::add_config_arguments(app);
  CLI11_PARSE(app, argc, argv);

  try {
    auto world = ds::comm::init_distributed();
    ds::ParallelSizes sizes;
    sizes.tensor = tensor_parallel;
    auto groups = ds::Groups::create(world, sizes);
    tensor_group = groups->tensor_parallel().get();
    auto model = std::make_shared<TensorParallelMlp>(tensor_parallel, groups->tensor_parallel()->rank());

    ds::InitializeOptions options;
    options.mpu = groups;
    options.tensor_parallel_parameters = model->split();
    auto [engine, optimizer, loader, scheduler] = ds::initialize(app, torch::nn::AnyModule(model), model, options);
    if (!load_dir.empty()) engine->load_checkpoint(load_dir);

    // The same samples whatever --steps says (a run that stops early and one that resumes see
    // the data of one that does not).
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    if (steps > kMaxSteps) throw std::invalid_argument("--steps: at most " + std::to_string(kMaxSteps));
    const auto x = torch::randn({kGlobalBatch * kMaxSteps, kIn}, gen);
    const auto y = torch::randn({kGlobalBatch * kMaxSteps, kOut}, gen);
    const int64_t dp = engine->dp_world_size(), gas = engine->gradient_accumulation_steps();
    const int64_t micro = kGlobalBatch / (dp * gas);
    const int64_t dp_rank = groups->data_parallel()->rank();
    std::vector<double> losses, norms;
    while (engine->global_steps() < steps) {
      const int64_t s = engine->global_steps();
      auto step_loss = torch::zeros({1});
      for (int64_t m = 0; m < gas; ++m) {
        const int64_t first = s * kGlobalBatch + (m * dp + dp_rank) * micro;
        auto loss = torch::mse_loss(engine->forward(x.narrow(0, first, micro)), y.narrow(0, first, micro));
        step_loss += engine->backward(loss).detach().reshape({1});
        engine->step();
      }
      groups->data_parallel()->all_reduce(step_loss);
      losses.push_back(step_loss.item<double>() / static_cast<double>(dp));
      norms.push_back(engine->get_global_grad_norm().value_or(-1.0));
      if (engine->global_steps() == save_after && !save_dir.empty()) engine->save_checkpoint(save_dir);
    }

    const auto report = engine->memory_report();
    std::vector<torch::Tensor> result{torch::tensor(losses, torch::kFloat64), torch::tensor(norms, torch::kFloat64)};
    {
      const auto whole = engine->gathered_parameters();
      result.push_back(model->l0_weight.detach().clone());
      result.push_back(model->l0_bias.detach().clone());
      result.push_back(gathered(model->w1_part, 0));
      result.push_back(gathered(model->b1_part, 0));
      result.push_back(gathered(model->w2_part, 1));
      result.push_back(model->b2_.detach().clone());
    }
    result.push_back(torch::tensor({report.master_weights, report.optimizer_states, engine->dp_world_size(),
                                    engine->mp_world_size()},
                                   torch::kLong));
    torch::save(result, out + ".rank" + std::to_string(world->rank()) + ".pt");
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
