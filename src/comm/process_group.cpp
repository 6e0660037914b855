// Thin wrapper over a c10d backend: the collectives the engine needs, with c10d's errors
// turned into CommError naming the collective and the rank (a timeout or a peer that went
// away says so), and, when a comms logger is set, each collective timed to its end and logged.
#include <chrono>
#include <cstdio>

#include <fmt/format.h>
#include <torch/cuda.h>

#include <deepspeed/comm.h>
#include <deepspeed/comms_logger.h>
#include <deepspeed/errors.h>

#include "comm/error_text.h"

namespace deepspeed::comm {
namespace {

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return c10d::ReduceOp::SUM;
    case ReduceOp::Max: return c10d::ReduceOp::MAX;
    case ReduceOp::Min: return c10d::ReduceOp::MIN;
    case ReduceOp::Product: return c10d::ReduceOp::PRODUCT;
  }
  return c10d::ReduceOp::SUM;
}

// c10d's text tells a timeout from a peer that went away only by its words (Gloo: "Timed out
// waiting 3000ms for recv operation", "Connection closed by peer"; NCCL: "Watchdog caught
// collective operation timeout", "NCCL communicator was aborted"); what it cannot tell is
// which peer, so the message says what each case usually means.
[[noreturn]] void throw_comm_error(const char* what, const ProcessGroup& group, const std::string& cause) {
  note_failure(group);
  const std::string where = fmt::format("{} on rank {} of {}", what, group.rank(), group.size());
  if (is_timeout_text(cause)) {
    throw CommError(fmt::format(
        "{} timed out after {}: another rank did not join it (it is hung or busy, died, or called the "
        "collectives in another order). Set DEEPSPEED_TIMEOUT (minutes) to wait longer. [c10d: {}]",
        where, describe_duration(group.timeout()), cause));
  }
  if (is_peer_gone_text(cause)) {
    throw CommError(fmt::format("{} failed: another rank's connection closed (that rank exited or was "
                                "killed; its own output says why). [c10d: {}]",
                                where, cause));
  }
  throw CommError(fmt::format("{} failed: {}", where, cause));
}

template <typename Fn>
auto guarded(const char* what, const ProcessGroup& group, Fn&& fn) {
  try {
    return fn();
  } catch (const CommError&) {
    throw;
  } catch (const std::exception& e) {
    throw_comm_error(what, group, error_text(e));
  }
}

int64_t bytes_of(const torch::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

// "void deepspeed::GradientReducer::launch(Bucket&)" -> "launch", for comms_logger.debug.
std::string caller_name(const std::source_location& where) {
  std::string f = where.function_name();
  f = f.substr(0, f.find('('));
  if (const auto space = f.rfind(' '); space != std::string::npos) f = f.substr(space + 1);
  if (const auto colons = f.rfind("::"); colons != std::string::npos) f = f.substr(colons + 2);
  return f;
}

using Clock = std::chrono::steady_clock;

// One collective under the comms logger: started at `start`, waited for here (and the device
// synchronised, as DeepSpeed's timed_op does) so that its latency is its whole run.
class LoggedOp {
 public:
  LoggedOp(CommsLogger* logger, const char* op) : logger_(logger && logger->should_log(op) ? logger : nullptr), op_(op) {
    if (logger_) start_ = Clock::now();
  }
  explicit operator bool() const { return logger_ != nullptr; }
  void finish(const compat::WorkPtr& work, int64_t bytes, const std::source_location& where,
              const ProcessGroup& group, torch::Device device) {
    if (!logger_) return;
    if (work) group.wait(work, op_);
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
    std::string name = op_;
    if (logger_->debug()) name += " | [Caller Func: " + caller_name(where) + "]";
    logger_->append(op_, name, ms, bytes);
  }

 private:
  CommsLogger* logger_;
  const char* op_;
  Clock::time_point start_;
};

}  // namespace

ProcessGroup::ProcessGroup(compat::BackendPtr backend, c10::intrusive_ptr<c10d::Store> store,
                           DistributedEnvironment env, std::string backend_name, torch::Device device,
                           std::chrono::milliseconds timeout, std::vector<int64_t> ranks)
    : backend_(std::move(backend)),
      store_(std::move(store)),
      env_(std::move(env)),
      backend_name_(std::move(backend_name)),
      device_(device),
      timeout_(timeout),
      ranks_(std::move(ranks)) {
  if (ranks_.empty()) {
    for (int64_t r = 0; r < env_.world_size; ++r) ranks_.push_back(r);
  }
  if (static_cast<int64_t>(ranks_.size()) != env_.world_size || env_.rank < 0 || env_.rank >= env_.world_size) {
    throw CommError(fmt::format("process group: rank {} of {} with {} members listed", env_.rank, env_.world_size,
                                ranks_.size()));
  }
}

void note_failure(const ProcessGroup& group) noexcept { group.failed_ = true; }

ProcessGroup::~ProcessGroup() {
#if DS_TORCH_AT_LEAST(2, 4)
  // LibTorch 2.x's ProcessGroupNCCL warns when it is destroyed without a shutdown (what
  // torch.distributed.destroy_process_group does) and then aborts its communicators, which
  // fails if the CUDA runtime has already gone (init_distributed releases the group at exit,
  // before it).
  if (!backend_ || backend_name_ != "nccl") return;
  try {
    if (failed_) {
      backend_->abort();
    } else {
      backend_->shutdown();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: rank %lld: shutting the nccl process group down failed: %s\n",
                 static_cast<long long>(rank()), e.what());
  }
#endif
}

void ProcessGroup::wait(const compat::WorkPtr& work, const char* collective) const {
  if (!work) return;
  guarded(collective, *this, [&] { return work->wait(); });
}

compat::WorkPtr ProcessGroup::all_reduce_async(torch::Tensor& tensor, ReduceOp op, std::source_location where) {
  LoggedOp logged(comms_logger_.get(), "all_reduce");
  auto work = guarded("all_reduce", *this, [&] {
    std::vector<at::Tensor> tensors{tensor};
    c10d::AllreduceOptions opts;
    opts.reduceOp = to_c10d(op);
    return backend_->allreduce(tensors, opts);
  });
  logged.finish(work, bytes_of(tensor), where, *this, device_);
  return work;
}

void ProcessGroup::all_reduce(torch::Tensor& tensor, ReduceOp op, std::source_location where) {
  if (size() == 1) return;
  if (!supports(tensor.scalar_type())) {
    auto wide = tensor.to(torch::kFloat32);
    all_reduce(wide, op, where);
    tensor.copy_(wide);
    return;
  }
  auto work = all_reduce_async(tensor, op, where);
  wait(work, "all_reduce");
}

void ProcessGroup::broadcast(torch::Tensor& tensor, int64_t root, std::source_location where) {
  if (size() == 1) return;
  if (!supports(tensor.scalar_type())) {
    auto wide = tensor.to(torch::kFloat32);  // exact: every bfloat16 is a float
    broadcast(wide, root, where);
    tensor.copy_(wide);
    return;
  }
  LoggedOp logged(comms_logger_.get(), "broadcast");
  guarded("broadcast", *this, [&] {
    std::vector<at::Tensor> tensors{tensor};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    return backend_->broadcast(tensors, opts)->wait();
  });
  logged.finish(compat::WorkPtr(), bytes_of(tensor), where, *this, device_);
}

void ProcessGroup::all_gather(std::vector<torch::Tensor>& output, const torch::Tensor& input,
                              std::source_location where) {
  if (static_cast<int64_t>(output.size()) != size()) {
    throw CommError("all_gather: expected " + std::to_string(size()) + " output tensors, got " +
                    std::to_string(output.size()));
  }
  if (size() == 1) {
    output[0].copy_(input);
    return;
  }
  LoggedOp logged(comms_logger_.get(), "all_gather");
  guarded("all_gather", *this, [&] {
    std::vector<std::vector<at::Tensor>> out{output};
    std::vector<at::Tensor> in{input};
    return backend_->allgather(out, in)->wait();
  });
  logged.finish(compat::WorkPtr(), bytes_of(input), where, *this, device_);
}

void ProcessGroup::all_to_all_single(torch::Tensor& output, const torch::Tensor& input, std::source_location where) {
  if (!input.is_contiguous() || !output.is_contiguous() || input.sizes() != output.sizes() || input.dim() == 0 ||
      input.size(0) % size() != 0) {
    throw CommError("all_to_all_single: expected contiguous input and output of one shape whose first dimension is a "
                    "multiple of " + std::to_string(size()) + ", got " + c10::str(input.sizes()) + " and " +
                    c10::str(output.sizes()));
  }
  if (size() == 1) {
    output.copy_(input);
    return;
  }
  if (input.scalar_type() != output.scalar_type()) {
    throw CommError(std::string("all_to_all_single: input and output dtypes differ (") +
                    c10::toString(input.scalar_type()) + " and " + c10::toString(output.scalar_type()) + ")");
  }
  LoggedOp logged(comms_logger_.get(), "all_to_all_single");
  guarded("all_to_all_single", *this, [&] {
    // An all-to-all only moves elements: where the backend has no such dtype (bf16 on Gloo) the
    // bits travel as fp16, a type of the same width that Gloo's all-to-all knows.
    const bool as_half = !supports(input.scalar_type());
    auto in = as_half ? input.view(torch::kHalf) : input;
    auto out = as_half ? output.view(torch::kHalf) : output;
    std::vector<int64_t> equal_splits;  // empty: equal splits
    return backend_->alltoall_base(out, in, equal_splits, equal_splits)->wait();
  });
  logged.finish(compat::WorkPtr(), bytes_of(input), where, *this, device_);
}

namespace {

void check_flat(const char* what, const torch::Tensor& flat, int64_t size) {
  if (flat.dim() != 1 || !flat.is_contiguous() || flat.numel() % size != 0) {
    throw CommError(std::string(what) + ": expected a contiguous 1-D tensor whose length is a multiple of " +
                    std::to_string(size) + ", got shape " + c10::str(flat.sizes()));
  }
}

}  // namespace

compat::WorkPtr ProcessGroup::reduce_scatter_async(torch::Tensor& flat, std::source_location where) {
  check_flat("reduce_scatter", flat, size());
  // Logged as what runs: an all_reduce of the whole buffer where the backend has no reduce-scatter.
  if (!has_native_reduce_scatter()) return all_reduce_async(flat, ReduceOp::Sum, where);
  LoggedOp logged(comms_logger_.get(), "reduce_scatter_tensor");
  auto work = guarded("reduce_scatter", *this, [&] {
    const int64_t slice = flat.numel() / size();
    // NCCL works in place when the output is the input's own slice of this rank.
    auto mine = flat.narrow(0, rank() * slice, slice);
    c10d::ReduceScatterOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    return backend_->_reduce_scatter_base(mine, flat, opts);
  });
  logged.finish(work, bytes_of(flat), where, *this, device_);
  return work;
}

compat::WorkPtr ProcessGroup::all_gather_async(torch::Tensor& flat, std::source_location where) {
  check_flat("all_gather", flat, size());
  const bool nccl = backend_name_ == "nccl";
  LoggedOp logged(comms_logger_.get(), nccl ? "all_gather_into_tensor" : "all_gather");
  const int64_t slice = flat.numel() / size();
  auto mine = flat.narrow(0, rank() * slice, slice);
  auto work = guarded("all_gather", *this, [&] {
    if (nccl) return backend_->_allgather_base(flat, mine);
    // Gloo reads the input before it writes the outputs, so they may alias.
    std::vector<std::vector<at::Tensor>> out(1);
    for (int64_t r = 0; r < size(); ++r) out[0].push_back(flat.narrow(0, r * slice, slice));
    std::vector<at::Tensor> in{mine};
    return backend_->allgather(out, in);
  });
  logged.finish(work, bytes_of(mine), where, *this, device_);
  return work;
}

void ProcessGroup::barrier(std::source_location where) {
  if (size() == 1) return;
  LoggedOp logged(comms_logger_.get(), "barrier");
  guarded("barrier", *this, [&] {
    // An all-reduce of one element is a barrier every backend implements the same way
    // (Gloo's and NCCL's barrier() differ in what they synchronise with the device).
    auto t = torch::zeros({1}, torch::TensorOptions().device(device_));
    std::vector<at::Tensor> tensors{t};
    return backend_->allreduce(tensors)->wait();
  });
  logged.finish(compat::WorkPtr(), 0, where, *this, device_);
}

// Gloo moves send/recv payloads as bytes; a bfloat16 tensor travels as int16 of the same bits.
void ProcessGroup::send(const torch::Tensor& tensor, int64_t dst, std::source_location where) {
  auto payload = tensor.contiguous();
  if (!supports(payload.scalar_type())) payload = payload.view(torch::kInt16);
  LoggedOp logged(comms_logger_.get(), "send");
  guarded("send", *this, [&] {
    std::vector<at::Tensor> tensors{payload};
    return backend_->send(tensors, static_cast<int>(dst), 0)->wait(timeout_);
  });
  logged.finish(compat::WorkPtr(), bytes_of(payload), where, *this, device_);
}

void ProcessGroup::recv(torch::Tensor& tensor, int64_t src, std::source_location where) {
  auto target = tensor.is_contiguous() ? tensor : torch::empty_like(tensor, torch::MemoryFormat::Contiguous);
  auto payload = supports(target.scalar_type()) ? target : target.view(torch::kInt16);
  LoggedOp logged(comms_logger_.get(), "recv");
  guarded("recv", *this, [&] {
    std::vector<at::Tensor> tensors{payload};
    return backend_->recv(tensors, static_cast<int>(src), 0)->wait(timeout_);
  });
  logged.finish(compat::WorkPtr(), bytes_of(payload), where, *this, device_);
  if (!target.is_same(tensor)) tensor.copy_(target);
}

}  // namespace deepspeed::comm
