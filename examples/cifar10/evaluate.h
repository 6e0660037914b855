// The tutorial's test pass: accuracy over the whole test set, per class, and the predictions
// for the first four test images (its "GroundTruth:" / "Predicted:" lines).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>
#include <torch/utils.h>

#include "data/image_dataset.h"
#include "net.h"

namespace cifar10 {

struct Evaluation {
  int64_t correct = 0;
  int64_t total = 0;
  std::vector<int64_t> class_correct;
  std::vector<int64_t> class_total;
  std::vector<int64_t> first_labels;       // of the first (up to) four test images
  std::vector<int64_t> first_predictions;
};

// `dtype`: the model's parameter dtype (bf16/fp16 runs take inputs of that dtype).
inline Evaluation evaluate(Net& model, const ImageDataset& test, torch::Device device,
                           torch::ScalarType dtype = torch::kFloat32, int64_t batch_size = 1000) {
  torch::NoGradGuard no_grad;
  Evaluation ev;
  const auto classes = static_cast<int64_t>(test.classes().size());
  auto class_correct = torch::zeros({classes}, torch::kInt64);
  auto class_total = torch::zeros({classes}, torch::kInt64);
  const int64_t n = test.images().size(0);
  for (int64_t first = 0; first < n; first += batch_size) {
    const int64_t last = std::min(first + batch_size, n);
    auto labels = test.labels().slice(0, first, last);
    auto predicted = model->forward(test.images().slice(0, first, last).to(device, dtype)).argmax(1).to(torch::kCPU);
    auto hit = predicted.eq(labels).to(torch::kInt64);
    class_total.index_add_(0, labels, torch::ones_like(labels));
    class_correct.index_add_(0, labels, hit);
    if (first == 0) {
      for (int64_t i = 0; i < std::min<int64_t>(4, last); ++i) {
        ev.first_labels.push_back(labels[i].item<int64_t>());
        ev.first_predictions.push_back(predicted[i].item<int64_t>());
      }
    }
  }
  ev.class_correct.assign(class_correct.data_ptr<int64_t>(), class_correct.data_ptr<int64_t>() + classes);
  ev.class_total.assign(class_total.data_ptr<int64_t>(), class_total.data_ptr<int64_t>() + classes);
  for (int64_t c = 0; c < classes; ++c) ev.correct += ev.class_correct[c], ev.total += ev.class_total[c];
  return ev;
}

}  // namespace cifar10
