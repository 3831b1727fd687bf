// candle-embed CUDA kernels, compiled to PTX by build.rs when the `cuda` feature is on and loaded
// through candle's `CudaDevice::get_or_load_custom_func`. Every kernel is deterministic: no atomics;
// reductions run in a fixed order (segments are sorted on the host, one block per output row).
// Ids reaching these kernels were validated on the host (ids::validate) before any launch.
#include <cuda_fp16.h>
#include <cuda_bf16.h>
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

// ---- gather: out[i, :] = table[ids[i], :]; a pure copy, so one kernel per element width ----
// block (32, 8): threadIdx.x strides the columns of a row, threadIdx.y picks one of 8 rows.
template <typename E>
__device__ void gather_rows(const E* table, const int64_t* ids, E* out, uint32_t n, uint32_t dim) {
  for (uint64_t r = (uint64_t)blockIdx.x * blockDim.y + threadIdx.y; r < n;
       r += (uint64_t)gridDim.x * blockDim.y) {
    const E* src = table + (uint64_t)ids[r] * dim;
    E* dst = out + r * dim;
    for (uint32_t c = threadIdx.x; c < dim; c += blockDim.x) dst[c] = src[c];
  }
}

// ---- segment reduce: the core of coalesce, scatter-add, embedding and bag backward ----
// Lookups are sorted by destination row on the host: segment s covers sorted positions
// offsets[s]..offsets[s+1]; position j reads source row order[j] with weight wts[j] (1 if
// !has_w). out row = s (add_into = 0: out[s] = sum) or out_rows[s] (add_into = 1: out[r] += sum).
// One block per segment, threads over columns, summed in sorted order: bit-reproducible.
template <typename T, typename ACC>
__device__ void segment_reduce(const T* src, const uint32_t* order, const ACC* wts, uint32_t has_w,
                               const uint32_t* offsets, uint32_t nseg, uint32_t dim, T* out,
                               const int64_t* out_rows, uint32_t add_into) {
  for (uint32_t s = blockIdx.x; s < nseg; s += gridDim.x) {
    const uint32_t lo = offsets[s], hi = offsets[s + 1];
    T* dst = out + (add_into ? (uint64_t)out_rows[s] : (uint64_t)s) * dim;
    for (uint32_t c = threadIdx.x; c < dim; c += blockDim.x) {
      ACC acc = 0;
      for (uint32_t j = lo; j < hi; ++j) {
        ACC v = ld(src + (uint64_t)order[j] * dim + c);
        acc += has_w ? wts[j] * v : v;
      }
      st(dst + c, add_into ? ld(dst + c) + acc : acc);
    }
  }
}

// ---- sparse optimizer steps on coalesced rows (rows unique, so blocks never collide) ----
// SGD (PyTorch's formula applied to the touched rows):
//   g' = g + wd * w;  buf = momentum * buf + g' (if has_buf);  w -= lr * (has_buf ? buf : g')
template <typename T, typename ACC>
__device__ void sgd_rows(T* w, T* buf, uint32_t has_buf, const int64_t* rows, const T* grad,
                         uint32_t nnz, uint32_t dim, double lr, double momentum, double wd) {
  for (uint32_t k = blockIdx.x; k < nnz; k += gridDim.x) {
    const uint64_t r = (uint64_t)rows[k] * dim;
    for (uint32_t c = threadIdx.x; c < dim; c += blockDim.x) {
      ACC g = ld(grad + (uint64_t)k * dim + c);
      ACC wv = ld(w + r + c);
      if (wd != 0.0) g += (ACC)wd * wv;
      if (has_buf) {
        ACC b = (ACC)momentum * ld(buf + r + c) + g;
        st(buf + r + c, b);
        g = b;
      }
      st(w + r + c, wv - (ACC)lr * g);
    }
  }
}

// Adagrad (element-wise): state += g^2;  w -= clr * g / (sqrt(state) + eps)
template <typename T, typename ACC>
__device__ void adagrad_rows(T* w, T* state, const int64_t* rows, const T* grad, uint32_t nnz,
                             uint32_t dim, double clr, double eps) {
  for (uint32_t k = blockIdx.x; k < nnz; k += gridDim.x) {
    const uint64_t r = (uint64_t)rows[k] * dim;
    for (uint32_t c = threadIdx.x; c < dim; c += blockDim.x) {
      ACC g = ld(grad + (uint64_t)k * dim + c);
      ACC s = ld(state + r + c) + g * g;
      st(state + r + c, s);
      st(w + r + c, ld(w + r + c) - (ACC)clr * g / (sqrt_acc(s) + (ACC)eps));
    }
  }
}

// Row-wise Adagrad (FBGEMM): state[row] += mean(g^2);  w -= lr * g / (sqrt(state[row]) + eps).
// The mean is a fixed-shape tree reduction in shared memory (blockDim.x must be 256).
template <typename T, typename ACC>
__device__ void rowwise_adagrad_rows(T* w, T* state, const int64_t* rows, const T* grad,
                                     uint32_t nnz, uint32_t dim, double lr, double eps) {
  __shared__ ACC part[256];
  for (uint32_t k = blockIdx.x; k < nnz; k += gridDim.x) {
    ACC sq = 0;
    for (uint32_t c = threadIdx.x; c < dim; c += blockDim.x) {
      ACC g = ld(grad + (uint64_t)k * dim + c);
      sq += g * g;
    }
    part[threadIdx.x] = sq;
    __syncthreads();
    for (uint32_t h = blockDim.x / 2; h > 0; h >>= 1) {
      if (threadIdx.x < h) part[threadIdx.x] += part[threadIdx.x + h];
      __syncthreads();
    }
    const int64_t row = rows[k];
    const ACC s = ld(state + row) + part[0] / (ACC)dim;
    __syncthreads();
    if (threadIdx.x == 0) st(state + row, s);
    const ACC denom = sqrt_acc(s) + (ACC)eps;
    const uint64_t r = (uint64_t)row * dim;
    for (uint32_t c = threadIdx.x; c < dim; c += blockDim.x) {
      ACC g = ld(grad + (uint64_t)k * dim + c);
      st(w + r + c, ld(w + r + c) - (ACC)lr * g / denom);
    }
  }
}

// SparseAdam (lazy): m += (1-b1)(g-m); v += (1-b2)(g^2-v); w -= step_size * m / (sqrt(v) + eps)
// with step_size = lr * sqrt(1 - b2^t) / (1 - b1^t) computed on the host.
template <typename T, typename ACC>
__device__ void sparse_adam_rows(T* w, T* m, T* v, const int64_t* rows, const T* grad,
                                 uint32_t nnz, uint32_t dim, double step_size, double b1,
                                 double b2, double eps) {
  for (uint32_t k = blockIdx.x; k < nnz; k += gridDim.x) {
    const uint64_t r = (uint64_t)rows[k] * dim;
    for (uint32_t c = threadIdx.x; c < dim; c += blockDim.x) {
      ACC g = ld(grad + (uint64_t)k * dim + c);
      ACC mv = ld(m + r + c);
      ACC vv = ld(v + r + c);
      mv += ((ACC)1 - (ACC)b1) * (g - mv);
      vv += ((ACC)1 - (ACC)b2) * (g * g - vv);
      st(m + r + c, mv);
      st(v + r + c, vv);
      st(w + r + c, ld(w + r + c) - (ACC)step_size * mv / (sqrt_acc(vv) + (ACC)eps));
    }
  }
}

// ---- EmbeddingBag forward: bag b = ids[offsets[b]..offsets[b+1]] (CSR, B+1 offsets) ----
// mode 0 = sum (optionally weighted), 1 = mean, 2 = max. Rows equal to padding_idx (-1 = none)
// are skipped and not counted; an empty bag gives zeros (max: argmax = -1).
template <typename T, typename ACC>
__device__ void bag_forward(const T* table, const int64_t* ids, const int64_t* offsets,
                            const ACC* wts, uint32_t has_w, uint32_t nbags, uint32_t dim,
                            uint32_t mode, int64_t padding_idx, T* out, int64_t* argmax) {
  for (uint32_t b = blockIdx.x; b < nbags; b += gridDim.x) {
    const int64_t lo = offsets[b], hi = offsets[b + 1];
    for (uint32_t c = threadIdx.x; c < dim; c += blockDim.x) {
      ACC acc = 0;
      int64_t count = 0, best = -1;
      for (int64_t j = lo; j < hi; ++j) {
        const int64_t id = ids[j];
        if (id == padding_idx) continue;
        ACC v = ld(table + (uint64_t)id * dim + c);
        if (mode == 2) {
          if (best < 0 || v > acc) { acc = v; best = id; }
        } else {
          acc += has_w ? wts[j] * v : v;
        }
        ++count;
      }
      if (mode == 1 && count > 0) acc /= (ACC)count;
      st(out + (uint64_t)b * dim + c, acc);
      if (mode == 2) argmax[(uint64_t)b * dim + c] = best;
    }
  }
}

// ---- RoPE on x (n_rows = prod(leading) * T, head_dim), cos/sin (T, rot/2) in ACC precision ----
// half layout pairs (i, i + rot/2); interleaved pairs (2i, 2i+1); columns >= rot pass through.
// sign = +1 forward, -1 backward (the transpose of a rotation is the rotation by -theta).
template <typename T, typename ACC>
__device__ void rope(const T* x, const ACC* cos_t, const ACC* sin_t, T* out, uint32_t n_rows,
                     uint32_t seq, uint32_t head_dim, uint32_t rot, uint32_t interleaved,
                     float sign) {
  const uint32_t half = rot / 2;
  const uint32_t per_row = half + (head_dim - rot);
  const uint64_t total = (uint64_t)n_rows * per_row;
  for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (uint64_t)gridDim.x * blockDim.x) {
    const uint64_t row = i / per_row;
    const uint32_t k = (uint32_t)(i % per_row);
    const T* xr = x + row * head_dim;
    T* o = out + row * head_dim;
    if (k >= half) {  // pass-through column
      const uint32_t col = rot + (k - half);
      o[col] = xr[col];
      continue;
    }
    const uint32_t t = (uint32_t)(row % seq);
    const ACC cs = cos_t[(uint64_t)t * half + k];
    const ACC sn = (ACC)sign * sin_t[(uint64_t)t * half + k];
    const uint32_t ia = interleaved ? 2 * k : k;
    const uint32_t ib = interleaved ? 2 * k + 1 : k + half;
    const ACC a = ld(xr + ia), b = ld(xr + ib);
    st(o + ia, a * cs - b * sn);
    st(o + ib, b * cs + a * sn);
  }
}

// ---- extern "C" entry points, one per element type ----
#define GATHER(NAME, E)                                                                        \
  extern "C" __global__ void NAME(const E* table, const int64_t* ids, E* out, uint32_t n,      \
                                  uint32_t dim) {                                              \
    gather_rows<E>(table, ids, out, n, dim);                                                   \
  }
GATHER(ce_gather_u16, uint16_t)
GATHER(ce_gather_u32, uint32_t)
GATHER(ce_gather_u64, uint64_t)

#define FLOAT_OPS(SFX, T, ACC)                                                                 \
  extern "C" __global__ void ce_segment_reduce_##SFX(                                          \
      const T* src, const uint32_t* order, const ACC* wts, uint32_t has_w,                     \
      const uint32_t* offsets, uint32_t nseg, uint32_t dim, T* out, const int64_t* out_rows,   \
      uint32_t add_into) {                                                                     \
    segment_reduce<T, ACC>(src, order, wts, has_w, offsets, nseg, dim, out, out_rows,          \
                           add_into);                                                          \
  }                                                                                            \
  extern "C" __global__ void ce_sgd_rows_##SFX(T* w, T* buf, uint32_t has_buf,                 \
                                               const int64_t* rows, const T* grad,             \
                                               uint32_t nnz, uint32_t dim, double lr,          \
                                               double momentum, double wd) {                   \
    sgd_rows<T, ACC>(w, buf, has_buf, rows, grad, nnz, dim, lr, momentum, wd);                 \
  }                                                                                            \
  extern "C" __global__ void ce_adagrad_rows_##SFX(T* w, T* state, const int64_t* rows,        \
                                                   const T* grad, uint32_t nnz, uint32_t dim,  \
                                                   double clr, double eps) {                   \
    adagrad_rows<T, ACC>(w, state, rows, grad, nnz, dim, clr, eps);                            \
  }                                                                                            \
  extern "C" __global__ void ce_rowwise_adagrad_rows_##SFX(                                    \
      T* w, T* state, const int64_t* rows, const T* grad, uint32_t nnz, uint32_t dim,          \
      double lr, double eps) {                                                                 \
    rowwise_adagrad_rows<T, ACC>(w, state, rows, grad, nnz, dim, lr, eps);                     \
  }                                                                                            \
  extern "C" __global__ void ce_sparse_adam_rows_##SFX(                                        \
      T* w, T* m, T* v, const int64_t* rows, const T* grad, uint32_t nnz, uint32_t dim,        \
      double step_size, double b1, double b2, double eps) {                                    \
    sparse_adam_rows<T, ACC>(w, m, v, rows, grad, nnz, dim, step_size, b1, b2, eps);           \
  }                                                                                            \
  extern "C" __global__ void ce_bag_forward_##SFX(                                             \
      const T* table, const int64_t* ids, const int64_t* offsets, const ACC* wts,              \
      uint32_t has_w, uint32_t nbags, uint32_t dim, uint32_t mode, int64_t padding_idx,        \
      T* out, int64_t* argmax) {                                                               \
    bag_forward<T, ACC>(table, ids, offsets, wts, has_w, nbags, dim, mode, padding_idx, out,   \
                        argmax);                                                               \
  }                                                                                            \
  extern "C" __global__ void ce_rope_##SFX(const T* x, const ACC* cos_t, const ACC* sin_t,     \
                                           T* out, uint32_t n_rows, uint32_t seq,              \
                                           uint32_t head_dim, uint32_t rot,                    \
                                           uint32_t interleaved, float sign) {                 \
    rope<T, ACC>(x, cos_t, sin_t, out, n_rows, seq, head_dim, rot, interleaved, sign);         \
  }
FLOAT_OPS(f32, float, float)
FLOAT_OPS(f64, double, double)
FLOAT_OPS(f16, __half, float)
FLOAT_OPS(bf16, __nv_bfloat16, float)
