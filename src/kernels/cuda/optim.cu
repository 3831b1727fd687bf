// Sparse optimizer steps on the rows of a coalesced gradient: rows[k] is the table row of
// gradient row k, and rows are unique (a SparseGrad invariant), so blocks never collide. One
// block per gradient row, threads over columns. Hyper-parameters arrive as doubles and are
// cast to ACC (float for f32/f16/bf16 tables, double for f64) like the CPU kernels do.
#include "common.cuh"

// SGD (PyTorch's formula on the touched rows):
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
// The mean is a fixed-shape tree reduction in shared memory (the launcher uses 256 threads).
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
    __syncthreads();  // every thread has read part[0] before the next row overwrites it
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

#define OPTIM(SFX, T, ACC)                                                                      \
  extern "C" __global__ void ce_sgd_rows_##SFX(T* w, T* buf, uint32_t has_buf,                  \
                                               const int64_t* rows, const T* grad,              \
                                               uint32_t nnz, uint32_t dim, double lr,           \
                                               double momentum, double wd) {                    \
    sgd_rows<T, ACC>(w, buf, has_buf, rows, grad, nnz, dim, lr, momentum, wd);                  \
  }                                                                                             \
  extern "C" __global__ void ce_adagrad_rows_##SFX(T* w, T* state, const int64_t* rows,         \
                                                   const T* grad, uint32_t nnz, uint32_t dim,   \
                                                   double clr, double eps) {                    \
    adagrad_rows<T, ACC>(w, state, rows, grad, nnz, dim, clr, eps);                             \
  }                                                                                             \
  extern "C" __global__ void ce_rowwise_adagrad_rows_##SFX(                                     \
      T* w, T* state, const int64_t* rows, const T* grad, uint32_t nnz, uint32_t dim,           \
      double lr, double eps) {                                                                  \
    rowwise_adagrad_rows<T, ACC>(w, state, rows, grad, nnz, dim, lr, eps);                      \
  }                                                                                             \
  extern "C" __global__ void ce_sparse_adam_rows_##SFX(                                         \
      T* w, T* m, T* v, const int64_t* rows, const T* grad, uint32_t nnz, uint32_t dim,         \
      double step_size, double b1, double b2, double eps) {                                     \
    sparse_adam_rows<T, ACC>(w, m, v, rows, grad, nnz, dim, step_size, b1, b2, eps);            \
  }
CE_FOR_EACH_FLOAT(OPTIM)
