//! The fast rotary kernel as a candle `CustomOp1`, so candle's autograd flows through it: the
//! tables ride along and the backward applies the transposed rotation. CPU storage runs the
//! CPU kernel, CUDA storage our CUDA kernel (`kernels::cuda::rope_storage`).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::{RopeFloat, RopeTables};
use crate::alloc::try_alloc_uninit;
use crate::kernels::cpu::rope::{self, RopeShape};
use crate::{Error, Result};

/// The fast kernel as a candle op: the tables ride along, `bwd` applies the transposed op.
#[derive(Clone)]
pub(super) struct RopeOp {
    pub(super) shape: RopeShape,
    pub(super) tables: Arc<RopeTables>,
    pub(super) transpose: bool,
}

impl RopeOp {
    fn run<T: RopeFloat>(&self, x: &[T]) -> Result<Vec<T>> {
        let mut out = try_alloc_uninit::<T>(x.len())?;
        let (cos, sin) = T::tables(&self.tables);
        rope::check(x.len(), out.len(), &self.shape, cos.len()).map_err(Error::invalid)?;
        rope::rope(x, &mut out, &self.shape, cos, sin, self.transpose);
        Ok(out)
    }
}

impl CustomOp1 for RopeOp {
    fn name(&self) -> &'static str {
        "candle-embed-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (start, end) = l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("rope: input must be contiguous".into()))?;
        let wrap = candle_core::Error::wrap;
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(self.run(&v[start..end]).map_err(wrap)?),
            CpuStorage::F64(v) => CpuStorage::F64(self.run(&v[start..end]).map_err(wrap)?),
            CpuStorage::F16(v) => CpuStorage::F16(self.run(&v[start..end]).map_err(wrap)?),
            CpuStorage::BF16(v) => CpuStorage::BF16(self.run(&v[start..end]).map_err(wrap)?),
            _ => candle_core::bail!("rope: unsupported dtype"),
        };
        Ok((out, l.shape().clone()))
    }

    /// Our CUDA kernel (`RotaryEmbedding::run` applies this op to CUDA tensors only when the
    /// CUDA kernels are on; otherwise they take the portable path).
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let t = &self.tables;
        crate::kernels::cuda::rope_storage(s, l, &self.shape, &t.cos64, &t.sin64, self.transpose)
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let op = RopeOp {
            transpose: !self.transpose,
            ..self.clone()
        };
        Ok(Some(grad.contiguous()?.apply_op1(op)?))
    }
}
