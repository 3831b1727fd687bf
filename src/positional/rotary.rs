//! Rotary position embedding (RoPE; Su et al.), in both layouts, partial, with every Hugging
//! Face scaling type (see [`super::rope_scaling`]).
//!
//! For `x` of shape `(..., T, head_dim)` and positions `p_t` (shared `(T,)`, per batch `(B, T)`
//! with `B = x.shape[0]`, or `offset..offset+T`), the first `rotary_dim =
//! int(head_dim * partial_rotary_factor)` dims are rotated pairwise by `θ_{t,i} = p_t · inv_freq_i`,
//! with cos and sin scaled by the attention factor; the rest pass through. The backward is the
//! transposed rotation (`sin -> −sin`), so `backward(forward(x)) = attention_scaling² · x`.
//!
//! Three forward paths: [`RotaryEmbedding::forward`] (the fast CPU kernel behind a candle
//! `CustomOp1` with a backward, so autograd flows through it; other devices use the portable
//! path), [`RotaryEmbedding::forward_portable`] (candle `narrow`/`mul`/`cat`, any device, the
//! reference), and [`RotaryEmbedding::forward_fused`] (candle-nn's `rope`/`rope_i`, no backward).
//! Frequencies and tables are computed in f64, tables cast to the arithmetic type once.
//! Dynamic and LongRoPE frequencies depend on `max(position) + 1` of each call (stateless,
//! unlike transformers' cache that keeps the longest length seen).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, D};
use rayon::prelude::*;

pub use super::rope_scaling::{RopeParameters, RopeScaling};
use crate::dtype::Float;
use crate::ids::Id;
pub use crate::kernels::cpu::rope::RopeLayout;
use crate::kernels::cpu::rope::{self, RopeShape};
use crate::{bail_invalid, bail_shape, threads, Error, Result};

/// Largest position accepted (exact in f64).
pub const MAX_POSITION: usize = 1 << 53;

/// Configuration of a [`RotaryEmbedding`] (the Python constructor's keyword arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct RotaryConfig {
    /// `rope_theta`.
    pub base: f64,
    pub max_position_embeddings: usize,
    pub partial_rotary_factor: f64,
    pub layout: RopeLayout,
    pub scaling: RopeScaling,
}

impl Default for RotaryConfig {
    fn default() -> Self {
        RotaryConfig {
            base: 10000.0,
            max_position_embeddings: 2048,
            partial_rotary_factor: 1.0,
            layout: RopeLayout::Half,
            scaling: RopeScaling::Default,
        }
    }
}

impl RotaryConfig {
    /// Apply a transformers `rope_parameters` dict: its scaling, and its `rope_theta` /
    /// `partial_rotary_factor` when present (they override `base` / `partial_rotary_factor`).
    pub fn with_rope_parameters(mut self, params: &serde_json::Value) -> Result<Self> {
        let p = RopeParameters::from_json(params)?;
        self.scaling = p.scaling;
        if let Some(b) = p.rope_theta {
            self.base = b;
        }
        if let Some(f) = p.partial_rotary_factor {
            self.partial_rotary_factor = f;
        }
        Ok(self)
    }
}

/// The positions of one call: `offset..offset + T`, one `(T,)` list for every row, or one list
/// per leading batch index (`(B, T)`, row-major).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Positions {
    Range {
        offset: usize,
    },
    Shared(Vec<usize>),
    PerBatch {
        batches: usize,
        positions: Vec<usize>,
    },
}

impl Positions {
    /// Validate integer positions of shape `(T,)` or `(B, T)`: each in `0..MAX_POSITION`
    /// (`IndexOutOfRange` otherwise).
    pub fn from_ids<I: Id>(ids: &[I], shape: &[usize]) -> Result<Self> {
        crate::ids::validate(ids, MAX_POSITION, "position", "rotary positions")?;
        let v: Vec<usize> = ids.iter().map(|i| i.index()).collect();
        match *shape {
            [_] => Ok(Positions::Shared(v)),
            [b, _] => Ok(Positions::PerBatch {
                batches: b,
                positions: v,
            }),
            _ => Err(Error::shape(format!(
                "positions must have shape (T,) or (B, T), got {shape:?}"
            ))),
        }
    }

    /// `offset..offset+T`, checked against `MAX_POSITION`.
    pub fn offset(offset: i64) -> Result<Self> {
        if offset < 0 || offset as u128 >= MAX_POSITION as u128 {
            return Err(Error::IndexOutOfRange {
                what: "offset",
                index: offset as i128,
                container: "rotary positions",
                size: MAX_POSITION,
            });
        }
        Ok(Positions::Range {
            offset: offset as usize,
        })
    }
}

/// cos/sin tables of one call, `(batches, T, rotary_dim/2)`, attention scaling applied,
/// computed in f64 and kept in f32 too.
#[derive(Debug)]
pub struct RopeTables {
    pub batches: usize,
    pub seq_len: usize,
    pub half: usize,
    pub cos64: Vec<f64>,
    pub sin64: Vec<f64>,
    pub cos32: Vec<f32>,
    pub sin32: Vec<f32>,
}

/// Element types the kernel runs on, with the table precision each uses.
pub trait RopeFloat: Float {
    fn tables(t: &RopeTables) -> (&[Self::Acc], &[Self::Acc]);
}
impl RopeFloat for f32 {
    fn tables(t: &RopeTables) -> (&[f32], &[f32]) {
        (&t.cos32, &t.sin32)
    }
}
impl RopeFloat for f64 {
    fn tables(t: &RopeTables) -> (&[f64], &[f64]) {
        (&t.cos64, &t.sin64)
    }
}
impl RopeFloat for half::f16 {
    fn tables(t: &RopeTables) -> (&[f32], &[f32]) {
        (&t.cos32, &t.sin32)
    }
}
impl RopeFloat for half::bf16 {
    fn tables(t: &RopeTables) -> (&[f32], &[f32]) {
        (&t.cos32, &t.sin32)
    }
}

type TableKey = (Positions, usize);

/// A rotary embedding: frequencies, attention factor and the last cos/sin tables (reused while
/// the positions repeat, as q and k of every layer do).
#[derive(Debug)]
pub struct RotaryEmbedding {
    head_dim: usize,
    rotary_dim: usize,
    config: RotaryConfig,
    inv_freq: Vec<f64>,
    attention_scaling: f64,
    cache: Mutex<Option<(TableKey, Arc<RopeTables>)>>,
}

impl Clone for RotaryEmbedding {
    fn clone(&self) -> Self {
        RotaryEmbedding {
            head_dim: self.head_dim,
            rotary_dim: self.rotary_dim,
            config: self.config.clone(),
            inv_freq: self.inv_freq.clone(),
            attention_scaling: self.attention_scaling,
            cache: Mutex::new(None),
        }
    }
}

impl RotaryEmbedding {
    /// `head_dim` and `rotary_dim = int(head_dim * partial_rotary_factor)` must be even and
    /// positive; `base > 0`, `max_position_embeddings > 0`, `0 < partial_rotary_factor <= 1`.
    pub fn new(head_dim: usize, config: RotaryConfig) -> Result<Self> {
        if head_dim == 0 || head_dim % 2 != 0 {
            bail_invalid!("head_dim must be a positive even number, got {head_dim}");
        }
        let f = config.partial_rotary_factor;
        if !(f > 0.0 && f <= 1.0) {
            bail_invalid!("partial_rotary_factor must be in (0, 1], got {f}");
        }
        if !(config.base.is_finite() && config.base > 1.0) {
            bail_invalid!("base must be a finite number > 1, got {}", config.base);
        }
        if config.max_position_embeddings == 0 {
            bail_invalid!("max_position_embeddings must be positive");
        }
        let rotary_dim = (head_dim as f64 * f) as usize;
        if rotary_dim == 0 || rotary_dim % 2 != 0 {
            bail_invalid!(
                "rotary_dim = int(head_dim * partial_rotary_factor) = int({head_dim} * {f}) = \
                 {rotary_dim} must be a positive even number"
            );
        }
        if matches!(config.scaling, RopeScaling::Dynamic { .. }) && rotary_dim <= 2 {
            bail_invalid!("rope_type 'dynamic' needs rotary_dim > 2, got {rotary_dim}");
        }
        config.scaling.validate(rotary_dim)?;
        let (inv_freq, attention_scaling) = config.scaling.compute(
            config.base,
            rotary_dim,
            config.max_position_embeddings,
            None,
        );
        if !attention_scaling.is_finite() || inv_freq.iter().any(|v| !v.is_finite()) {
            bail_invalid!(
                "rope scaling '{}' gives non-finite frequencies or attention factor",
                config.scaling.name()
            );
        }
        Ok(RotaryEmbedding {
            head_dim,
            rotary_dim,
            config,
            inv_freq,
            attention_scaling,
            cache: Mutex::new(None),
        })
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
    }
    pub fn rotary_dim(&self) -> usize {
        self.rotary_dim
    }
    pub fn config(&self) -> &RotaryConfig {
        &self.config
    }
    /// The inverse frequencies at initialisation (`rotary_dim / 2`, f64).
    pub fn inv_freq(&self) -> &[f64] {
        &self.inv_freq
    }
    /// The factor cos and sin are multiplied by.
    pub fn attention_scaling(&self) -> f64 {
        self.attention_scaling
    }

    /// `(inv_freq, attention_scaling)` in effect for a sequence of `seq_len` positions
    /// (`max(position) + 1`): differs from the initial ones only for dynamic and longrope.
    pub fn frequencies(&self, seq_len: usize) -> (Vec<f64>, f64) {
        if !self.config.scaling.depends_on_length() {
            return (self.inv_freq.clone(), self.attention_scaling);
        }
        self.config.scaling.compute(
            self.config.base,
            self.rotary_dim,
            self.config.max_position_embeddings,
            Some(seq_len),
        )
    }

    /// cos/sin tables for `positions` and `seq_len` time steps (cached for repeated calls).
    pub fn tables(&self, positions: &Positions, seq_len: usize) -> Result<Arc<RopeTables>> {
        let key = (positions.clone(), seq_len);
        if let Some((k, t)) = &*self.cache.lock().unwrap_or_else(|e| e.into_inner()) {
            if *k == key {
                return Ok(t.clone());
            }
        }
        let (batches, pos): (usize, Vec<usize>) = match positions {
            Positions::Range { offset } => {
                if offset.saturating_add(seq_len) > MAX_POSITION {
                    return Err(Error::IndexOutOfRange {
                        what: "position",
                        index: (offset + seq_len) as i128 - 1,
                        container: "rotary positions",
                        size: MAX_POSITION,
                    });
                }
                (1, (*offset..offset + seq_len).collect())
            }
            Positions::Shared(p) => {
                if p.len() != seq_len {
                    bail_shape!(
                        "positions have {} entries, but x has T = {seq_len} time steps",
                        p.len()
                    );
                }
                (1, p.clone())
            }
            Positions::PerBatch { batches, positions } => {
                if *batches * seq_len != positions.len() {
                    bail_shape!(
                        "positions of shape ({batches}, {}) do not match T = {seq_len}",
                        positions.len() / (*batches).max(1)
                    );
                }
                (*batches, positions.clone())
            }
        };
        let len = pos.iter().max().map_or(0, |m| m + 1);
        let (inv, att) = self.frequencies(len);
        let half = self.rotary_dim / 2;
        let n = pos.len() * half;
        let (mut cos64, mut sin64) = (vec![0f64; n], vec![0f64; n]);
        let (mut cos32, mut sin32) = (vec![0f32; n], vec![0f32; n]);
        let fill =
            |k: usize, c64: &mut [f64], s64: &mut [f64], c32: &mut [f32], s32: &mut [f32]| {
                let p = pos[k] as f64;
                for i in 0..half {
                    let (s, c) = (p * inv[i]).sin_cos();
                    let (s, c) = (s * att, c * att);
                    c64[i] = c;
                    s64[i] = s;
                    c32[i] = c as f32;
                    s32[i] = s as f32;
                }
            };
        if half > 0 && n > 0 {
            threads::install(|| {
                cos64
                    .par_chunks_mut(half)
                    .zip(sin64.par_chunks_mut(half))
                    .zip(cos32.par_chunks_mut(half).zip(sin32.par_chunks_mut(half)))
                    .enumerate()
                    .with_min_len(64)
                    .for_each(|(k, ((c64, s64), (c32, s32)))| fill(k, c64, s64, c32, s32));
            });
        }
        let t = Arc::new(RopeTables {
            batches,
            seq_len,
            half,
            cos64,
            sin64,
            cos32,
            sin32,
        });
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, t.clone()));
        Ok(t)
    }

    /// `(cos, sin)`, each `(T, rotary_dim/2)` (or `(B, T, rotary_dim/2)`) in f64, attention
    /// scaling applied.
    pub fn cos_sin(&self, positions: &Positions, seq_len: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        let t = self.tables(positions, seq_len)?;
        Ok((t.cos64.clone(), t.sin64.clone()))
    }

    /// Check `x`'s shape against the positions; returns the kernel geometry.
    pub fn geometry(&self, shape: &[usize], positions: &Positions) -> Result<RopeShape> {
        if shape.len() < 2 {
            bail_shape!("x must have shape (..., T, head_dim), got {shape:?}");
        }
        let d = shape[shape.len() - 1];
        if d != self.head_dim {
            bail_shape!(
                "x's last dimension is {d}, expected head_dim = {}",
                self.head_dim
            );
        }
        let t = shape[shape.len() - 2];
        let batches = match positions {
            Positions::Range { .. } => 1,
            Positions::Shared(p) => {
                if p.len() != t {
                    bail_shape!("positions have {} entries, x has T = {t}", p.len());
                }
                1
            }
            Positions::PerBatch { batches, positions } => {
                if shape.len() < 3 || shape[0] != *batches || positions.len() != batches * t {
                    bail_shape!(
                        "positions of shape ({batches}, {}) need x of shape ({batches}, ..., {t}, \
                         head_dim), got {shape:?}",
                        positions.len() / (*batches).max(1)
                    );
                }
                *batches
            }
        };
        Ok(RopeShape {
            head_dim: d,
            rotary_dim: self.rotary_dim,
            seq_len: t,
            batches,
            layout: self.config.layout,
        })
    }

    /// The fast CPU kernel on slices: `x` (C order, `shape`) rotated into `out`, or the
    /// transposed rotation (`transpose`, the backward).
    pub fn apply_into<T: RopeFloat>(
        &self,
        x: &[T],
        shape: &[usize],
        positions: &Positions,
        out: &mut [T],
        transpose: bool,
    ) -> Result<()> {
        let g = self.geometry(shape, positions)?;
        let n: usize = shape.iter().product();
        if x.len() != n || out.len() != n {
            bail_shape!(
                "x has {} elements and out {}, shape {shape:?} needs {n}",
                x.len(),
                out.len()
            );
        }
        if n == 0 {
            return Ok(());
        }
        let t = self.tables(positions, g.seq_len)?;
        let (cos, sin) = T::tables(&t);
        rope::check(n, n, &g, cos.len()).map_err(Error::invalid)?;
        rope::rope(x, out, &g, cos, sin, transpose);
        Ok(())
    }

    /// The fast forward on a tensor (CPU: the one-pass kernel as a candle `CustomOp1` with a
    /// backward, so gradients flow; other devices: [`Self::forward_portable`]).
    pub fn forward(&self, x: &Tensor, positions: &Positions) -> Result<Tensor> {
        self.run(x, positions, false)
    }

    /// The backward of [`Self::forward`]: the transposed rotation of `grad`.
    pub fn backward(&self, grad: &Tensor, positions: &Positions) -> Result<Tensor> {
        self.run(grad, positions, true)
    }

    fn run(&self, x: &Tensor, positions: &Positions, transpose: bool) -> Result<Tensor> {
        crate::dtype::check_float(x.dtype())?;
        let g = self.geometry(x.dims(), positions)?;
        if !x.device().is_cpu() {
            return self.portable(x, positions, transpose);
        }
        let tables = self.tables(positions, g.seq_len)?;
        let op = RopeOp {
            shape: g,
            tables,
            transpose,
        };
        Ok(x.contiguous()?.apply_op1(op)?)
    }

    /// The portable reference: candle `narrow` / `mul` / `cat` (any device, autograd through
    /// candle's own ops). Arithmetic in `x`'s dtype.
    pub fn forward_portable(&self, x: &Tensor, positions: &Positions) -> Result<Tensor> {
        crate::dtype::check_float(x.dtype())?;
        self.geometry(x.dims(), positions)?;
        self.portable(x, positions, false)
    }

    /// The portable transposed rotation.
    pub fn backward_portable(&self, grad: &Tensor, positions: &Positions) -> Result<Tensor> {
        crate::dtype::check_float(grad.dtype())?;
        self.geometry(grad.dims(), positions)?;
        self.portable(grad, positions, true)
    }

    /// cos/sin as tensors of `x`'s dtype and device, shaped to broadcast against
    /// `(..., T, rotary_dim/2)`: `(T, half)` or `(B, 1, .., 1, T, half)`.
    fn table_tensors(
        &self,
        dims: &[usize],
        positions: &Positions,
        dtype: DType,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let g = self.geometry(dims, positions)?;
        let t = self.tables(positions, g.seq_len)?;
        let mut shape = vec![t.batches];
        if t.batches > 1 || matches!(positions, Positions::PerBatch { .. }) {
            shape.extend(std::iter::repeat_n(1, dims.len() - 3));
        } else {
            shape.clear();
        }
        shape.extend([t.seq_len, t.half]);
        let mk = |v: &Vec<f64>| -> Result<Tensor> {
            Ok(Tensor::from_slice(v, shape.as_slice(), &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(device)?)
        };
        Ok((mk(&t.cos64)?, mk(&t.sin64)?))
    }

    fn portable(&self, x: &Tensor, positions: &Positions, transpose: bool) -> Result<Tensor> {
        let (cos, sin) = self.table_tensors(x.dims(), positions, x.dtype(), x.device())?;
        let sin = if transpose { sin.neg()? } else { sin };
        let (d, rot, half) = (self.head_dim, self.rotary_dim, self.rotary_dim / 2);
        let xr = x.narrow(D::Minus1, 0, rot)?;
        let rotated = match self.config.layout {
            RopeLayout::Half => {
                let x1 = xr.narrow(D::Minus1, 0, half)?;
                let x2 = xr.narrow(D::Minus1, half, half)?;
                let o1 = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
                let o2 = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
                Tensor::cat(&[&o1, &o2], D::Minus1)?
            }
            RopeLayout::Interleaved => {
                let mut pair_shape = x.dims()[..x.rank() - 1].to_vec();
                pair_shape.extend([half, 2]);
                let xp = xr.reshape(pair_shape)?;
                let a = xp.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?;
                let b = xp.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?;
                let o1 = (a.broadcast_mul(&cos)? - b.broadcast_mul(&sin)?)?;
                let o2 = (b.broadcast_mul(&cos)? + a.broadcast_mul(&sin)?)?;
                Tensor::stack(&[&o1, &o2], D::Minus1)?.flatten_from(D::Minus2)?
            }
        };
        if rot == d {
            return Ok(rotated);
        }
        let pass = x.narrow(D::Minus1, rot, d - rot)?;
        Ok(Tensor::cat(&[&rotated, &pass], D::Minus1)?)
    }

    /// candle-nn's fused `rope` / `rope_i` (4-D `x` `(B, H, T, head_dim)` only; no backward).
    /// The pass-through dims of partial rotary are concatenated back.
    pub fn forward_fused(&self, x: &Tensor, positions: &Positions) -> Result<Tensor> {
        crate::dtype::check_float(x.dtype())?;
        let g = self.geometry(x.dims(), positions)?;
        if x.rank() != 4 {
            bail_shape!(
                "the fused candle-nn rope needs x of shape (B, H, T, D), got {:?}",
                x.dims()
            );
        }
        let t = self.tables(positions, g.seq_len)?;
        let shape: Vec<usize> = if t.batches > 1 || matches!(positions, Positions::PerBatch { .. })
        {
            vec![t.batches, t.seq_len, t.half]
        } else {
            vec![t.seq_len, t.half]
        };
        let mk = |v: &Vec<f64>| -> Result<Tensor> {
            Ok(Tensor::from_slice(v, shape.as_slice(), &Device::Cpu)?
                .to_dtype(x.dtype())?
                .to_device(x.device())?)
        };
        let (cos, sin) = (mk(&t.cos64)?, mk(&t.sin64)?);
        let (d, rot) = (self.head_dim, self.rotary_dim);
        let xr = x.narrow(D::Minus1, 0, rot)?.contiguous()?;
        let rotated = match self.config.layout {
            RopeLayout::Half => candle_nn::rotary_emb::rope(&xr, &cos, &sin)?,
            RopeLayout::Interleaved => candle_nn::rotary_emb::rope_i(&xr, &cos, &sin)?,
        };
        if rot == d {
            return Ok(rotated);
        }
        let pass = x.narrow(D::Minus1, rot, d - rot)?;
        Ok(Tensor::cat(&[&rotated, &pass], D::Minus1)?)
    }
}

/// The fast kernel as a candle op: the tables ride along, `bwd` applies the transposed op.
#[derive(Clone)]
struct RopeOp {
    shape: RopeShape,
    tables: Arc<RopeTables>,
    transpose: bool,
}

impl RopeOp {
    fn run<T: RopeFloat>(&self, x: &[T]) -> Result<Vec<T>> {
        let mut out = crate::alloc::try_alloc_uninit::<T>(x.len())?;
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
