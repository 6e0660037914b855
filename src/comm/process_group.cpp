// Thin wrapper over a c10d backend: the collectives the engine needs, with c10d's errors
// turned into CommError naming the collective and the rank.
#include <cctype>

#include <fmt/format.h>

#include <deepspeed/comm.h>
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

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// c10d's text tells a timeout from a peer that went away only by its words (Gloo: "Timed out
// waiting 3000ms for recv operation", "Connection closed by peer"; NCCL: "Watchdog caught
// collective operation timeout", "NCCL communicator was aborted"); what it cannot tell is
// which peer, so the message says what each case usually means.
[[noreturn]] void throw_comm_error(const char* what, const ProcessGroup& group, const std::string& cause) {
  const std::string where = fmt::format("{} on rank {} of {}", what, group.rank(), group.size());
  const std::string text = lower(cause);
  if (is_timeout_text(cause)) {
    throw CommError(fmt::format(
        "{} timed out after {}: another rank did not join it (it is hung or busy, died, or called the "
        "collectives in another order). Set DEEPSPEED_TIMEOUT (minutes) to wait longer. [c10d: {}]",
        where, describe_duration(group.timeout()), cause));
  }
  for (const char* gone : {"connection closed", "connection reset", "broken pipe", "aborted", "end of file"}) {
    if (text.find(gone) != std::string::npos) {
      throw CommError(fmt::format("{} failed: another rank's connection closed (that rank exited or was "
                                  "killed; its own output says why). [c10d: {}]",
                                  where, cause));
    }
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

}  // namespace

ProcessGroup::ProcessGroup(compat::BackendPtr backend, c10::intrusive_ptr<c10d::Store> store,
                           DistributedEnvironment env, std::string backend_name, torch::Device device,
                           std::chrono::milliseconds timeout)
    : backend_(std::move(backend)),
      store_(std::move(store)),
      env_(std::move(env)),
      backend_name_(std::move(backend_name)),
      device_(device),
      timeout_(timeout) {}

void ProcessGroup::wait(const compat::WorkPtr& work, const char* collective) const {
  if (!work) return;
  guarded(collective, *this, [&] { return work->wait(); });
}

compat::WorkPtr ProcessGroup::all_reduce_async(torch::Tensor& tensor, ReduceOp op) {
  return guarded("all_reduce", *this, [&] {
    std::vector<at::Tensor> tensors{tensor};
    c10d::AllreduceOptions opts;
    opts.reduceOp = to_c10d(op);
    return backend_->allreduce(tensors, opts);
  });
}

void ProcessGroup::all_reduce(torch::Tensor& tensor, ReduceOp op) {
  if (size() == 1) return;
  if (!supports(tensor.scalar_type())) {
    auto wide = tensor.to(torch::kFloat32);
    all_reduce(wide, op);
    tensor.copy_(wide);
    return;
  }
  auto work = all_reduce_async(tensor, op);
  wait(work, "all_reduce");
}

void ProcessGroup::broadcast(torch::Tensor& tensor, int64_t root) {
  if (size() == 1) return;
  if (!supports(tensor.scalar_type())) {
    auto wide = tensor.to(torch::kFloat32);  // exact: every bfloat16 is a float
    broadcast(wide, root);
    tensor.copy_(wide);
    return;
  }
  guarded("broadcast", *this, [&] {
    std::vector<at::Tensor> tensors{tensor};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    return backend_->broadcast(tensors, opts)->wait();
  });
}

void ProcessGroup::all_gather(std::vector<torch::Tensor>& output, const torch::Tensor& input) {
  if (static_cast<int64_t>(output.size()) != size()) {
    throw CommError("all_gather: expected " + std::to_string(size()) + " output tensors, got " +
                    std::to_string(output.size()));
  }
  if (size() == 1) {
    output[0].copy_(input);
    return;
  }
  guarded("all_gather", *this, [&] {
    std::vector<std::vector<at::Tensor>> out{output};
    std::vector<at::Tensor> in{input};
    return backend_->allgather(out, in)->wait();
  });
}

namespace {

void check_flat(const char* what, const torch::Tensor& flat, int64_t size) {
  if (flat.dim() != 1 || !flat.is_contiguous() || flat.numel() % size != 0) {
    throw CommError(std::string(what) + ": expected a contiguous 1-D tensor whose length is a multiple of " +
                    std::to_string(size) + ", got shape " + c10::str(flat.sizes()));
  }
}

}  // namespace

compat::WorkPtr ProcessGroup::reduce_scatter_async(torch::Tensor& flat) {
  check_flat("reduce_scatter", flat, size());
  if (!has_native_reduce_scatter()) return all_reduce_async(flat);
  return guarded("reduce_scatter", *this, [&] {
    const int64_t slice = flat.numel() / size();
    // NCCL works in place when the output is the input's own slice of this rank.
    auto mine = flat.narrow(0, rank() * slice, slice);
    c10d::ReduceScatterOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    return backend_->_reduce_scatter_base(mine, flat, opts);
  });
}

compat::WorkPtr ProcessGroup::all_gather_async(torch::Tensor& flat) {
  check_flat("all_gather", flat, size());
  return guarded("all_gather", *this, [&] {
    const int64_t slice = flat.numel() / size();
    auto mine = flat.narrow(0, rank() * slice, slice);
    if (backend_name_ == "nccl") return backend_->_allgather_base(flat, mine);
    // Gloo reads the input before it writes the outputs, so they may alias.
    std::vector<std::vector<at::Tensor>> out(1);
    for (int64_t r = 0; r < size(); ++r) out[0].push_back(flat.narrow(0, r * slice, slice));
    std::vector<at::Tensor> in{mine};
    return backend_->allgather(out, in);
  });
}

void ProcessGroup::barrier() {
  if (size() == 1) return;
  guarded("barrier", *this, [&] {
    // An all-reduce of one element is a barrier every backend implements the same way
    // (Gloo's and NCCL's barrier() differ in what they synchronise with the device).
    auto t = torch::zeros({1}, torch::TensorOptions().device(device_));
    std::vector<at::Tensor> tensors{t};
    return backend_->allreduce(tensors)->wait();
  });
}

}  // namespace deepspeed::comm
