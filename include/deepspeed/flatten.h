// DeepSpeed's utils op (UtilsBuilder): a list of tensors as one flat buffer and back, as the
// engine packs gradient and parameter buckets (torch's _flatten_dense_tensors and
// _unflatten_dense_tensors).
//
//   auto flat = deepspeed::ops::flatten(grads);          // one 1-D tensor, grads back to back
//   auto views = deepspeed::ops::unflatten(flat, grads); // views of flat shaped like grads
//
// Promises:
// - flatten copies the tensors, in order, into one new contiguous 1-D tensor of their common
//   dtype and device (non-contiguous inputs are read as if contiguous, in row-major order).
//   An empty list gives an empty fp32 CPU tensor.
// - unflatten returns views of flat (no copy): writing through one writes flat. flat must be
//   1-D, contiguous and hold exactly the elements of `like`; the views take like's shapes.
// - Mixed dtypes or devices, or sizes that do not add up, are an OpError naming the index.
// - Without the op (DS_BUILD_UTILS=OFF) both throw OpError saying so; utils_op_built() tells.
#pragma once

#include <vector>

#include <torch/types.h>

namespace deepspeed::ops {

torch::Tensor flatten(at::TensorList tensors);
std::vector<torch::Tensor> unflatten(const torch::Tensor& flat, at::TensorList like);
bool utils_op_built();

}  // namespace deepspeed::ops
