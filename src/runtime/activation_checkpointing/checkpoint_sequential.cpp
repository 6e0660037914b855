#include <deepspeed/activation_checkpointing.h>

namespace deepspeed::checkpointing {

torch::Tensor checkpoint_sequential(const torch::nn::Sequential& modules, torch::Tensor x, int64_t every) {
  std::size_t i = 0;
  for (auto module : *modules) {  // AnyModule::forward is not const; a copy shares the module
    const bool checkpointed = every > 0 && i++ % static_cast<std::size_t>(every) == 0;
    if (checkpointed) {
      x = checkpoint([module](const torch::Tensor& in) mutable { return module.forward(in); }, x);
    } else {
      x = module.forward(x);
    }
  }
  return x;
}

}  // namespace deepspeed::checkpointing
