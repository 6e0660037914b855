// The fp16 instantiations of the block-sparse attention kernels.
#include "cuda/sparse_attn/block_sparse_attention_kernels.cuh"

namespace deepspeed::ops::cuda::sparse_attn::kernels {
DS_SPARSE_ATTN_INSTANTIATE(, __half)
}  // namespace deepspeed::ops::cuda::sparse_attn::kernels
