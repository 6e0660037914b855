// One rank of a Ulysses (sequence-parallel) run, started by the tests' multi-process harness.
//
// The model: a causal self-attention block (q, k, v and out projections, replicated) whose
// attention is DistributedAttention over the engine's sequence-parallel group, then a linear
// head per token. Each rank reads its data-parallel share of the samples and keeps its slice of
// every sequence (sequence_shard); its loss is the mean over its own tokens. Run with
// sequence_parallel_size 1 on one rank it is the whole model.
//
// Writes <--out>.rank<R>.pt: the step losses (averaged over the data x sequence group), the
// gradient norms, every parameter, and the sizes.
#include <iostream>

#include <deepspeed/deepspeed.h>
#include <deepspeed/sequence.h>
#include <torch/torch.h>

namespace {

namespace ds = deepspeed;

constexpr int64_t kDim = 8, kHeads = 4, kSeq = 8, kGlobalBatch = 8, kSteps = 4;

// The local attention: causal softmax attention over [batch, seq, heads, head_dim].
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  auto qh = q.transpose(1, 2), kh = k.transpose(1, 2), vh = v.transpose(1, 2);
  auto scores = torch::matmul(qh, kh.transpose(-1, -2)) / std::sqrt(static_cast<double>(q.size(-1)));
  const int64_t s = q.size(1);
  auto mask = torch::ones({s, s}, torch::kBool).triu(1);
  scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1), vh).transpose(1, 2);
}

struct Model : torch::nn::Module {
  Model() : attention(causal_attention, nullptr) {
    torch::manual_seed(42);
    q = register_module("q", torch::nn::Linear(kDim, kDim));
    // No key bias: softmax ignores it, so its gradient is rounding noise that Adam would
    // turn into steps of full size.
    k = register_module("k", torch::nn::Linear(torch::nn::LinearOptions(kDim, kDim).bias(false)));
    v = register_module("v", torch::nn::Linear(kDim, kDim));
    o = register_module("o", torch::nn::Linear(kDim, kDim));
    head = register_module("head", torch::nn::Linear(kDim, 1));
  }
  // x: [batch, local seq, dim]
  torch::Tensor forward(torch::Tensor x) {
    const int64_t b = x.size(0), s = x.size(1);
    auto heads = [&](const torch::Tensor& t) { return t.view({b, s, kHeads, kDim / kHeads}); };
    auto context = attention(heads(q(x)), heads(k(x)), heads(v(x)));
    auto h = x + o(context.reshape({b, s, kDim}));
    return head(torch::tanh(h)).squeeze(-1);
  }
  ds::sequence::DistributedAttention attention;
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr}, head{nullptr};
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deepspeed-cpp Ulysses test worker"};
  std::string out;
  app.add_option("--out", out)->required();
  ds::add_config_arguments(app);
  CLI11_PARSE(app, argc, argv);

  try {
    // The sequence group comes from the config (sequence_parallel_size) at initialize.
    auto model = std::make_shared<Model>();
    auto [engine, optimizer, loader, scheduler] = ds::initialize(app, torch::nn::AnyModule(model), model, {});
    model->attention.set_group(engine->groups()->sequence_parallel());
    auto& sequence_group = *engine->groups()->sequence_parallel();
    auto& data_group = *engine->groups()->data_parallel();
    auto& reduce_group = *engine->groups()->sequence_data_parallel();

    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    const auto x = torch::randn({kGlobalBatch * kSteps, kSeq, kDim}, gen);
    const auto y = torch::randn({kGlobalBatch * kSteps, kSeq}, gen);
    const int64_t dp = data_group.size(), micro = kGlobalBatch / dp;
    std::vector<double> losses, norms;
    for (int64_t s = 0; s < kSteps; ++s) {
      const int64_t first = s * kGlobalBatch + data_group.rank() * micro;
      auto input = ds::sequence::sequence_shard(x.narrow(0, first, micro), 1, sequence_group);
      auto target = ds::sequence::sequence_shard(y.narrow(0, first, micro), 1, sequence_group);
      auto loss = torch::mse_loss(engine->forward(input), target);
      auto step_loss = engine->backward(loss).detach().reshape({1}).clone();
      engine->step();
      reduce_group.all_reduce(step_loss);
      losses.push_back(step_loss.item<double>() / static_cast<double>(reduce_group.size()));
      norms.push_back(engine->get_global_grad_norm().value_or(-1.0));
    }
    std::vector<torch::Tensor> result{torch::tensor(losses, torch::kFloat64), torch::tensor(norms, torch::kFloat64)};
    {
      const auto whole = engine->gathered_parameters();
      for (const auto& p : model->parameters()) result.push_back(p.detach().clone());
    }
    result.push_back(torch::tensor({engine->dp_world_size(), engine->sequence_parallel_size()}, torch::kLong));
    torch::save(result, out + ".rank" + std::to_string(engine->groups()->world()->rank()) + ".pt");
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
