// Four consecutive elements as float, read and written with one vector instruction when the
// address allows it. Float16 and BFloat16 values are widened on load and rounded to nearest
// even on store (what torch's .to() does).
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace deepspeed::ops::cuda {

struct Float4 {
  float v[4];
};

template <typename T>
__device__ __forceinline__ float to_float(T x);
template <>
__device__ __forceinline__ float to_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ float to_float<__half>(__half x) { return __half2float(x); }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// The vector type that holds four T: float4 (16 bytes) or uint2 (8 bytes).
template <typename T>
struct Vec4;
template <>
struct Vec4<float> {
  using type = float4;
};
template <>
struct Vec4<__half> {
  using type = uint2;
};
template <>
struct Vec4<__nv_bfloat16> {
  using type = uint2;
};

template <typename T>
__device__ __forceinline__ bool aligned4(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T)) == 0;
}

template <typename T>
__device__ __forceinline__ Float4 load4(const T* p) {
  union {
    typename Vec4<T>::type raw;
    T e[4];
  } u;
  u.raw = *reinterpret_cast<const typename Vec4<T>::type*>(p);
  Float4 out;
#pragma unroll
  for (int i = 0; i < 4; ++i) out.v[i] = to_float(u.e[i]);
  return out;
}

template <typename T>
__device__ __forceinline__ void store4(T* p, const Float4& x) {
  union {
    typename Vec4<T>::type raw;
    T e[4];
  } u;
#pragma unroll
  for (int i = 0; i < 4; ++i) u.e[i] = from_float<T>(x.v[i]);
  *reinterpret_cast<typename Vec4<T>::type*>(p) = u.raw;
}

}  // namespace deepspeed::ops::cuda
