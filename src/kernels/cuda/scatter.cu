// Segment reduce: the core of coalesce, the embedding and bag backward, and scatter-add.
// Lookups are sorted by destination row on the host (kernels::segments::SegmentPlan): segment s
// covers sorted positions offsets[s]..offsets[s+1]; position j reads source row order[j] with
// weight wts[j] (1 if !has_w). Output row = s (add_into = 0: out[s] = sum) or out_rows[s]
// (add_into = 1: out[out_rows[s]] += sum). One block per segment, threads over columns, each
// column summed in sorted order in ACC precision: bit-reproducible run to run, no atomics.
#include "common.cuh"

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

#define SEGMENT_REDUCE(SFX, T, ACC)                                                             \
  extern "C" __global__ void ce_segment_reduce_##SFX(                                           \
      const T* src, const uint32_t* order, const ACC* wts, uint32_t has_w,                      \
      const uint32_t* offsets, uint32_t nseg, uint32_t dim, T* out, const int64_t* out_rows,    \
      uint32_t add_into) {                                                                      \
    segment_reduce<T, ACC>(src, order, wts, has_w, offsets, nseg, dim, out, out_rows,           \
                           add_into);                                                           \
  }
CE_FOR_EACH_FLOAT(SEGMENT_REDUCE)
