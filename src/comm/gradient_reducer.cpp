#include "comm/gradient_reducer.h"

#include <chrono>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

namespace deepspeed {

GradientReducer::GradientReducer(std::vector<torch::Tensor> parameters,
                                 std::shared_ptr<comm::ProcessGroup> group, Options options)
    : parameters_(std::move(parameters)), group_(std::move(group)), options_(options) {
  const auto n = static_cast<int64_t>(parameters_.size());
  bucket_of_.assign(n, -1);
  ready_.assign(n, false);
  // Reverse registration order: the last layers' gradients come first in backward.
  Bucket current;
  int64_t filled = 0;
  auto close = [&] {
    if (current.params.empty()) return;
    current.buffer = torch::zeros({filled}, torch::TensorOptions()
                                                .dtype(options_.comm_dtype)
                                                .device(group_->device()));
    buckets_.push_back(std::move(current));
    current = Bucket{};
    filled = 0;
  };
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t numel = parameters_[i].numel();
    if (filled > 0 && filled + numel > options_.bucket_elements) close();
    bucket_of_[i] = static_cast<int64_t>(buckets_.size());
    current.params.push_back(i);
    current.offsets.push_back(filled);
    filled += numel;
  }
  close();

  if (group_->size() == 1) return;  // nothing to reduce: no hooks, no cost
  for (int64_t i = 0; i < n; ++i) {
    auto acc = torch::autograd::impl::grad_accumulator(parameters_[i]);
    auto key = acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, i](const torch::autograd::variable_list& outputs,
                  const torch::autograd::variable_list& /*inputs*/) {
          on_gradient_ready(i);
          return outputs;
        }));
    accumulators_.push_back(std::move(acc));
    hook_keys_.push_back(key);
  }
}

GradientReducer::~GradientReducer() {
  for (std::size_t i = 0; i < accumulators_.size(); ++i) {
    accumulators_[i]->del_post_hook(hook_keys_[i]);
  }
}

void GradientReducer::prepare(bool reduce) {
  std::lock_guard<std::mutex> lock(mutex_);
  active_ = reduce && group_->size() > 1;
  next_bucket_ = 0;
  std::fill(ready_.begin(), ready_.end(), false);
  for (auto& b : buckets_) {
    b.pending = static_cast<int64_t>(b.params.size());
    b.work.reset();
  }
}

void GradientReducer::on_gradient_ready(int64_t param) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!active_ || ready_[param]) return;
  ready_[param] = true;
  --buckets_[bucket_of_[param]].pending;
  launch_ready_buckets();
}

void GradientReducer::launch_ready_buckets() {
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].pending == 0) {
    launch(buckets_[next_bucket_++]);
  }
}

void GradientReducer::launch(Bucket& bucket) {
  torch::NoGradGuard no_grad;
  for (std::size_t k = 0; k < bucket.params.size(); ++k) {
    const auto& p = parameters_[bucket.params[k]];
    auto slot = bucket.buffer.narrow(0, bucket.offsets[k], p.numel());
    const auto& g = p.grad();
    if (g.defined()) {
      slot.copy_(g.reshape(-1));
    } else {
      slot.zero_();
    }
  }
  const double n = static_cast<double>(group_->size());
  if (options_.average) {
    if (options_.prescale) {
      bucket.buffer.mul_(1.0 / n);
    } else if (options_.predivide_factor != 1.0) {
      bucket.buffer.mul_(1.0 / options_.predivide_factor);
    }
  }
  bucket.work = group_->all_reduce_async(bucket.buffer);
}

void GradientReducer::finalize() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!active_) return;
  // Parameters without a gradient in this backward: reduce them as zeros, in order.
  for (auto& b : buckets_) b.pending = 0;
  launch_ready_buckets();
  active_ = false;

  torch::NoGradGuard no_grad;
  const double n = static_cast<double>(group_->size());
  const auto start = std::chrono::steady_clock::now();
  for (auto& b : buckets_) {
    b.work->wait();
    b.work.reset();
    if (options_.average && !options_.prescale && options_.predivide_factor != n) {
      b.buffer.mul_(options_.predivide_factor / n);
    }
    for (std::size_t k = 0; k < b.params.size(); ++k) {
      auto& p = parameters_[b.params[k]];
      auto reduced = b.buffer.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
      if (!p.grad().defined()) {
        p.mutable_grad() = torch::empty_like(p);
      }
      p.mutable_grad().copy_(reduced);
    }
  }
  last_wait_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace deepspeed
