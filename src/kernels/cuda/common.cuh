// Shared by every candle-embed CUDA kernel file (each .cu is compiled by build.rs to its own
// fatbin and loaded as its own module). Every kernel is deterministic: no atomics; reductions run
// in a fixed order. Ids reaching a kernel were validated on the host (ids::validate) before any
// launch, so kernels never bounds-check them.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

// ---- element types: storage T, accumulator ACC (float for f16/bf16/f32, double for f64) ----
__device__ __forceinline__ float ld(const float* p) { return *p; }
__device__ __forceinline__ double ld(const double* p) { return *p; }
__device__ __forceinline__ float ld(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float ld(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void st(float* p, float v) { *p = v; }
__device__ __forceinline__ void st(double* p, double v) { *p = v; }
__device__ __forceinline__ void st(__half* p, float v) { *p = __float2half(v); }
__device__ __forceinline__ void st(__nv_bfloat16* p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ float sqrt_acc(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_acc(double x) { return sqrt(x); }

// Instantiates M(suffix, storage type, accumulator type) for every float dtype; the suffix is
// the one the Rust launchers append to a kernel's name (launch::suffix).
#define CE_FOR_EACH_FLOAT(M)          \
  M(f32, float, float)                \
  M(f64, double, double)              \
  M(f16, __half, float)               \
  M(bf16, __nv_bfloat16, float)
