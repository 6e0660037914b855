// One rank of tensor-parallel inference, started by the tests' multi-process harness: the
// tiny GPT and the LLaMA-style test model (the same weights on every rank, from one seed)
// run with tensor_parallel.tp_size = the world size, and without tensor parallelism on this
// rank alone. Exits 1 when the greedy tokens differ or the logits differ by more than 1e-4.
#include <iostream>

#include <deepspeed/comm.h>
#include <deepspeed/inference.h>
#include <torch/torch.h>

#include "gpt_model.h"
#include "llama_test_model.h"

namespace {

using Prompts = std::vector<std::vector<int64_t>>;

bool same(const std::string& what, const std::shared_ptr<torch::nn::Module>& model, int64_t heads, int64_t vocab,
          const std::shared_ptr<deepspeed::comm::ProcessGroup>& world) {
  const nlohmann::json base = {{"dtype", "fp32"}, {"replace_with_kernel_inject", true},
                               {"config", {{"num_attention_heads", heads}}}};
  auto split = base;
  split["tensor_parallel"] = {{"tp_size", world->size()}};
  auto one = deepspeed::init_inference(model, base);
  auto many = deepspeed::init_inference(model, split, world);
  const Prompts prompts = {{1, 2, 3, 4, 5}, {7}, {3, 1, 4, 1, 5, 9, 2, 6}};  // below both vocabularies
  const auto a = one->generate(prompts, {.max_new_tokens = 8});
  const auto b = many->generate(prompts, {.max_new_tokens = 8});
  auto tokens = torch::randint(vocab, {2, 9}, torch::kLong);
  world->broadcast(tokens, 0);
  const double diff = (one->forward(tokens) - many->forward(tokens)).abs().max().item<double>();
  std::cout << what << ": rank " << world->rank() << " logits differ by at most " << diff << "\n";
  if (a != b) std::cout << what << ": the greedy tokens of tp " << world->size() << " differ from tp 1\n";
  return a == b && diff < 1e-4;
}

}  // namespace

int main() {
  try {
    auto world = deepspeed::comm::init_distributed();
    torch::manual_seed(1);
    auto gpt = gpt::Gpt(gpt::preset("tiny"));
    torch::manual_seed(2);
    auto llama = std::make_shared<deepspeed::inference_test::LlamaModel>(deepspeed::inference_test::LlamaConfig{});
    const bool ok = same("gpt", gpt.ptr(), 4, 256, world) && same("llama", llama, 4, 96, world);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "inference_tp_worker: " << e.what() << "\n";
    return 2;
  }
}
