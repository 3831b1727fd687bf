// RoPE on x (n_rows = prod(leading dims) * T rows of head_dim) with cos/sin tables
// (batches, T, rot/2) in ACC precision: row r uses table batch r / rows_per_batch (one batch:
// rows_per_batch = n_rows) and time step r % T, as the CPU kernel (kernels/cpu/rope.rs). The
// half layout pairs columns (i, i + rot/2), the interleaved one (2i, 2i+1); columns >= rot pass
// through. sign = +1 forward, -1 backward (the transpose of a rotation is the rotation by
// -theta). One thread per pair or pass-through column, grid-stride.
#include "common.cuh"

template <typename T, typename ACC>
__device__ void rope(const T* x, const ACC* cos_t, const ACC* sin_t, T* out, uint64_t n_rows,
                     uint64_t rows_per_batch, uint32_t seq, uint32_t head_dim, uint32_t rot,
                     uint32_t interleaved, float sign) {
  const uint32_t half = rot / 2;
  const uint32_t per_row = half + (head_dim - rot);
  const uint64_t total = n_rows * per_row;
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
    const uint64_t t = (row / rows_per_batch) * seq + row % seq;
    const ACC cs = cos_t[t * half + k];
    const ACC sn = (ACC)sign * sin_t[t * half + k];
    const uint32_t ia = interleaved ? 2 * k : k;
    const uint32_t ib = interleaved ? 2 * k + 1 : k + half;
    const ACC a = ld(xr + ia), b = ld(xr + ib);
    st(o + ia, a * cs - b * sn);
    st(o + ib, b * cs + a * sn);
  }
}

#define ROPE(SFX, T, ACC)                                                                       \
  extern "C" __global__ void ce_rope_##SFX(const T* x, const ACC* cos_t, const ACC* sin_t,      \
                                           T* out, uint64_t n_rows, uint64_t rows_per_batch,    \
                                           uint32_t seq, uint32_t head_dim, uint32_t rot,       \
                                           uint32_t interleaved, float sign) {                  \
    rope<T, ACC>(x, cos_t, sin_t, out, n_rows, rows_per_batch, seq, head_dim, rot, interleaved, \
                 sign);                                                                         \
  }
CE_FOR_EACH_FLOAT(ROPE)
