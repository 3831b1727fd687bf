//! Integer ids of any width and signedness, validated once before any kernel runs.

use candle_core::{Device, Tensor};

use crate::alloc::try_collect;
use crate::{Error, Result};

/// An integer type accepted as an id (int8..int64, uint8..uint64, as NumPy allows).
pub trait Id: Copy + Ord + Send + Sync + 'static {
    /// The value, exactly (u64 and i64 both fit in i128).
    fn wide(self) -> i128;
    /// The value as an index; only meaningful after validation.
    #[inline(always)]
    fn index(self) -> usize {
        self.wide() as usize
    }
}

macro_rules! impl_id {
    ($($t:ty),*) => {$(
        impl Id for $t {
            #[inline(always)]
            fn wide(self) -> i128 { self as i128 }
            #[inline(always)]
            fn index(self) -> usize { self as usize }
        }
    )*};
}
impl_id!(i8, i16, i32, i64, u8, u16, u32, u64, usize);

/// Check `0 <= id < size` for every id; the error names the first bad id (lowest position),
/// so the message is the same whatever the thread count.
///
/// The common case (all valid) is one vectorised min/max pass in the ids' own type (a
/// per-element parallel search was 30x slower); the first bad position is looked for only
/// when the range check fails.
pub fn validate<I: Id>(
    ids: &[I],
    size: usize,
    what: &'static str,
    container: &'static str,
) -> Result<()> {
    let size_w = size as i128;
    let bad = |i: &I| {
        let v = i.wide();
        v < 0 || v >= size_w
    };
    let Some(&first) = ids.first() else {
        return Ok(());
    };
    let (lo, hi) = min_max(ids, first);
    if !bad(&lo) && !bad(&hi) {
        return Ok(());
    }
    let p = ids
        .iter()
        .position(bad)
        .expect("min or max is out of range");
    Err(Error::IndexOutOfRange {
        what,
        index: ids[p].wide(),
        container,
        size,
    })
}

/// The smallest and largest of `first` and `ids`, in one pass compiled for the widest vector
/// unit the CPU has: the baseline (SSE2) has no 64-bit integer min/max, and on int64 ids the
/// pass was a tenth of a 131072-id bag's time (seventh session, `perf`).
fn min_max<I: Id>(ids: &[I], first: I) -> (I, I) {
    #[cfg(target_arch = "x86_64")]
    {
        #[cfg(candle_embed_avx512)]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked).
            return unsafe { min_max_avx512(ids, first) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked).
            return unsafe { min_max_avx2(ids, first) };
        }
    }
    min_max_portable(ids, first)
}

#[inline(always)]
fn min_max_portable<I: Id>(ids: &[I], first: I) -> (I, I) {
    ids.iter()
        .fold((first, first), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

#[cfg(all(target_arch = "x86_64", candle_embed_avx512))]
#[allow(clippy::incompatible_msrv)] // only built with Rust >= 1.89 (build.rs)
#[target_feature(enable = "avx512f")]
unsafe fn min_max_avx512<I: Id>(ids: &[I], first: I) -> (I, I) {
    min_max_portable(ids, first)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn min_max_avx2<I: Id>(ids: &[I], first: I) -> (I, I) {
    min_max_portable(ids, first)
}

/// Validate and widen to `i64` (what candle's portable path and `SparseGrad` use).
pub fn to_i64<I: Id>(
    ids: &[I],
    size: usize,
    what: &'static str,
    container: &'static str,
) -> Result<Vec<i64>> {
    validate(ids, size, what, container)?;
    try_collect(ids.iter().map(|&i| i.wide() as i64))
}

/// Validated `ids` of a table of `rows` rows as the 1-D index tensor of candle's index ops on
/// `device`: `u32` when every row fits, else `i64` (candle's `u32` ids reserve `u32::MAX` for
/// "skip", and a `u32` cast would wrap rows past 2^32).
pub fn index_tensor<I: Id>(ids: &[I], rows: usize, device: &Device) -> Result<Tensor> {
    let n = ids.len();
    Ok(if rows < u32::MAX as usize {
        Tensor::from_vec(
            try_collect(ids.iter().map(|i| i.index() as u32))?,
            n,
            device,
        )?
    } else {
        Tensor::from_vec(
            try_collect(ids.iter().map(|i| i.index() as i64))?,
            n,
            device,
        )?
    })
}
