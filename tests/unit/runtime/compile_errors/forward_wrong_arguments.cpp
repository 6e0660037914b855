// Must not compile: ModelEngine::forward with an argument the model's forward cannot take.
// runtime.forward_with_wrong_arguments_does_not_compile checks the compiler's message.
#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

struct Net : torch::nn::Module {
  Net() { fc = register_module("fc", torch::nn::Linear(4, 1)); }
  torch::Tensor forward(torch::Tensor x) { return fc->forward(x); }
  torch::nn::Linear fc{nullptr};
};

int main() {
  auto net = std::make_shared<Net>();
  auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(net);
  engine->forward(std::string("not a tensor"));
}
