// Megatron's four mappings (megatron/core/tensor_parallel/mappings.py) as autograd functions.
// The group travels through autograd's saved data as its address (saved data holds IValues).
#include <deepspeed/tensor_parallel.h>

#include <deepspeed/errors.h>

namespace deepspeed::tensor_parallel {
namespace {

comm::ProcessGroup& group_at(torch::autograd::AutogradContext* ctx) {
  return *reinterpret_cast<comm::ProcessGroup*>(ctx->saved_data["group"].toInt());
}

torch::Tensor all_reduced(const torch::Tensor& t, comm::ProcessGroup& group) {
  auto out = t.detach().contiguous().clone();
  group.all_reduce(out);
  return out;
}

torch::Tensor gathered_last_dim(const torch::Tensor& t, comm::ProcessGroup& group) {
  std::vector<torch::Tensor> parts(static_cast<size_t>(group.size()));
  const auto in = t.detach().contiguous();
  for (auto& p : parts) p = torch::empty_like(in);
  group.all_gather(parts, in);
  return torch::cat(parts, -1);
}

torch::Tensor slice_last_dim(const torch::Tensor& t, comm::ProcessGroup& group) {
  const int64_t width = t.size(-1);
  if (width % group.size() != 0) {
    throw EngineError("tensor parallel: the last dimension (" + std::to_string(width) +
                      ") is not divisible by the tensor-parallel size " + std::to_string(group.size()));
  }
  const int64_t part = width / group.size();
  return t.narrow(-1, group.rank() * part, part).contiguous();
}

struct CopyToRegion : torch::autograd::Function<CopyToRegion> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    return x.view_as(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    return {all_reduced(g[0], group_at(ctx)), torch::Tensor()};
  }
};

struct ReduceFromRegion : torch::autograd::Function<ReduceFromRegion> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& x, int64_t group) {
    return all_reduced(x, *reinterpret_cast<comm::ProcessGroup*>(group));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*, torch::autograd::variable_list g) {
    return {g[0], torch::Tensor()};
  }
};

struct GatherFromRegion : torch::autograd::Function<GatherFromRegion> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    return gathered_last_dim(x, *reinterpret_cast<comm::ProcessGroup*>(group));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    return {slice_last_dim(g[0], group_at(ctx)), torch::Tensor()};
  }
};

struct ScatterToRegion : torch::autograd::Function<ScatterToRegion> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    return slice_last_dim(x, *reinterpret_cast<comm::ProcessGroup*>(group));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    return {gathered_last_dim(g[0], group_at(ctx)), torch::Tensor()};
  }
};

int64_t address(comm::ProcessGroup& group) { return reinterpret_cast<int64_t>(&group); }

}  // namespace

torch::Tensor copy_to_tensor_model_parallel_region(const torch::Tensor& input, comm::ProcessGroup& group) {
  return group.size() == 1 ? input : CopyToRegion::apply(input, address(group));
}

torch::Tensor reduce_from_tensor_model_parallel_region(const torch::Tensor& input, comm::ProcessGroup& group) {
  return group.size() == 1 ? input : ReduceFromRegion::apply(input, address(group));
}

torch::Tensor gather_from_tensor_model_parallel_region(const torch::Tensor& input, comm::ProcessGroup& group) {
  return group.size() == 1 ? input : GatherFromRegion::apply(input, address(group));
}

torch::Tensor scatter_to_tensor_model_parallel_region(const torch::Tensor& input, comm::ProcessGroup& group) {
  return group.size() == 1 ? input : ScatterToRegion::apply(input, address(group));
}

torch::Tensor shard(const torch::Tensor& whole, int64_t dim, int64_t parts, int64_t index, const std::string& what) {
  const int64_t size = whole.size(dim);
  if (size % parts != 0) {
    throw EngineError(what + ": dimension " + std::to_string(dim) + " of size " + std::to_string(size) +
                      " is not divisible by the tensor-parallel size " + std::to_string(parts));
  }
  const int64_t part = size / parts;
  return whole.narrow(dim, index * part, part).clone();
}

}  // namespace deepspeed::tensor_parallel
