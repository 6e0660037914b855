// The CUDA path of the sparse attention op: the kernels of cuda/sparse_attn/ on torch's current
// stream, outputs from torch's caching allocator. Without the op in this build every entry
// says so.
#include <cstdint>

#include <deepspeed/errors.h>
#include <deepspeed/ops_config.h>

#include "sparse_attention/block_sparse_attention.h"

#if DEEPSPEED_OP_SPARSE_ATTN_BUILT
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda/sparse_attn/block_sparse_attention.h"
#endif

namespace deepspeed::ops::sparse_attention::attention_detail {

#if DEEPSPEED_OP_SPARSE_ATTN_BUILT
namespace {

namespace k = ::deepspeed::ops::cuda::sparse_attn;

cuda::DType kernel_dtype(const torch::Tensor& t) {
  return t.scalar_type() == torch::kHalf ? cuda::DType::Float16 : cuda::DType::BFloat16;
}

k::AttentionShape shape_of(const torch::Tensor& q, const TileIndex& index, const Problem& p) {
  k::AttentionShape s;
  s.batch = q.size(0);
  s.heads = q.size(1);
  s.seq = q.size(2);
  s.head_dim = q.size(3);
  s.tile = static_cast<int>(index.tile);
  s.scale = static_cast<float>(p.scale);
  s.causal = p.causal;
  return s;
}

k::TileLists rows_of(const TileIndex& index) {
  return {index.row_offsets.data_ptr<int32_t>(), index.row_indices.data_ptr<int32_t>()};
}
k::TileLists columns_of(const TileIndex& index) {
  return {index.col_offsets.data_ptr<int32_t>(), index.col_indices.data_ptr<int32_t>()};
}

k::AdditiveMasks masks_of(const Masks& m) {
  k::AdditiveMasks a;
  if (m.rpe.defined()) {
    a.rpe = m.rpe.data_ptr<float>();
    a.rpe_batch_stride = m.rpe.stride(0);
    a.rpe_head_stride = m.rpe.stride(1);
    a.rpe_row_stride = m.rpe.stride(2);
  }
  if (m.key_padding.defined()) {
    a.key_padding = m.key_padding.data_ptr<float>();
    a.key_padding_stride = m.key_padding.stride(0);
  }
  if (m.attn.defined()) {
    a.attn = m.attn.data_ptr<float>();
    a.attn_stride = m.attn.stride(0);
  }
  return a;
}

cudaStream_t stream() { return at::cuda::getCurrentCUDAStream().stream(); }

// The kernels load 16x16 fragments straight from global memory, which needs 32-byte
// alignment: fresh allocations have it, a view with an odd storage offset may not.
torch::Tensor aligned(const torch::Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data_ptr()) % 32 == 0 ? t : t.clone();
}

}  // namespace

bool cuda_kernels_built() { return true; }
bool cuda_kernels_take(int64_t head_dim, int64_t tile) { return k::supported(head_dim, static_cast<int>(tile)); }

ForwardResult cuda_forward(const torch::Tensor& q_in, const torch::Tensor& k_in, const torch::Tensor& v_in,
                           const TileIndex& index, const Masks& masks, const Problem& problem) {
  const c10::cuda::CUDAGuard guard(q_in.device());
  const auto q = aligned(q_in), kt = aligned(k_in), v = aligned(v_in);
  auto out = torch::empty_like(q);
  auto lse = torch::empty({q.size(0), q.size(1), q.size(2)}, q.options().dtype(torch::kFloat));
  k::forward(kernel_dtype(q), shape_of(q, index, problem), rows_of(index), masks_of(masks), q.data_ptr(),
             kt.data_ptr(), v.data_ptr(), out.data_ptr(), lse.data_ptr<float>(), stream());
  return {out, lse};
}

std::array<torch::Tensor, 3> cuda_backward(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                           const torch::Tensor& v_in, const torch::Tensor& out_in,
                                           const torch::Tensor& lse, const torch::Tensor& dout_in,
                                           const TileIndex& index, const Masks& masks, const Problem& problem) {
  const c10::cuda::CUDAGuard guard(q_in.device());
  const auto q = aligned(q_in), kt = aligned(k_in), v = aligned(v_in), out = aligned(out_in),
             dout = aligned(dout_in);
  auto delta = torch::empty({q.size(0), q.size(1), q.size(2)}, q.options().dtype(torch::kFloat));
  auto dq = torch::empty_like(q), dk = torch::empty_like(kt), dv = torch::empty_like(v);
  k::backward(kernel_dtype(q), shape_of(q, index, problem), rows_of(index), columns_of(index), masks_of(masks),
              q.data_ptr(), kt.data_ptr(), v.data_ptr(), out.data_ptr(), dout.data_ptr(), lse.data_ptr<float>(),
              delta.data_ptr<float>(), dq.data_ptr(), dk.data_ptr(), dv.data_ptr(), stream());
  return {dq, dk, dv};
}

#else

namespace {
[[noreturn]] void not_built() {
  throw OpError("sparse_attention: this build has no sparse_attn CUDA kernels (ds_report says why)");
}
}  // namespace

bool cuda_kernels_built() { return false; }
bool cuda_kernels_take(int64_t, int64_t) { return false; }
ForwardResult cuda_forward(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, const TileIndex&,
                           const Masks&, const Problem&) {
  not_built();
}
std::array<torch::Tensor, 3> cuda_backward(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                           const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                           const TileIndex&, const Masks&, const Problem&) {
  not_built();
}

#endif

}  // namespace deepspeed::ops::sparse_attention::attention_detail
