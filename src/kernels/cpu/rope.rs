//! Rotary position embedding kernel: one pass over `x`, one write of the output, no temporaries.
//!
//! `x` and `out` hold `rows` rows of `head_dim` elements, rows ordered `(group, t)` with `t`
//! fastest (a C-order `(..., T, head_dim)` array). Row `r` has time step `t = r % seq_len` and
//! uses row `b * seq_len + t` of the cos/sin tables (`half = rotary_dim / 2` entries each), where
//! `b = (r / seq_len) / (groups / batches)`: one table for every group (`batches == 1`) or one per
//! leading batch index (per-batch positions). The first `rotary_dim` elements are rotated in
//! pairs, the rest copied:
//!
//! - half layout (GPT-NeoX / Llama, `rotate_half`): pairs `(x_i, x_{i+half})`;
//! - interleaved layout (GPT-J / RoFormer, `rotate_every_two`): pairs `(x_{2i}, x_{2i+1})`;
//!
//! `(a, b) -> (a·cos − b·sin, b·cos + a·sin)`, or its transpose (`sin -> −sin`) for the backward.
//! Arithmetic runs in `T::Acc` (f32 for f16/bf16/f32, f64 for f64); results do not depend on the
//! thread count (no reductions).

use crate::dtype::Float;
use crate::threads;

/// How the rotated dimensions pair up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RopeLayout {
    /// `rotate_half`: pairs `(x_i, x_{i + d/2})` (GPT-NeoX, Llama; candle's `rope`).
    #[default]
    Half,
    /// `rotate_every_two`: pairs `(x_{2i}, x_{2i+1})` (GPT-J, RoFormer; candle's `rope_i`).
    Interleaved,
}

/// Below this many elements the pool's dispatch costs more than it saves.
const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// The geometry of one rotary call.
#[derive(Debug, Clone, Copy)]
pub struct RopeShape {
    /// The last dimension of `x`.
    pub head_dim: usize,
    /// The leading dims that are rotated (the rest pass through).
    pub rotary_dim: usize,
    /// Time steps `T` (the second-to-last dimension of `x`).
    pub seq_len: usize,
    /// Number of table batches (1, or the leading dimension of `x` for per-batch positions).
    pub batches: usize,
    /// How the rotated pairs are laid out.
    pub layout: RopeLayout,
}

#[inline(always)]
fn row_half<T: Float, const BACK: bool>(x: &[T], o: &mut [T], cos: &[T::Acc], sin: &[T::Acc]) {
    let half = cos.len();
    let (x1, rest) = x.split_at(half);
    let (x2, xp) = rest.split_at(half);
    let (o1, rest) = o.split_at_mut(half);
    let (o2, op) = rest.split_at_mut(half);
    let sin = &sin[..half];
    for i in 0..half {
        let (a, b) = (x1[i].to_acc(), x2[i].to_acc());
        let (c, s) = (cos[i], if BACK { -sin[i] } else { sin[i] });
        o1[i] = T::from_acc(a * c - b * s);
        o2[i] = T::from_acc(b * c + a * s);
    }
    op.copy_from_slice(xp);
}

#[inline(always)]
fn row_interleaved<T: Float, const BACK: bool>(
    x: &[T],
    o: &mut [T],
    cos: &[T::Acc],
    sin: &[T::Acc],
) {
    let half = cos.len();
    let (xr, xp) = x.split_at(2 * half);
    let (or, op) = o.split_at_mut(2 * half);
    let sin = &sin[..half];
    for (i, (xx, oo)) in xr.chunks_exact(2).zip(or.chunks_exact_mut(2)).enumerate() {
        let (a, b) = (xx[0].to_acc(), xx[1].to_acc());
        let (c, s) = (cos[i], if BACK { -sin[i] } else { sin[i] });
        oo[0] = T::from_acc(a * c - b * s);
        oo[1] = T::from_acc(b * c + a * s);
    }
    op.copy_from_slice(xp);
}

fn rows_serial<T: Float, const BACK: bool>(
    x: &[T],
    out: &mut [T],
    first_row: usize,
    shape: &RopeShape,
    groups_per_batch: usize,
    cos: &[T::Acc],
    sin: &[T::Acc],
) {
    let (d, half, t_len) = (shape.head_dim, shape.rotary_dim / 2, shape.seq_len);
    for (k, (xr, or)) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)).enumerate() {
        let r = first_row + k;
        let t = r % t_len;
        let b = (r / t_len) / groups_per_batch;
        let at = (b * t_len + t) * half;
        let (c, s) = (&cos[at..at + half], &sin[at..at + half]);
        match shape.layout {
            RopeLayout::Half => row_half::<T, BACK>(xr, or, c, s),
            RopeLayout::Interleaved => row_interleaved::<T, BACK>(xr, or, c, s),
        }
    }
}

/// Rotate every row of `x` into `out` (same length, a multiple of `head_dim * seq_len`).
/// `cos`/`sin` hold `batches * seq_len * rotary_dim / 2` entries. `transpose` applies the
/// transposed rotation (`sin -> -sin`), the backward of the forward.
/// The caller checks the geometry (see [`check`]).
pub fn rope<T: Float>(
    x: &[T],
    out: &mut [T],
    shape: &RopeShape,
    cos: &[T::Acc],
    sin: &[T::Acc],
    transpose: bool,
) {
    let d = shape.head_dim;
    if x.is_empty() || d == 0 {
        return;
    }
    let rows = x.len() / d;
    let groups = rows / shape.seq_len;
    let gpb = (groups / shape.batches).max(1);
    let run = |x: &[T], out: &mut [T], first: usize| {
        if transpose {
            rows_serial::<T, true>(x, out, first, shape, gpb, cos, sin)
        } else {
            rows_serial::<T, false>(x, out, first, shape, gpb, cos, sin)
        }
    };
    if x.len() < PARALLEL_MIN_ELEMS {
        return run(x, out, 0);
    }
    let chunk = threads::chunk_for(rows, (4096 / d).max(1));
    threads::for_each_chunk_mut(out, chunk * d, |i, out| {
        let a = i * chunk * d;
        run(&x[a..a + out.len()], out, i * chunk)
    });
}

/// Check the geometry the kernel relies on; `Err` carries the message.
pub fn check(
    len: usize,
    out_len: usize,
    shape: &RopeShape,
    table_len: usize,
) -> Result<(), String> {
    let RopeShape {
        head_dim,
        rotary_dim,
        seq_len,
        batches,
        ..
    } = *shape;
    if rotary_dim % 2 != 0 || rotary_dim > head_dim || head_dim == 0 {
        return Err(format!(
            "rotary_dim {rotary_dim} must be even and at most head_dim {head_dim}"
        ));
    }
    if out_len != len {
        return Err(format!("output has {out_len} elements, input {len}"));
    }
    if seq_len == 0 || batches == 0 {
        return if len == 0 {
            Ok(())
        } else {
            Err("empty position table for a non-empty input".into())
        };
    }
    if len % (head_dim * seq_len) != 0 {
        return Err(format!(
            "input of {len} elements is not a whole number of ({seq_len}, {head_dim}) blocks"
        ));
    }
    let groups = len / (head_dim * seq_len);
    if groups % batches != 0 {
        return Err(format!(
            "{groups} (.., T) groups do not split into {batches} position batches"
        ));
    }
    if table_len != batches * seq_len * (rotary_dim / 2) {
        return Err(format!(
            "cos/sin tables have {table_len} entries, expected {}",
            batches * seq_len * (rotary_dim / 2)
        ));
    }
    Ok(())
}
