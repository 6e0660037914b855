#include "runtime/step/gradient_reducer.h"

#include <chrono>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

namespace deepspeed {

GradientReducer::GradientReducer(std::vector<torch::Tensor> parameters,
                                 std::shared_ptr<comm::ProcessGroup> group, Options options,
                                 BucketPlan plan, SliceSink sink)
    : parameters_(std::move(parameters)),
      group_(std::move(group)),
      options_(options),
      plan_(std::move(plan)),
      sink_(std::move(sink)) {
  const auto n = static_cast<int64_t>(parameters_.size());
  if (static_cast<int64_t>(plan_.buckets_of.size()) != n) {
    throw std::invalid_argument("GradientReducer: the bucket plan is for another parameter list");
  }
  ready_.assign(n, false);
  remaining_.assign(n, 0);
  state_.resize(plan_.buckets.size());
  // One rank and plain all-reduce: nothing to do, no hooks, no buffers, no cost.
  if (group_->size() == 1 && options_.mode == Mode::AllReduce && divisor() == 1.0) return;
  if (options_.max_in_flight < 0) {
    // Persistent buffers: stage 0 reduces everything anyway, and reallocating costs time.
    for (std::size_t b = 0; b < plan_.buckets.size(); ++b) {
      state_[b].buffer = torch::zeros({plan_.buckets[b].size},
                                      torch::TensorOptions().dtype(options_.comm_dtype).device(group_->device()));
    }
  }
  register_hooks();
}

void GradientReducer::register_hooks() {
  for (int64_t i = 0; i < static_cast<int64_t>(parameters_.size()); ++i) {
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

int64_t GradientReducer::buffer_bytes() const {
  int64_t total = 0;
  for (const auto& s : state_) {
    if (s.buffer.defined()) total += s.buffer.numel() * static_cast<int64_t>(s.buffer.element_size());
  }
  return total;
}

void GradientReducer::prepare(bool reduce) {
  std::lock_guard<std::mutex> lock(mutex_);
  active_ = reduce && !accumulators_.empty();
  next_bucket_ = 0;
  std::fill(ready_.begin(), ready_.end(), false);
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    remaining_[i] = static_cast<int64_t>(plan_.buckets_of[i].size());
  }
  for (std::size_t b = 0; b < plan_.buckets.size(); ++b) {
    state_[b].pending = static_cast<int64_t>(plan_.buckets[b].entries.size());
    state_[b].work.reset();
  }
  in_flight_.clear();
}

void GradientReducer::on_gradient_ready(int64_t param) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!active_ || ready_[param]) return;
  ready_[param] = true;
  for (auto b : plan_.buckets_of[param]) --state_[b].pending;
  launch_ready_buckets();
}

void GradientReducer::launch_ready_buckets() {
  while (next_bucket_ < plan_.buckets.size() && state_[next_bucket_].pending == 0) {
    launch(static_cast<int64_t>(next_bucket_++));
    if (options_.max_in_flight >= 0 && static_cast<int64_t>(in_flight_.size()) > options_.max_in_flight) {
      complete_oldest();
    }
  }
}

void GradientReducer::launch(int64_t index) {
  torch::NoGradGuard no_grad;
  const auto& bucket = plan_.buckets[index];
  auto& st = state_[index];
  if (!st.buffer.defined()) {
    st.buffer = torch::empty({bucket.size}, torch::TensorOptions().dtype(options_.comm_dtype).device(group_->device()));
  }
  int64_t covered = 0;
  for (const auto& e : bucket.entries) {
    auto& p = parameters_[e.param];
    auto slot = st.buffer.narrow(0, e.bucket_offset, e.length);
    const auto& g = p.grad();
    if (g.defined()) {
      slot.copy_(g.reshape(-1).narrow(0, e.param_offset, e.length));
    } else {
      slot.zero_();
    }
    covered = std::max(covered, e.bucket_offset + e.length);
    if (options_.release_gradients && --remaining_[e.param] == 0 && g.defined()) p.mutable_grad().reset();
  }
  if (covered < bucket.size) st.buffer.narrow(0, covered, bucket.size - covered).zero_();

  const double n = divisor();
  if (options_.average) {
    if (options_.prescale) {
      st.buffer.mul_(1.0 / n);
    } else if (options_.predivide_factor != 1.0) {
      st.buffer.mul_(1.0 / options_.predivide_factor);
    }
  }
  if (group_->size() > 1 && options_.mode == Mode::ReduceScatter && options_.reduce_scatter) {
    options_.reduce_scatter(st.buffer);
  } else if (group_->size() > 1) {
    st.work = options_.mode == Mode::AllReduce ? group_->all_reduce_async(st.buffer)
                                               : group_->reduce_scatter_async(st.buffer);
  }
  in_flight_.push_back(index);
}

void GradientReducer::complete_oldest() {
  const int64_t index = in_flight_.front();
  in_flight_.pop_front();
  const auto& bucket = plan_.buckets[index];
  auto& st = state_[index];
  if (st.work) {
    group_->wait(st.work, options_.mode == Mode::AllReduce ? "all_reduce" : "reduce_scatter");
    st.work.reset();
  }
  torch::NoGradGuard no_grad;
  const double n = divisor();
  const bool postscale = options_.average && !options_.prescale && options_.predivide_factor != n;
  if (options_.mode == Mode::AllReduce) {
    if (postscale) st.buffer.mul_(options_.predivide_factor / n);
    for (const auto& e : bucket.entries) {
      auto& p = parameters_[e.param];
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      auto reduced = st.buffer.narrow(0, e.bucket_offset, e.length);
      if (e.length == p.numel()) {
        p.mutable_grad().copy_(reduced.view(p.sizes()));
      } else {
        p.mutable_grad().view(-1).narrow(0, e.param_offset, e.length).copy_(reduced);
      }
    }
  } else {
    auto mine = st.buffer.narrow(0, group_->rank() * bucket.slice, bucket.slice);
    if (postscale) mine.mul_(options_.predivide_factor / n);
    if (sink_) sink_(index, mine);
    if (options_.max_in_flight >= 0) st.buffer = torch::Tensor();
  }
}

void GradientReducer::finalize() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!active_) return;
  // Parameters without a gradient in this backward: reduce them as zeros, in order.
  for (auto& s : state_) s.pending = 0;
  launch_ready_buckets();
  active_ = false;
  const auto start = std::chrono::steady_clock::now();
  while (!in_flight_.empty()) complete_oldest();
  last_wait_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace deepspeed
