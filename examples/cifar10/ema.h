// --use_ema: an exponential moving average of the model's weights, evaluated instead of the
// last weights (the averaged weights are usually a little more accurate than the noisy last
// step). As timm's ModelEmaV2, the decay ramps up as min(decay, (1 + n) / (10 + n)) so that
// the average is not dominated by the random initial weights in short runs.
#pragma once

#include <algorithm>
#include <vector>

#include <torch/nn/module.h>
#include <torch/utils.h>

namespace cifar10 {

class WeightEma {
 public:
  WeightEma(const torch::nn::Module& model, double decay) : decay_(decay) {
    torch::NoGradGuard no_grad;
    for (const auto& t : model.parameters()) average_.push_back(t.detach().clone());
    for (const auto& t : model.buffers()) average_.push_back(t.detach().clone());
  }

  // After each optimizer step.
  void update(const torch::nn::Module& model) {
    torch::NoGradGuard no_grad;
    ++updates_;
    const double d = std::min(decay_, (1.0 + static_cast<double>(updates_)) / (10.0 + static_cast<double>(updates_)));
    std::size_t i = 0;
    for (const auto& t : model.parameters()) average_[i++].mul_(d).add_(t.detach(), 1.0 - d);
    for (const auto& t : model.buffers()) average_[i++].copy_(t);  // running statistics: copied, as timm
  }

  // Writes the averaged weights into the model (for evaluation at the end of training).
  void copy_to(torch::nn::Module& model) const {
    torch::NoGradGuard no_grad;
    std::size_t i = 0;
    for (auto& t : model.parameters()) t.copy_(average_[i++]);
    for (auto& t : model.buffers()) t.copy_(average_[i++]);
  }

 private:
  double decay_;
  long updates_ = 0;
  std::vector<torch::Tensor> average_;
};

}  // namespace cifar10
