//! Sinusoidal absolute positional encodings (Vaswani et al. §3.5).
//!
//! Math: with `h = d/2` frequencies `ω_i`, `0 ≤ i < h`,
//! - `layout = Interleaved`: `ω_i = base^(-2i/d)`, `PE[p, 2i] = sin(p·ω_i)`,
//!   `PE[p, 2i+1] = cos(p·ω_i)` (Vaswani et al., the PyTorch tutorial, burn);
//! - `layout = Concat`: the same `ω_i`, `PE[p, i] = sin(p·ω_i)`, `PE[p, h + i] = cos(p·ω_i)` (HF
//!   GPT-J's `create_sinusoidal_positions`);
//! - `layout = Tensor2Tensor`: `ω_i = exp(-i·ln(base)/max(h - 1, 1))` (`h = floor(d/2)`), sines
//!   then cosines as `Concat`, and for an odd `d` a last column of zeros: tensor2tensor's
//!   `get_timing_signal_1d`, fairseq's and transformers' M2M100 / Speech2Text
//!   `SinusoidalPositionalEmbedding.get_embedding` (`emb = log(10000)/(half_dim - 1)`;
//!   `max(·, 1)` is tensor2tensor's guard for `d < 4`). The only layout that takes an odd `d`.
//!
//! The table `(max_len, d)` is computed in f64 and cast once. `forward` adds rows
//! `offset..offset+T` to `x` of shape `(..., T, d)`.
//!
//! Fast path: rows in blocks of [`BLOCK`]; each block computes `sin/cos(p0·ω)` directly and
//! every other row by one exact-angle rotation, `sin((p0+k)ω) = sin(p0ω)cos(kω) + cos(p0ω)sin(kω)`,
//! with `sin/cos(kω)` also computed directly: two correctly computed factors per value, so the
//! f64 error stays at a few ulps (no accumulation), and only `1/BLOCK` of the values call `sin_cos`.
//! Portable path: candle ops in f64 (`sin`, `cos`, `cat`), any device.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::common::{add_table_rows, add_table_rows_portable, arange_f64, PAR_MIN};
use crate::alloc::{self, check_table_size, try_alloc_uninit, try_collect, try_filled};
use crate::dtype::{check_float, Float};
use crate::{threads, with_float, Error, Result};

/// Rows per rotation block of the fast table kernel.
pub const BLOCK: usize = 32;

/// Where the cosines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinusoidalLayout {
    /// `[sin ω0, cos ω0, sin ω1, cos ω1, …]` (Vaswani, PyTorch tutorial, burn).
    Interleaved,
    /// `[sin ω0, sin ω1, …, cos ω0, cos ω1, …]`.
    Concat,
    /// `Concat` with tensor2tensor's frequencies `exp(-i·ln(base)/(h-1))` (M2M100,
    /// Speech2Text, fairseq), a zero last column for an odd `d`.
    Tensor2Tensor,
}

impl SinusoidalLayout {
    /// `"interleaved"`, `"concat"` or `"tensor2tensor"`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "interleaved" => Ok(Self::Interleaved),
            "concat" => Ok(Self::Concat),
            "tensor2tensor" => Ok(Self::Tensor2Tensor),
            other => Err(Error::invalid(format!(
                "layout must be 'interleaved', 'concat' or 'tensor2tensor', got '{other}'"
            ))),
        }
    }
    /// The layout's name, as `parse` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Interleaved => "interleaved",
            Self::Concat => "concat",
            Self::Tensor2Tensor => "tensor2tensor",
        }
    }
}

/// Options of a [`SinusoidalPositionalEncoding`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinusoidalConfig {
    /// Rows of the table: positions `0..max_len`.
    pub max_len: usize,
    /// The frequency base (10000 in the paper).
    pub base: f64,
    /// Where the cosines go.
    pub layout: SinusoidalLayout,
}

impl Default for SinusoidalConfig {
    fn default() -> Self {
        SinusoidalConfig {
            max_len: 4096,
            base: 10000.0,
            layout: SinusoidalLayout::Interleaved,
        }
    }
}

fn check_args(dim: usize, base: f64, layout: SinusoidalLayout) -> Result<()> {
    if layout == SinusoidalLayout::Tensor2Tensor {
        if dim == 0 {
            return Err(Error::invalid("dim must be positive, got 0"));
        }
    } else if dim == 0 || dim % 2 != 0 {
        return Err(Error::invalid(format!(
            "dim must be a positive even number (sin/cos pairs), got {dim} (only layout \
             'tensor2tensor' takes an odd dim)"
        )));
    }
    if !(base.is_finite() && base > 0.0) {
        return Err(Error::invalid(format!(
            "base must be finite and > 0, got {base}"
        )));
    }
    Ok(())
}

/// The frequencies `ω_i`, `i < dim/2`, of `layout`, in f64: `base^(-2i/dim)`, or
/// tensor2tensor's `exp(-i·ln(base)/max(dim/2 - 1, 1))`.
pub fn frequencies(dim: usize, base: f64, layout: SinusoidalLayout) -> Result<Vec<f64>> {
    let half = dim / 2;
    match layout {
        SinusoidalLayout::Tensor2Tensor => {
            let step = base.ln() / half.saturating_sub(1).max(1) as f64;
            try_collect((0..half).map(|i| (-(i as f64) * step).exp()))
        }
        _ => try_collect((0..half).map(|i| base.powf(-((2 * i) as f64) / dim as f64))),
    }
}

/// The `(max_len, dim)` table, row-major, computed in f64 and cast to `T` (fast path).
#[allow(clippy::needless_range_loop)]
pub fn sinusoidal_table<T: Float>(
    max_len: usize,
    dim: usize,
    base: f64,
    layout: SinusoidalLayout,
) -> Result<Vec<T>> {
    check_args(dim, base, layout)?;
    check_table_size(max_len, dim, T::DT)?;
    let half = dim / 2;
    // The buffers first: a table that cannot exist fails at once, before any frequency work.
    let mut out = try_alloc_uninit::<T>(max_len * dim)?;
    let kb = BLOCK.min(max_len.max(1));
    let mut rot = try_filled(kb * half, (0.0f64, 0.0f64))?;
    let w = frequencies(dim, base, layout)?;
    // sin/cos(k·ω_i) for k < BLOCK.
    for k in 0..kb {
        for i in 0..half {
            rot[k * half + i] = (k as f64 * w[i]).sin_cos();
        }
    }
    let block = |(b, chunk): (usize, &mut [T])| {
        let p0 = (b * BLOCK) as f64;
        let anchor: Vec<(f64, f64)> = w.iter().map(|&wi| (p0 * wi).sin_cos()).collect();
        for (k, row) in chunk.chunks_mut(dim).enumerate() {
            let r = &rot[k * half..(k + 1) * half];
            let value = |i: usize| {
                let (s0, c0) = anchor[i];
                let (sk, ck) = r[i];
                (s0 * ck + c0 * sk, c0 * ck - s0 * sk)
            };
            match layout {
                SinusoidalLayout::Interleaved => {
                    for (i, pair) in row.chunks_exact_mut(2).enumerate() {
                        let (s, c) = value(i);
                        pair[0] = T::of_f64(s);
                        pair[1] = T::of_f64(c);
                    }
                }
                SinusoidalLayout::Concat | SinusoidalLayout::Tensor2Tensor => {
                    let (sins, coss) = row.split_at_mut(half);
                    for i in 0..half {
                        let (s, c) = value(i);
                        sins[i] = T::of_f64(s);
                        coss[i] = T::of_f64(c);
                    }
                    // An odd dim (tensor2tensor only): the zero-padded last column.
                    coss[half..].fill(T::of_f64(0.0));
                }
            }
        }
    };
    if out.len() < PAR_MIN {
        out.chunks_mut(BLOCK * dim).enumerate().for_each(block);
    } else {
        threads::install(|| out.par_chunks_mut(BLOCK * dim).enumerate().for_each(block));
    }
    Ok(out)
}

/// Portable path: the same table from candle ops (f64 `sin`/`cos` on `device`), cast to `dtype`.
pub fn sinusoidal_table_portable(
    max_len: usize,
    dim: usize,
    base: f64,
    layout: SinusoidalLayout,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    check_args(dim, base, layout)?;
    check_float(dtype)?;
    check_table_size(max_len, dim, DType::F64)?;
    let half = dim / 2;
    let pos = arange_f64(max_len, device)?.reshape((max_len, 1))?;
    let w = Tensor::from_vec(frequencies(dim, base, layout)?, (1, half), device)?;
    let ang = pos.broadcast_mul(&w)?;
    let (s, c) = (ang.sin()?, ang.cos()?);
    let t = match layout {
        SinusoidalLayout::Concat => Tensor::cat(&[&s, &c], 1)?,
        SinusoidalLayout::Tensor2Tensor if half == 0 => {
            alloc::zeros((max_len, dim), DType::F64, device)?
        }
        SinusoidalLayout::Tensor2Tensor if dim % 2 == 1 => {
            let pad = alloc::zeros((max_len, 1), DType::F64, device)?;
            Tensor::cat(&[&s, &c, &pad], 1)?
        }
        SinusoidalLayout::Tensor2Tensor => Tensor::cat(&[&s, &c], 1)?,
        SinusoidalLayout::Interleaved => Tensor::stack(&[&s, &c], 2)?.reshape((max_len, dim))?,
    };
    Ok(t.to_dtype(dtype)?)
}

/// A fixed sinusoidal table and the op that adds it to a sequence.
#[derive(Clone, Debug)]
pub struct SinusoidalPositionalEncoding {
    dim: usize,
    config: SinusoidalConfig,
    table: Tensor,
}

impl SinusoidalPositionalEncoding {
    /// Build the `(max_len, dim)` table of `dtype` on `device` (CPU: the fast kernel).
    pub fn new(
        dim: usize,
        config: SinusoidalConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        check_float(dtype)?;
        let SinusoidalConfig {
            max_len,
            base,
            layout,
        } = config;
        let table = with_float!(dtype, T => {
            let v = sinusoidal_table::<T>(max_len, dim, base, layout)?;
            Ok::<Tensor, Error>(Tensor::from_vec(v, (max_len, dim), &Device::Cpu)?)
        })?
        .to_device(device)?;
        Ok(SinusoidalPositionalEncoding { dim, config, table })
    }

    /// The `(max_len, dim)` table.
    pub fn table(&self) -> &Tensor {
        &self.table
    }
    /// The encoding size `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The options the table was built with.
    pub fn config(&self) -> &SinusoidalConfig {
        &self.config
    }

    /// CPU fast path: `out = x + table[offset..offset+T]` for `x` of `shape` `(..., T, dim)`;
    /// `T` must be the table's element type.
    pub fn add_into<T: Float>(
        &self,
        x: &[T],
        shape: &[usize],
        offset: i64,
        out: &mut [T],
    ) -> Result<()> {
        add_table_rows(&self.table, x, shape, offset, out, "a sinusoidal table")
    }

    /// `x + table[offset..offset+T]` for a tensor `x` of shape `(..., T, dim)` on the table's
    /// device (portable path: `narrow` + `broadcast_add`), result in `x`'s dtype.
    pub fn forward(&self, x: &Tensor, offset: i64) -> Result<Tensor> {
        add_table_rows_portable(&self.table, x, offset, "a sinusoidal table")
    }
}

impl candle_core::Module for SinusoidalPositionalEncoding {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        SinusoidalPositionalEncoding::forward(self, x, 0).map_err(candle_core::Error::wrap)
    }
}
