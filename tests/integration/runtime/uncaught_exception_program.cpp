// A training program whose LibTorch call fails after initialize and which catches nothing:
// what a rank prints then (uncaught_exception_test.cpp).
#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

struct Net : torch::nn::Module {
  Net() { fc = register_module("fc", torch::nn::Linear(4, 1)); }
  torch::Tensor forward(torch::Tensor x) { return fc->forward(x); }
  torch::nn::Linear fc{nullptr};
};

int main() {
  auto net = std::make_shared<Net>();
  deepspeed::InitializeOptions options;
  options.config = R"({"train_batch_size": 1, "steps_per_print": 1000})";
  auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(net, options);
  engine->forward(torch::ones({1, 3}, engine->device()));  // 3 features for a Linear(4, 1)
  return 0;
}
