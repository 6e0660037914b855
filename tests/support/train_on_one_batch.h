// Trains an engine for `steps` optimizer steps on one fixed batch with a mean-squared-error
// loss (the model's output cast to fp32 against fp32 targets) and returns the losses: the
// smallest "does it still learn" check, shared by tests that set the engine up differently.
#pragma once

#include <vector>

#include <deepspeed/engine.h>
#include <torch/torch.h>

namespace deepspeed::testing {

inline std::vector<double> train_on_one_batch(Engine& engine, const torch::Tensor& x, const torch::Tensor& y,
                                              int steps) {
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    auto loss = torch::mse_loss(engine.forward(x).to(torch::kFloat32), y);
    engine.backward(loss);
    engine.step();
    losses.push_back(loss.item<double>());
  }
  return losses;
}

}  // namespace deepspeed::testing
