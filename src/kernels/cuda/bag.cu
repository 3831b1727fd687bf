// EmbeddingBag forward: bag b = ids[offsets[b]..offsets[b+1]] (CSR bounds, B + 1 entries,
// checked on the host by the shared EmbeddingBag::bags). mode 0 = sum (optionally weighted by
// wts), 1 = mean, 2 = max. Rows equal to padding_idx (-1 = none) are skipped and not counted;
// an empty bag gives zeros. One block per bag, threads over columns, each column reduced in bag
// order, as the CPU kernel (kernels/cpu/bag.rs) does: the mean multiplies by 1/count, the max
// starts at -inf and takes strictly greater values. The backward is a segment reduce
// (scatter.cu) over a host plan that maps each lookup to its bag's gradient row.
#include "common.cuh"

template <typename T, typename ACC>
__device__ void bag_forward(const T* table, const int64_t* ids, const int64_t* offsets,
                            const ACC* wts, uint32_t has_w, uint32_t nbags, uint32_t dim,
                            uint32_t mode, int64_t padding_idx, T* out) {
  for (uint32_t b = blockIdx.x; b < nbags; b += gridDim.x) {
    const int64_t lo = offsets[b], hi = offsets[b + 1];
    for (uint32_t c = threadIdx.x; c < dim; c += blockDim.x) {
      ACC acc = mode == 2 ? -(ACC)INFINITY : (ACC)0;
      int64_t count = 0;
      for (int64_t j = lo; j < hi; ++j) {
        const int64_t id = ids[j];
        if (id == padding_idx) continue;
        const ACC v = ld(table + (uint64_t)id * dim + c);
        if (mode == 2) {
          if (v > acc) acc = v;
        } else {
          acc += has_w ? wts[j] * v : v;
        }
        ++count;
      }
      if (count == 0) {
        acc = 0;
      } else if (mode == 1) {
        acc = acc * ((ACC)1 / (ACC)count);
      }
      st(out + (uint64_t)b * dim + c, acc);
    }
  }
}

#define BAG_FORWARD(SFX, T, ACC)                                                                \
  extern "C" __global__ void ce_bag_forward_##SFX(                                              \
      const T* table, const int64_t* ids, const int64_t* offsets, const ACC* wts,               \
      uint32_t has_w, uint32_t nbags, uint32_t dim, uint32_t mode, int64_t padding_idx,         \
      T* out) {                                                                                 \
    bag_forward<T, ACC>(table, ids, offsets, wts, has_w, nbags, dim, mode, padding_idx, out);   \
  }
CE_FOR_EACH_FLOAT(BAG_FORWARD)
