//! `index_add` on a tensor of any device, routed to its fast path: `dst[ids[i], :] += src[i, :]`
//! (`dst` `(V, D)`, `src` `(n, D)`), returned as a new tensor with `dst` unchanged.
//!
//! It lives in the kernels layer, not in `sparse`, because it picks between the grouping
//! layer's CPU kernel (`sparse::index_add`) and a CUDA kernel above it; every path is
//! deterministic (rows sorted by destination, each summed in ascending position order).

use candle_core::Tensor;

use crate::ids::Id;
use crate::sparse::{index_add, index_add_portable};
use crate::Result;

/// `dst` with `src` rows added at `ids`, on `dst`'s device: the CPU kernel on CPU, our sorted
/// segment-add kernel on CUDA when the CUDA kernels are on (`kernels::cuda::enabled`), else
/// the portable path (candle's `index_add`, the reference).
pub fn index_add_tensor<I: Id>(dst: &Tensor, ids: &[I], src: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if super::cuda::active(dst.device()) {
        return super::cuda::index_add(dst, ids, src);
    }
    let (rows, dim) = dst.dims2()?;
    if !dst.device().is_cpu() || !src.device().is_cpu() || src.dtype() != dst.dtype() {
        return index_add_portable(dst, ids, src);
    }
    let (dst, src) = (dst.contiguous()?, src.contiguous()?);
    crate::with_float!(dst.dtype(), T => {
        let out = crate::storage::read::<T, Result<Vec<T>>>(&dst, |d| {
            crate::storage::read::<T, Result<Vec<T>>>(&src, |s| index_add(d, dim, ids, s))?
        })??;
        Ok(Tensor::from_vec(out, (rows, dim), &candle_core::Device::Cpu)?)
    })
}
