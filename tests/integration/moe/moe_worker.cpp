// One rank of an expert-parallel check: the MoE layer with its experts split over ep_size
// ranks against the same layer whole on this rank (the same weights). Each rank's output, l_aux
// and input/gate gradients must equal the whole layer's on the same tokens, and each expert's
// gradient the sum over its expert-parallel group of the whole layer's. Prints
// "max_diff <value>".
#include <iostream>
#include <map>

#include <deepspeed/deepspeed.h>
#include <deepspeed/moe.h>
#include <fmt/format.h>

namespace {

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(16, 32));
    fc2 = register_module("fc2", torch::nn::Linear(32, 16));
  }
  torch::Tensor forward(torch::Tensor x) { return fc2->forward(torch::tanh(fc1->forward(x))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

const std::string kExperts = "deepspeed_moe.experts.deepspeed_experts.";

// The whole layer's name for a parameter of local expert i on expert-parallel rank r.
std::string whole_name(const std::string& name, int64_t ep_rank, int64_t local) {
  if (name.rfind(kExperts, 0) != 0) return name;
  const auto rest = name.substr(kExperts.size());
  const auto dot = rest.find('.');
  const int64_t i = std::stoll(rest.substr(0, dot));
  return kExperts + std::to_string(ep_rank * local + i) + rest.substr(dot);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deepspeed-cpp MoE expert-parallel worker"};
  int64_t ep_size = 1, k = 1;
  double capacity_factor = 1.0;
  bool drop_tokens = true;
  app.add_option("--ep_size", ep_size);
  app.add_option("--k", k);
  app.add_option("--capacity_factor", capacity_factor);
  app.add_option("--drop_tokens", drop_tokens);
  CLI11_PARSE(app, argc, argv);
  try {
    torch::NoGradGuard off;  // re-enabled below for the forward passes
    auto world = deepspeed::comm::init_distributed();
    auto groups = deepspeed::Groups::create(world, {});
    deepspeed::moe::MoEOptions o;
    o.num_experts = 4;
    o.k = k;
    o.capacity_factor = capacity_factor;
    o.min_capacity = 0;
    o.drop_tokens = drop_tokens;
    o.use_rts = false;
    o.top2_2nd_expert_sampling = false;
    auto factory = [] { return torch::nn::AnyModule(std::make_shared<Mlp>()); };
    torch::manual_seed(1);
    deepspeed::moe::MoE whole(16, factory, o);
    o.ep_size = ep_size;
    deepspeed::moe::MoE split(16, factory, o);
    split->set_deepspeed_parallelism(*groups);
    const auto& ep_group = groups->expert_parallel(ep_size);
    const int64_t local = split->num_local_experts();
    auto whole_params = whole->named_parameters();
    for (auto& p : split->named_parameters()) {
      p.value().copy_(whole_params[whole_name(p.key(), ep_group->rank(), local)]);
    }

    torch::manual_seed(100 + world->rank());
    const auto tokens = torch::randn({2, 6, 16});
    const auto weights = torch::randn({2, 6, 16});
    torch::GradMode::set_enabled(true);
    auto run = [&](deepspeed::moe::MoE& layer) {
      auto x = tokens.clone().requires_grad_(true);
      auto [out, l_aux, counts] = layer->forward(x);
      ((out * weights).sum() + l_aux).backward();
      return std::make_tuple(out.detach(), l_aux.detach(), x.grad());
    };
    const auto [out_whole, aux_whole, grad_whole] = run(whole);
    const auto [out_split, aux_split, grad_split] = run(split);
    torch::GradMode::set_enabled(false);
    double diff = 0.0;
    auto note = [&](const std::string& what, const torch::Tensor& a, const torch::Tensor& b) {
      const double d = (a - b).abs().max().item<double>();
      if (d > 1e-5) std::cout << fmt::format("differs: {} by {:.3e}\n", what, d);
      diff = std::max(diff, d);
    };
    note("output", out_whole, out_split);
    note("l_aux", aux_whole, aux_split);
    note("input gradient", grad_whole, grad_split);
    // Each expert's gradient: the whole layer's summed over the expert-parallel group.
    // Every expert's gradient summed over the group (in one order on every rank), then each
    // local expert against its whole counterpart.
    std::map<std::string, torch::Tensor> summed;
    for (const auto& p : whole_params) {
      auto g = p.value().grad().clone();
      if (p.key().rfind(kExperts, 0) == 0) ep_group->all_reduce(g);
      summed[p.key()] = g;
    }
    for (auto& p : split->named_parameters()) {
      const auto& reference = summed.at(whole_name(p.key(), ep_group->rank(), local));
      note(p.key() + " gradient", p.value().grad(), reference);
    }
    std::cout << fmt::format("max_diff {:.3e}\n", diff) << std::flush;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
