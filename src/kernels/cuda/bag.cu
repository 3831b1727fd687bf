// EmbeddingBag forward: bag b = ids[offsets[b]..offsets[b+1]] (CSR, B + 1 offsets, checked on the
// host). mode 0 = sum (optionally weighted by wts), 1 = mean, 2 = max. Rows equal to padding_idx
// (-1 = none) are skipped and not counted; an empty bag gives zeros (max: argmax = -1). One block
// per bag, threads over columns, each column reduced in bag order: deterministic. The backward
// is a segment reduce (scatter.cu) over a host plan that maps each lookup to its bag's row.
#include "common.cuh"

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
          if (best < 0 || v > acc) {
            acc = v;
            best = id;
          }
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

#define BAG_FORWARD(SFX, T, ACC)                                                                \
  extern "C" __global__ void ce_bag_forward_##SFX(                                              \
      const T* table, const int64_t* ids, const int64_t* offsets, const ACC* wts,               \
      uint32_t has_w, uint32_t nbags, uint32_t dim, uint32_t mode, int64_t padding_idx,         \
      T* out, int64_t* argmax) {                                                                \
    bag_forward<T, ACC>(table, ids, offsets, wts, has_w, nbags, dim, mode, padding_idx, out,    \
                        argmax);                                                                \
  }
CE_FOR_EACH_FLOAT(BAG_FORWARD)
