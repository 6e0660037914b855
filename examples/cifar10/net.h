// The tutorial's network (PyTorch's "Training a classifier" CIFAR-10 Net): two 5x5
// convolutions with ReLU and 2x2 max pooling, then three fully connected layers. The sizes
// follow the data: `channels` input planes and square images of `image_size` pixels
// (3 and 32 for CIFAR-10, where the first fully connected layer is 16*5*5 -> 120 as in the
// tutorial; 1 and 28 for Fashion-MNIST, 16*4*4 -> 120).
#pragma once

#include <stdexcept>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>

namespace cifar10 {

// Side of the feature map after conv(5) -> pool(2) -> conv(5) -> pool(2).
inline int64_t feature_map_side(int64_t image_size) { return ((image_size - 4) / 2 - 4) / 2; }

struct NetImpl : torch::nn::Module {
  NetImpl(int64_t channels, int64_t image_size) : side(feature_map_side(image_size)) {
    if (channels < 1 || image_size < 16) {
      throw std::invalid_argument("Net: needs at least 1 channel and images of at least 16x16, got " +
                                  std::to_string(channels) + " channels of " + std::to_string(image_size) +
                                  "x" + std::to_string(image_size));
    }
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 6, 5)));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 16, 5)));
    fc1 = register_module("fc1", torch::nn::Linear(16 * side * side, 120));
    fc2 = register_module("fc2", torch::nn::Linear(120, 84));
    fc3 = register_module("fc3", torch::nn::Linear(84, 10));
  }

  torch::Tensor forward(torch::Tensor x) {
    namespace F = torch::nn::functional;
    x = F::max_pool2d(torch::relu(conv1->forward(x)), F::MaxPool2dFuncOptions(2));
    x = F::max_pool2d(torch::relu(conv2->forward(x)), F::MaxPool2dFuncOptions(2));
    x = x.view({-1, 16 * side * side});
    x = torch::relu(fc1->forward(x));
    x = torch::relu(fc2->forward(x));
    return fc3->forward(x);
  }

  int64_t side;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
};
TORCH_MODULE(Net);

}  // namespace cifar10
