// Row gather: out[i, :] = table[ids[i], :], a pure copy, so the kernels are typed by the width
// of the unit they move, not by dtype. The launcher picks the widest unit (16, 8, 4 or 2 bytes)
// that divides the row's byte length and both base addresses, so a 128-float row moves as 32
// 16-byte loads: one warp instruction per row, the access pattern that reaches copy bandwidth.
// Block (32, 8): threadIdx.x strides the units of a row, threadIdx.y picks one of 8 rows; a
// grid-stride loop covers any number of rows.
#include "common.cuh"

template <typename U>
__device__ void gather_rows(const U* table, const int64_t* ids, U* out, uint32_t n,
                            uint32_t row_units) {
  for (uint64_t r = (uint64_t)blockIdx.x * blockDim.y + threadIdx.y; r < n;
       r += (uint64_t)gridDim.x * blockDim.y) {
    const U* src = table + (uint64_t)ids[r] * row_units;
    U* dst = out + r * row_units;
    for (uint32_t c = threadIdx.x; c < row_units; c += blockDim.x) dst[c] = src[c];
  }
}

#define GATHER(NAME, U)                                                                         \
  extern "C" __global__ void NAME(const U* table, const int64_t* ids, U* out, uint32_t n,       \
                                  uint32_t row_units) {                                         \
    gather_rows<U>(table, ids, out, n, row_units);                                              \
  }
GATHER(ce_gather_u16, uint16_t)
GATHER(ce_gather_u32, uint32_t)
GATHER(ce_gather_u64, uint2)
GATHER(ce_gather_u128, uint4)
