#include <deepspeed/flatten.h>

#include <string>

#include <deepspeed/errors.h>
#include <deepspeed/ops_config.h>

namespace deepspeed::ops {
namespace {

void require_op(const char* function) {
  if (!utils_op_built()) {
    throw OpError(std::string("utils op: ") + function +
                  "(): this build has no utils op (configured with DS_BUILD_UTILS=OFF)");
  }
}

}  // namespace

bool utils_op_built() { return DEEPSPEED_OP_UTILS_BUILT != 0; }

torch::Tensor flatten(at::TensorList tensors) {
  require_op("flatten");
  if (tensors.empty()) return torch::empty({0}, torch::kFloat);
  std::vector<torch::Tensor> rows;
  rows.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (!t.defined()) throw OpError("utils op: flatten(): tensor " + std::to_string(i) + " is undefined");
    if (t.scalar_type() != tensors[0].scalar_type() || t.device() != tensors[0].device()) {
      throw OpError("utils op: flatten(): tensor " + std::to_string(i) + " is " + c10::toString(t.scalar_type()) +
                    " on " + t.device().str() + ", tensor 0 " + c10::toString(tensors[0].scalar_type()) + " on " +
                    tensors[0].device().str() + "; a flat buffer has one dtype and device");
    }
    rows.push_back(t.reshape({-1}));
  }
  // One concatenation: a single kernel for the whole list on the GPU.
  return torch::cat(rows);
}

std::vector<torch::Tensor> unflatten(const torch::Tensor& flat, at::TensorList like) {
  require_op("unflatten");
  if (!flat.defined() || flat.dim() != 1 || !flat.is_contiguous()) {
    throw OpError("utils op: unflatten(): flat must be a contiguous 1-D tensor");
  }
  int64_t total = 0;
  for (size_t i = 0; i < like.size(); ++i) {
    if (!like[i].defined()) throw OpError("utils op: unflatten(): like[" + std::to_string(i) + "] is undefined");
    total += like[i].numel();
  }
  if (total != flat.numel()) {
    throw OpError("utils op: unflatten(): flat has " + std::to_string(flat.numel()) +
                  " elements, the tensors of like " + std::to_string(total));
  }
  std::vector<torch::Tensor> views;
  views.reserve(like.size());
  int64_t offset = 0;
  for (const auto& t : like) {
    views.push_back(flat.narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
  return views;
}

}  // namespace deepspeed::ops
