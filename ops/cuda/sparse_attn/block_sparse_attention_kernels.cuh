// The block-sparse attention kernels (block_sparse_attention.h), templated on the element
// type, the head dimension D and the tile edge TILE. A CTA has TILE / 16 warps; each warp owns
// 16 rows of its tile (queries in the forward and in the dq kernel, keys in the dk/dv kernel)
// and multiplies 16x16x16 fragments on tensor cores (WMMA). Products go through shared memory
// as fp32, where each row is read by two lanes (half a row each) for the softmax; the
// accumulator layout of WMMA fragments is opaque, which is why the rescaled output lives in
// registers and not in a fragment.
//
// Backward: one kernel per key tile (dk, dv: it walks the tile's column list) and one per query
// tile (dq: it walks the row list), each recomputing the probabilities from the saved
// log-sum-exp; no atomics, so the gradients are the same bits every run.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda/common/cuda_check.h"
#include "cuda/sparse_attn/block_sparse_attention.h"

namespace deepspeed::ops::cuda::sparse_attn {
namespace kernels {

namespace wmma = nvcuda::wmma;

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}

// Shared-memory geometry of one instantiation. Row pitches are padded (8 elements of 16 bits,
// 4 floats) so that consecutive rows start in other banks; every WMMA pointer stays 32-byte
// aligned because each region and each 16-row slice is a multiple of 32 bytes.
template <typename T, int D, int TILE>
struct Geometry {
  static constexpr int kWarps = TILE / 16;
  static constexpr int kThreads = TILE * 2;
  static constexpr int kLdT = D + 8;                            // tiles of q, k, v, dout
  static constexpr int kLdF = (TILE > D ? TILE : D) + 4;        // a warp's fp32 products
  static constexpr int kLdP = TILE + 8;                         // a warp's probabilities
  static constexpr int kTileElems = TILE * kLdT;
  static constexpr int kWarpFloats = 16 * kLdF;
  static constexpr int kWarpProbs = 16 * kLdP;
  // Two tiles, the fp32 products, and two probability buffers (forward uses one), then two
  // fp32 vectors of TILE (the dk/dv kernel's lse and delta of the query tile).
  static constexpr size_t kSharedBytes = 2 * kTileElems * sizeof(T) + kWarps * kWarpFloats * sizeof(float) +
                                         2 * kWarps * kWarpProbs * sizeof(T) + 2 * TILE * sizeof(float);
};

// The regions of a CTA's dynamic shared memory, in the order kSharedBytes counts them: two
// tiles, the warps' fp32 products, two sets of the warps' probabilities, two fp32 vectors of TILE.
template <typename T, int D, int TILE>
struct SharedRegions {
  using G = Geometry<T, D, TILE>;
  T *tile_a, *tile_b;
  float* products;
  T *probs_a, *probs_b;
  float *vector_a, *vector_b;
  __device__ explicit SharedRegions(unsigned char* shared)
      : tile_a(reinterpret_cast<T*>(shared)), tile_b(tile_a + G::kTileElems),
        products(reinterpret_cast<float*>(tile_b + G::kTileElems)),
        probs_a(reinterpret_cast<T*>(products + G::kWarps * G::kWarpFloats)),
        probs_b(probs_a + G::kWarps * G::kWarpProbs),
        vector_a(reinterpret_cast<float*>(probs_b + G::kWarps * G::kWarpProbs)), vector_b(vector_a + TILE) {}
};

// TILE rows of D elements, row stride D in global memory, into shared memory of pitch kLdT,
// 16 bytes per access, by all threads of the CTA.
template <typename T, int D, int TILE>
__device__ __forceinline__ void load_tile(T* dst, const T* __restrict__ src) {
  using G = Geometry<T, D, TILE>;
  constexpr int kVectors = D / 8;
  for (int i = threadIdx.x; i < TILE * kVectors; i += G::kThreads) {
    const int row = i / kVectors, col = (i % kVectors) * 8;
    *reinterpret_cast<int4*>(dst + row * G::kLdT + col) = *reinterpret_cast<const int4*>(src + row * D + col);
  }
}

__device__ __forceinline__ float mask_value(const AdditiveMasks& m, int64_t b, int64_t h, int64_t qi, int64_t kj) {
  float x = 0.0f;
  if (m.rpe) x += m.rpe[b * m.rpe_batch_stride + h * m.rpe_head_stride + qi * m.rpe_row_stride + kj];
  if (m.key_padding) x += m.key_padding[b * m.key_padding_stride + kj];
  if (m.attn) x += m.attn[qi * m.attn_stride + kj];
  return x;
}

// The score of query qi and key kj from q.k: scaled, masked, -inf when dropped.
__device__ __forceinline__ float masked_score(float dot, const AttentionShape& s, const AdditiveMasks& m, int64_t b,
                                              int64_t h, int64_t qi, int64_t kj) {
  if (s.causal && kj > qi) return -INFINITY;
  return dot * s.scale + mask_value(m, b, h, qi, kj);
}

// Where a thread works: its warp and lane, the row of the warp's 16 it shares with one other
// lane (each takes half of it), its (batch, head), and where that head's [seq, D] rows start.
struct Place {
  int warp, lane, r, half, tiles;
  int64_t bh, b, h, base;
  __device__ Place(const AttentionShape& s, int tile, int dim)
      : warp(threadIdx.x >> 5), lane(threadIdx.x & 31), r(lane >> 1), half(lane & 1),
        tiles(static_cast<int>(s.seq / tile)), bh(blockIdx.y), b(bh / s.heads), h(bh % s.heads),
        base(bh * s.seq * dim) {}
};

// A 16 x TILE product of the warp's rows (fragments `a`, 16 x D) with the tile's rows in
// shared memory (TILE x D, read transposed), written to the warp's fp32 buffer.
template <typename T, int D, int TILE>
__device__ __forceinline__ void rows_times_tile_t(
    const wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> (&a)[D / 16], const T* tile, float* out) {
  using G = Geometry<T, D, TILE>;
#pragma unroll
  for (int n = 0; n < TILE / 16; ++n) {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bt;
      wmma::load_matrix_sync(bt, tile + n * 16 * G::kLdT + kk * 16, G::kLdT);
      wmma::mma_sync(acc, a[kk], bt, acc);
    }
    wmma::store_matrix_sync(out + n * 16, acc, G::kLdF, wmma::mem_row_major);
  }
}

// acc[n] += probs (16 x TILE, the warp's buffer) times the tile (TILE x D, shared memory).
template <typename T, int D, int TILE>
__device__ __forceinline__ void accumulate_probs_times_tile(
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> (&acc)[D / 16], const T* probs, const T* tile) {
  using G = Geometry<T, D, TILE>;
#pragma unroll
  for (int kk = 0; kk < TILE / 16; ++kk) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pa;
    wmma::load_matrix_sync(pa, probs + kk * 16, G::kLdP);
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> tb;
      wmma::load_matrix_sync(tb, tile + kk * 16 * G::kLdT + n * 16, G::kLdT);
      wmma::mma_sync(acc[n], pa, tb, acc[n]);
    }
  }
}

// Writes the warp's 16 x D accumulators, times `scale`, as T rows of `dst` (row stride D),
// through the warp's fp32 buffer.
template <typename T, int D, int TILE>
__device__ __forceinline__ void store_rows(wmma::fragment<wmma::accumulator, 16, 16, 16, float> (&acc)[D / 16],
                                           float scale, float* buffer, T* dst) {
  using G = Geometry<T, D, TILE>;
#pragma unroll
  for (int n = 0; n < D / 16; ++n) wmma::store_matrix_sync(buffer + n * 16, acc[n], G::kLdF, wmma::mem_row_major);
  __syncwarp();
  const int lane = threadIdx.x & 31;
  for (int i = lane; i < 16 * D; i += 32) {
    const int r = i / D, c = i % D;
    dst[r * D + c] = from_float<T>(buffer[r * G::kLdF + c] * scale);
  }
}

// The column a lane's c-th value of its half row lives in: rotated by the lane so that the 32
// lanes of a warp hit 32 different banks.
template <int HALF>
__device__ __forceinline__ int rotated(int c, int lane) {
  return (c + lane) & (HALF - 1);
}

template <typename T, int D, int TILE>
__global__ void __launch_bounds__(TILE * 2)
    forward_kernel(AttentionShape s, TileLists rows, AdditiveMasks masks, const T* __restrict__ q,
                   const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ out, float* __restrict__ lse) {
  using G = Geometry<T, D, TILE>;
  constexpr int HALF = TILE / 2, DHALF = D / 2;
  extern __shared__ __align__(128) unsigned char shared[];
  const SharedRegions<T, D, TILE> sm(shared);
  T *ks = sm.tile_a, *vs = sm.tile_b, *pbuf = sm.probs_a;
  float* fbuf = sm.products;

  const Place at(s, TILE, D);
  const int warp = at.warp, lane = at.lane, r = at.r, half = at.half, tiles = at.tiles;
  const int64_t bh = at.bh, b = at.b, h = at.h, base = at.base;
  const int row_tile = blockIdx.x;
  const int64_t q0 = static_cast<int64_t>(row_tile) * TILE + warp * 16;
  const int64_t qi = q0 + r;
  float* fw = fbuf + warp * G::kWarpFloats;
  T* pw = pbuf + warp * G::kWarpProbs;

  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) wmma::load_matrix_sync(qf[kk], q + base + q0 * D + kk * 16, D);

  float m = -INFINITY, l = 0.0f;
  float o[DHALF];  // o[i] is column half * DHALF + rotated(i)
#pragma unroll
  for (int i = 0; i < DHALF; ++i) o[i] = 0.0f;

  const int32_t* offsets = rows.offsets + h * (tiles + 1);
  for (int32_t t = offsets[row_tile]; t < offsets[row_tile + 1]; ++t) {
    const int64_t k0 = static_cast<int64_t>(rows.indices[t]) * TILE;
    __syncthreads();  // every warp is done with the previous tiles
    load_tile<T, D, TILE>(ks, k + base + k0 * D);
    load_tile<T, D, TILE>(vs, v + base + k0 * D);
    __syncthreads();

    rows_times_tile_t<T, D, TILE>(qf, ks, fw);
    __syncwarp();
    float sv[HALF];
    float mx = -INFINITY;
#pragma unroll
    for (int c = 0; c < HALF; ++c) {
      const int col = half * HALF + rotated<HALF>(c, lane);
      const int64_t kj = k0 + col;
      const float x = masked_score(fw[r * G::kLdF + col], s, masks, b, h, qi, kj);
      sv[c] = x;
      mx = fmaxf(mx, x);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m, mx);
    const float shift = m_new == -INFINITY ? 0.0f : m_new;  // nothing kept yet: no NaN from -inf - -inf
    const float alpha = __expf(m - shift);
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < HALF; ++c) {
      const float p = __expf(sv[c] - shift);
      sum += p;
      pw[r * G::kLdP + half * HALF + rotated<HALF>(c, lane)] = from_float<T>(p);
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * alpha + sum;
    m = m_new;
    __syncwarp();

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> pv[D / 16];
#pragma unroll
    for (int n = 0; n < D / 16; ++n) wmma::fill_fragment(pv[n], 0.0f);
    accumulate_probs_times_tile<T, D, TILE>(pv, pw, vs);
#pragma unroll
    for (int n = 0; n < D / 16; ++n) wmma::store_matrix_sync(fw + n * 16, pv[n], G::kLdF, wmma::mem_row_major);
    __syncwarp();
#pragma unroll
    for (int i = 0; i < DHALF; ++i) o[i] = o[i] * alpha + fw[r * G::kLdF + half * DHALF + rotated<DHALF>(i, lane)];
    __syncwarp();  // the next tile's products overwrite fw
  }

  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  T* orow = out + base + qi * D + half * DHALF;
#pragma unroll
  for (int i = 0; i < DHALF; ++i) orow[rotated<DHALF>(i, lane)] = from_float<T>(o[i] * inv);
  if (half == 0) lse[bh * s.seq + qi] = l > 0.0f ? m + logf(l) : INFINITY;
}

// dk and dv of one key tile: for every query tile that computes it, P^T and dS^T of the warp's
// 16 keys, then dv += P^T dout and dk += dS^T q.
template <typename T, int D, int TILE>
__global__ void __launch_bounds__(TILE * 2)
    backward_kv_kernel(AttentionShape s, TileLists columns, AdditiveMasks masks, const T* __restrict__ q,
                       const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ dout,
                       const float* __restrict__ lse, const float* __restrict__ delta, T* __restrict__ dk,
                       T* __restrict__ dv) {
  using G = Geometry<T, D, TILE>;
  constexpr int HALF = TILE / 2;
  extern __shared__ __align__(128) unsigned char shared[];
  const SharedRegions<T, D, TILE> sm(shared);
  T *qs = sm.tile_a, *dos = sm.tile_b, *pbuf = sm.probs_a, *dsbuf = sm.probs_b;
  float *fbuf = sm.products, *lse_s = sm.vector_a, *delta_s = sm.vector_b;

  const Place at(s, TILE, D);
  const int warp = at.warp, lane = at.lane, r = at.r, half = at.half, tiles = at.tiles;
  const int64_t bh = at.bh, b = at.b, h = at.h, base = at.base;
  const int col_tile = blockIdx.x;
  const int64_t k0 = static_cast<int64_t>(col_tile) * TILE + warp * 16;
  const int64_t kj = k0 + r;
  float* fw = fbuf + warp * G::kWarpFloats;
  T* pw = pbuf + warp * G::kWarpProbs;
  T* dsw = dsbuf + warp * G::kWarpProbs;

  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> kf[D / 16], vf[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    wmma::load_matrix_sync(kf[kk], k + base + k0 * D + kk * 16, D);
    wmma::load_matrix_sync(vf[kk], v + base + k0 * D + kk * 16, D);
  }
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> dk_acc[D / 16], dv_acc[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) {
    wmma::fill_fragment(dk_acc[n], 0.0f);
    wmma::fill_fragment(dv_acc[n], 0.0f);
  }

  const int32_t* offsets = columns.offsets + h * (tiles + 1);
  for (int32_t t = offsets[col_tile]; t < offsets[col_tile + 1]; ++t) {
    const int64_t q0 = static_cast<int64_t>(columns.indices[t]) * TILE;
    __syncthreads();
    load_tile<T, D, TILE>(qs, q + base + q0 * D);
    load_tile<T, D, TILE>(dos, dout + base + q0 * D);
    for (int i = threadIdx.x; i < TILE; i += G::kThreads) {
      lse_s[i] = lse[bh * s.seq + q0 + i];
      delta_s[i] = delta[bh * s.seq + q0 + i];
    }
    __syncthreads();

    // P^T: the warp's keys (rows) against the tile's queries (columns).
    rows_times_tile_t<T, D, TILE>(kf, qs, fw);
    __syncwarp();
    float pv[HALF];
#pragma unroll
    for (int c = 0; c < HALF; ++c) {
      const int col = half * HALF + rotated<HALF>(c, lane);
      const int64_t qi = q0 + col;
      const float x = masked_score(fw[r * G::kLdF + col], s, masks, b, h, qi, kj);
      pv[c] = __expf(x - lse_s[col]);  // an emptied row has lse +inf: p = 0
      pw[r * G::kLdP + col] = from_float<T>(pv[c]);
    }
    __syncwarp();
    // dP^T = v dout^T, then dS^T = P^T (dP^T - delta).
    rows_times_tile_t<T, D, TILE>(vf, dos, fw);
    __syncwarp();
#pragma unroll
    for (int c = 0; c < HALF; ++c) {
      const int col = half * HALF + rotated<HALF>(c, lane);
      dsw[r * G::kLdP + col] = from_float<T>(pv[c] * (fw[r * G::kLdF + col] - delta_s[col]));
    }
    __syncwarp();
    accumulate_probs_times_tile<T, D, TILE>(dv_acc, pw, dos);
    accumulate_probs_times_tile<T, D, TILE>(dk_acc, dsw, qs);
  }
  __syncwarp();
  store_rows<T, D, TILE>(dk_acc, s.scale, fw, dk + base + k0 * D);
  __syncwarp();
  store_rows<T, D, TILE>(dv_acc, 1.0f, fw, dv + base + k0 * D);
}

// dq of one query tile: for every key tile it computes, dS of the warp's 16 queries, then
// dq += dS k.
template <typename T, int D, int TILE>
__global__ void __launch_bounds__(TILE * 2)
    backward_q_kernel(AttentionShape s, TileLists rows, AdditiveMasks masks, const T* __restrict__ q,
                      const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ dout,
                      const float* __restrict__ lse, const float* __restrict__ delta, T* __restrict__ dq) {
  using G = Geometry<T, D, TILE>;
  constexpr int HALF = TILE / 2;
  extern __shared__ __align__(128) unsigned char shared[];
  const SharedRegions<T, D, TILE> sm(shared);
  T *ks = sm.tile_a, *vs = sm.tile_b, *dsbuf = sm.probs_a;
  float* fbuf = sm.products;

  const Place at(s, TILE, D);
  const int warp = at.warp, lane = at.lane, r = at.r, half = at.half, tiles = at.tiles;
  const int64_t bh = at.bh, b = at.b, h = at.h, base = at.base;
  const int row_tile = blockIdx.x;
  const int64_t q0 = static_cast<int64_t>(row_tile) * TILE + warp * 16;
  const int64_t qi = q0 + r;
  float* fw = fbuf + warp * G::kWarpFloats;
  T* dsw = dsbuf + warp * G::kWarpProbs;
  const float row_lse = lse[bh * s.seq + qi], row_delta = delta[bh * s.seq + qi];

  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[D / 16], dof[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    wmma::load_matrix_sync(qf[kk], q + base + q0 * D + kk * 16, D);
    wmma::load_matrix_sync(dof[kk], dout + base + q0 * D + kk * 16, D);
  }
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> dq_acc[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) wmma::fill_fragment(dq_acc[n], 0.0f);

  const int32_t* offsets = rows.offsets + h * (tiles + 1);
  for (int32_t t = offsets[row_tile]; t < offsets[row_tile + 1]; ++t) {
    const int64_t k0 = static_cast<int64_t>(rows.indices[t]) * TILE;
    __syncthreads();
    load_tile<T, D, TILE>(ks, k + base + k0 * D);
    load_tile<T, D, TILE>(vs, v + base + k0 * D);
    __syncthreads();

    rows_times_tile_t<T, D, TILE>(qf, ks, fw);
    __syncwarp();
    float pv[HALF];
#pragma unroll
    for (int c = 0; c < HALF; ++c) {
      const int col = half * HALF + rotated<HALF>(c, lane);
      const int64_t kj = k0 + col;
      const float x = masked_score(fw[r * G::kLdF + col], s, masks, b, h, qi, kj);
      pv[c] = __expf(x - row_lse);
    }
    __syncwarp();
    rows_times_tile_t<T, D, TILE>(dof, vs, fw);
    __syncwarp();
#pragma unroll
    for (int c = 0; c < HALF; ++c) {
      const int col = half * HALF + rotated<HALF>(c, lane);
      dsw[r * G::kLdP + col] = from_float<T>(pv[c] * (fw[r * G::kLdF + col] - row_delta));
    }
    __syncwarp();
    accumulate_probs_times_tile<T, D, TILE>(dq_acc, dsw, ks);
  }
  __syncwarp();
  store_rows<T, D, TILE>(dq_acc, s.scale, fw, dq + base + q0 * D);
}

// delta[row] = sum_d dout[row, d] * out[row, d] in fp32 (the softmax backward's row term):
// one warp per row.
template <typename T>
__global__ void delta_kernel(const T* __restrict__ dout, const T* __restrict__ out, float* __restrict__ delta,
                             int64_t rows, int dim) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * 8 + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  float s = 0.0f;
  for (int i = lane; i < dim; i += 32) s += static_cast<float>(dout[row * dim + i]) * static_cast<float>(out[row * dim + i]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lane == 0) delta[row] = s;
}

// Launches a kernel with `shared_bytes` of dynamic shared memory: the limit (48 KiB unless
// raised) is raised on every launch, as it is a property of the function on the current device.
template <typename Kernel, typename... Args>
void launch(Kernel kernel, dim3 grid, int threads, size_t shared_bytes, cudaStream_t stream, Args... args) {
  DS_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared_bytes)));
  kernel<<<grid, threads, shared_bytes, stream>>>(args...);
  DS_CUDA_CHECK(cudaGetLastError());
}

template <typename T, int D, int TILE>
void run_forward(const AttentionShape& s, const TileLists& rows, const AdditiveMasks& masks, const void* q,
                 const void* k, const void* v, void* out, float* lse, cudaStream_t stream) {
  using G = Geometry<T, D, TILE>;
  const dim3 grid(static_cast<unsigned>(s.seq / TILE), static_cast<unsigned>(s.batch * s.heads));
  launch(forward_kernel<T, D, TILE>, grid, G::kThreads, G::kSharedBytes, stream, s, rows, masks,
         static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<T*>(out), lse);
}

template <typename T, int D, int TILE>
void run_backward(const AttentionShape& s, const TileLists& rows, const TileLists& columns,
                  const AdditiveMasks& masks, const void* q, const void* k, const void* v, const void* out,
                  const void* dout, const float* lse, float* delta, void* dq, void* dk, void* dv,
                  cudaStream_t stream) {
  using G = Geometry<T, D, TILE>;
  const dim3 grid(static_cast<unsigned>(s.seq / TILE), static_cast<unsigned>(s.batch * s.heads));
  const T* qt = static_cast<const T*>(q);
  const T* kt = static_cast<const T*>(k);
  const T* vt = static_cast<const T*>(v);
  const T* dot = static_cast<const T*>(dout);
  const int64_t row_count = s.batch * s.heads * s.seq;
  delta_kernel<T><<<static_cast<unsigned>((row_count + 7) / 8), 256, 0, stream>>>(
      dot, static_cast<const T*>(out), delta, row_count, D);
  DS_CUDA_CHECK(cudaGetLastError());
  launch(backward_kv_kernel<T, D, TILE>, grid, G::kThreads, G::kSharedBytes, stream, s, columns, masks, qt, kt, vt,
         dot, lse, delta, static_cast<T*>(dk), static_cast<T*>(dv));
  launch(backward_q_kernel<T, D, TILE>, grid, G::kThreads, G::kSharedBytes, stream, s, rows, masks, qt, kt, vt, dot,
         lse, delta, static_cast<T*>(dq));
}

// Every (D, TILE) the kernels take (supported() in block_sparse_attention.cu lists the same).
#define DS_SPARSE_ATTN_SHAPES(CASE) \
  CASE(32, 16) CASE(32, 32) CASE(32, 64) CASE(64, 16) CASE(64, 32) CASE(64, 64) CASE(128, 16) CASE(128, 32) CASE(128, 64)

template <typename T>
void dispatch_forward(const AttentionShape& s, const TileLists& rows, const AdditiveMasks& masks, const void* q,
                      const void* k, const void* v, void* out, float* lse, cudaStream_t stream) {
#define DS_FORWARD_CASE(DD, TT) \
  if (s.head_dim == DD && s.tile == TT) return run_forward<T, DD, TT>(s, rows, masks, q, k, v, out, lse, stream);
  DS_SPARSE_ATTN_SHAPES(DS_FORWARD_CASE)
#undef DS_FORWARD_CASE
  throw std::runtime_error("sparse_attn: no kernel for head_dim " + std::to_string(s.head_dim) + " and tile " +
                           std::to_string(s.tile));
}

template <typename T>
void dispatch_backward(const AttentionShape& s, const TileLists& rows, const TileLists& columns,
                       const AdditiveMasks& masks, const void* q, const void* k, const void* v, const void* out,
                       const void* dout, const float* lse, float* delta, void* dq, void* dk, void* dv,
                       cudaStream_t stream) {
#define DS_BACKWARD_CASE(DD, TT)                                                                                 \
  if (s.head_dim == DD && s.tile == TT)                                                                         \
    return run_backward<T, DD, TT>(s, rows, columns, masks, q, k, v, out, dout, lse, delta, dq, dk, dv, stream);
  DS_SPARSE_ATTN_SHAPES(DS_BACKWARD_CASE)
#undef DS_BACKWARD_CASE
  throw std::runtime_error("sparse_attn: no kernel for head_dim " + std::to_string(s.head_dim) + " and tile " +
                           std::to_string(s.tile));
}

// Each element type is compiled in its own file (block_sparse_attention_fp16.cu, _bf16.cu), in
// parallel.
#define DS_SPARSE_ATTN_INSTANTIATE(EXTERN, T)                                                                      \
  EXTERN template void dispatch_forward<T>(const AttentionShape&, const TileLists&, const AdditiveMasks&,           \
                                           const void*, const void*, const void*, void*, float*, cudaStream_t);    \
  EXTERN template void dispatch_backward<T>(const AttentionShape&, const TileLists&, const TileLists&,              \
                                            const AdditiveMasks&, const void*, const void*, const void*,            \
                                            const void*, const void*, const float*, float*, void*, void*, void*,    \
                                            cudaStream_t);
DS_SPARSE_ATTN_INSTANTIATE(extern, __half)
DS_SPARSE_ATTN_INSTANTIATE(extern, __nv_bfloat16)

}  // namespace kernels
}  // namespace deepspeed::ops::cuda::sparse_attn
