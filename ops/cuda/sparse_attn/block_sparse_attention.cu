// The entry points of block_sparse_attention.h: pick the element type's instantiation.
#include "cuda/sparse_attn/block_sparse_attention_kernels.cuh"

namespace deepspeed::ops::cuda::sparse_attn {

bool supported(int64_t head_dim, int tile) {
  return (head_dim == 32 || head_dim == 64 || head_dim == 128) && (tile == 16 || tile == 32 || tile == 64);
}

void forward(DType dtype, const AttentionShape& shape, const TileLists& rows, const AdditiveMasks& masks,
             const void* q, const void* k, const void* v, void* out, float* lse, cudaStream_t stream) {
  if (shape.seq == 0 || shape.batch * shape.heads == 0) return;
  if (dtype == DType::Float16) {
    kernels::dispatch_forward<__half>(shape, rows, masks, q, k, v, out, lse, stream);
  } else if (dtype == DType::BFloat16) {
    kernels::dispatch_forward<__nv_bfloat16>(shape, rows, masks, q, k, v, out, lse, stream);
  } else {
    throw std::runtime_error("sparse_attn: the kernels take fp16 and bf16");
  }
}

void backward(DType dtype, const AttentionShape& shape, const TileLists& rows, const TileLists& columns,
              const AdditiveMasks& masks, const void* q, const void* k, const void* v, const void* out,
              const void* dout, const float* lse, float* delta, void* dq, void* dk, void* dv, cudaStream_t stream) {
  if (shape.seq == 0 || shape.batch * shape.heads == 0) return;
  if (dtype == DType::Float16) {
    kernels::dispatch_backward<__half>(shape, rows, columns, masks, q, k, v, out, dout, lse, delta, dq, dk, dv,
                                       stream);
  } else if (dtype == DType::BFloat16) {
    kernels::dispatch_backward<__nv_bfloat16>(shape, rows, columns, masks, q, k, v, out, dout, lse, delta, dq, dk,
                                              dv, stream);
  } else {
    throw std::runtime_error("sparse_attn: the kernels take fp16 and bf16");
  }
}

}  // namespace deepspeed::ops::cuda::sparse_attn
