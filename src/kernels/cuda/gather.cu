// Row moves between a table and packed rows, pure copies, so the kernels are typed by the width
// of the unit they move, not by dtype:
//   gather  (scatter = 0): dst[i, :] = src[ids[i], :]   (lookup)
//   scatter (scatter = 1): dst[ids[i], :] = src[i, :]   (writing rows back; ids unique)
// The launcher picks the widest unit (16, 8, 4 or 2 bytes) that divides the row's byte length
// and both base addresses, so a 128-float row moves as 32 16-byte loads: one warp instruction
// per row, the access pattern that reaches copy bandwidth. Block (threads per row, rows per
// block): threadIdx.x strides the units of a row, threadIdx.y picks a row; grid-stride loop.
#include "common.cuh"

template <typename U>
__device__ void move_rows(const U* src, const int64_t* ids, U* dst, uint32_t n,
                          uint32_t row_units, uint32_t scatter) {
  for (uint64_t r = (uint64_t)blockIdx.x * blockDim.y + threadIdx.y; r < n;
       r += (uint64_t)gridDim.x * blockDim.y) {
    const uint64_t from = scatter ? r : (uint64_t)ids[r];
    const uint64_t to = scatter ? (uint64_t)ids[r] : r;
    const U* s = src + from * row_units;
    U* d = dst + to * row_units;
    for (uint32_t c = threadIdx.x; c < row_units; c += blockDim.x) d[c] = s[c];
  }
}

#define MOVE_ROWS(NAME, U)                                                                      \
  extern "C" __global__ void NAME(const U* src, const int64_t* ids, U* dst, uint32_t n,         \
                                  uint32_t row_units, uint32_t scatter) {                       \
    move_rows<U>(src, ids, dst, n, row_units, scatter);                                         \
  }
MOVE_ROWS(ce_move_rows_u16, uint16_t)
MOVE_ROWS(ce_move_rows_u32, uint32_t)
MOVE_ROWS(ce_move_rows_u64, uint2)
MOVE_ROWS(ce_move_rows_u128, uint4)
