// One rank of an AutoTP run, started by the tests' multi-process harness.
//
// The model is a plain LibTorch model of two transformer-like blocks whose linear layers are
// tensor_parallel::Linear and carry the names DeepSpeed's rules know (self_attn.{q,k,v,o}_proj,
// mlp.{up,gate}_proj, mlp.down_proj), plus a replicated torch::nn::Linear "lm_head". The
// attention takes its local head count from the width of q (AutoTP splits whole heads). With
// --model custom the MLP's layers are called "expand" and "shrink" instead: names no default
// rule knows, split only through the config's partition_config. Every rank draws the whole model
// from one seed, so every layout starts from the same weights.
//
// Step s trains on samples [8s, 8s + 8), split over the data-parallel ranks. --first_step F and
// --last_step L run steps F..L-1 (default 0 and 4); --load DIR loads the checkpoint in DIR
// first, --save DIR saves one after the last step; --mlp_hidden changes the MLP's width (a
// model the checkpoint does not fit); --checkpoint_blocks runs every block through
// deepspeed::checkpointing::checkpoint (the config's activation_checkpointing section decides
// how). Inputs are cast to the model's dtype (bf16 configs) and the output back to fp32. Writes <--out>.rank<R>.pt: the step losses (averaged over the data group), the gradient norms, every
// parameter whole (split ones gathered over the tensor group), the sizes and how many layers
// are column- and row-parallel.
#include <iostream>

#include <deepspeed/deepspeed.h>
#include <deepspeed/tensor_parallel.h>
#include <torch/torch.h>

namespace {

namespace ds = deepspeed;
namespace tp = deepspeed::tensor_parallel;

constexpr int64_t kDim = 8, kHeads = 4, kSeq = 4, kOut = 5, kGlobalBatch = 8, kSteps = 4;
int64_t kHidden = 16;

struct Attention : torch::nn::Module {
  Attention() {
    q_proj = register_module("q_proj", tp::Linear(kDim, kDim));
    // No key bias: softmax ignores it (it adds the same q.b to every key of a query), so its
    // gradient is rounding noise, which Adam would turn into steps of full size.
    k_proj = register_module("k_proj", tp::Linear(torch::nn::LinearOptions(kDim, kDim).bias(false)));
    v_proj = register_module("v_proj", tp::Linear(kDim, kDim));
    o_proj = register_module("o_proj", tp::Linear(kDim, kDim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), s = x.size(1), head_dim = kDim / kHeads;
    auto q = q_proj(x), k = k_proj(x), v = v_proj(x);
    const int64_t heads = q.size(-1) / head_dim;  // this rank's heads
    auto split = [&](const torch::Tensor& t) { return t.view({b, s, heads, head_dim}).transpose(1, 2); };
    auto scores = torch::matmul(split(q), split(k).transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim));
    auto out = torch::matmul(torch::softmax(scores, -1), split(v)).transpose(1, 2).reshape({b, s, heads * head_dim});
    return o_proj(out);
  }
  tp::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
};

struct Mlp : torch::nn::Module {
  explicit Mlp(bool custom) {
    up = register_module(custom ? "expand" : "up_proj", tp::Linear(kDim, kHidden));
    gate = register_module(custom ? "gate_expand" : "gate_proj", tp::Linear(kDim, kHidden));
    down = register_module(custom ? "shrink" : "down_proj", tp::Linear(kHidden, kDim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return down(torch::silu(gate(x)) * up(x)); }
  tp::Linear up{nullptr}, gate{nullptr}, down{nullptr};
};

struct Block : torch::nn::Module {
  explicit Block(bool custom) {
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({kDim})));
    self_attn = register_module("self_attn", std::make_shared<Attention>());
    mlp = register_module("mlp", std::make_shared<Mlp>(custom));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = x + self_attn->forward(norm(x));
    return x + mlp->forward(x);
  }
  torch::nn::LayerNorm norm{nullptr};
  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<Mlp> mlp;
};

struct Model : torch::nn::Module {
  Model(bool custom, bool checkpoint_blocks) : checkpoint_blocks(checkpoint_blocks) {
    torch::manual_seed(42);
    for (int i = 0; i < 2; ++i) blocks.push_back(register_module("layers_" + std::to_string(i), std::make_shared<Block>(custom)));
    lm_head = register_module("lm_head", torch::nn::Linear(kDim, kOut));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& b : blocks) {
      x = checkpoint_blocks ? ds::checkpointing::checkpoint([b](const torch::Tensor& h) { return b->forward(h); }, x)
                            : b->forward(x);
    }
    return lm_head(x).mean(1);
  }
  std::vector<std::shared_ptr<Block>> blocks;
  torch::nn::Linear lm_head{nullptr};
  bool checkpoint_blocks;
};

torch::Tensor gathered(const torch::Tensor& part, int64_t dim, ds::comm::ProcessGroup& group) {
  const auto mine = part.detach().to(torch::kFloat32).contiguous();  // Gloo has no bf16
  if (group.size() == 1) return mine.clone();
  std::vector<torch::Tensor> parts(static_cast<size_t>(group.size()));
  for (auto& p : parts) p = torch::empty_like(mine);
  group.all_gather(parts, mine);
  return torch::cat(parts, dim);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deepspeed-cpp AutoTP test worker"};
  std::string out, model_kind = "llama", save_dir, load_dir;
  int64_t first_step = 0, last_step = kSteps;
  app.add_option("--out", out)->required();
  app.add_option("--save", save_dir);
  app.add_option("--load", load_dir);
  app.add_option("--first_step", first_step);
  app.add_option("--last_step", last_step);
  app.add_option("--mlp_hidden", kHidden);
  bool checkpoint_blocks = false;
  app.add_flag("--checkpoint_blocks", checkpoint_blocks);
  app.add_option("--model", model_kind, "llama (DeepSpeed's names) or custom");
  ds::add_config_arguments(app);
  CLI11_PARSE(app, argc, argv);

  try {
    auto model = std::make_shared<Model>(model_kind == "custom", checkpoint_blocks);
    auto [engine, optimizer, loader, scheduler] = ds::initialize(app, torch::nn::AnyModule(model), model, {});
    auto& tensor_group = *engine->groups()->tensor_parallel();
    auto& data_group = *engine->groups()->data_parallel();

    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    const auto x = torch::randn({kGlobalBatch * kSteps, kSeq, kDim}, gen);
    const auto y = torch::randn({kGlobalBatch * kSteps, kOut}, gen);
    const int64_t dp = data_group.size(), micro = kGlobalBatch / dp;
    std::vector<double> losses, norms;
    if (!load_dir.empty()) engine->load_checkpoint(load_dir);
    for (int64_t s = first_step; s < last_step; ++s) {
      const int64_t first = s * kGlobalBatch + data_group.rank() * micro;
      const auto dtype = model->lm_head->weight.scalar_type();
      auto out = engine->forward(x.narrow(0, first, micro).to(dtype)).to(torch::kFloat32);
      auto loss = torch::mse_loss(out, y.narrow(0, first, micro));
      auto step_loss = engine->backward(loss).detach().reshape({1}).clone();
      engine->step();
      data_group.all_reduce(step_loss);
      losses.push_back(step_loss.item<double>() / static_cast<double>(dp));
      norms.push_back(engine->get_global_grad_norm().value_or(-1.0));
    }

    if (!save_dir.empty()) engine->save_checkpoint(save_dir);
    std::vector<torch::Tensor> result{torch::tensor(losses, torch::kFloat64), torch::tensor(norms, torch::kFloat64)};
    {
      const auto whole = engine->gathered_parameters();
      for (const auto& item : model->named_modules("", false)) {
        auto* linear = item.value()->as<tp::LinearImpl>();
        for (const auto& p : item.value()->named_parameters(false)) {
          int64_t dim = -1;
          if (linear && linear->partitioning() == tp::Partition::Column) dim = 0;
          if (linear && linear->partitioning() == tp::Partition::Row && p.key() == "weight") dim = 1;
          result.push_back(dim < 0 ? p.value().detach().to(torch::kFloat32).clone() : gathered(p.value(), dim, tensor_group));
        }
      }
    }
    int64_t columns = 0, rows = 0;
    for (const auto& m : model->modules()) {
      if (auto* linear = m->as<tp::LinearImpl>()) {
        columns += linear->partitioning() == tp::Partition::Column;
        rows += linear->partitioning() == tp::Partition::Row;
      }
    }
    result.push_back(torch::tensor({engine->dp_world_size(), engine->mp_world_size(), columns, rows}, torch::kLong));
    torch::save(result, out + ".rank" + std::to_string(engine->groups()->world()->rank()) + ".pt");
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
