//! Integer ids of any width and signedness, validated once before any kernel runs.

use rayon::prelude::*;

use crate::{threads, Error, Result};

/// An integer type accepted as an id (int8..int64, uint8..uint64, as NumPy allows).
pub trait Id: Copy + Send + Sync + 'static {
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
    let first_bad = if ids.len() < 1 << 15 {
        ids.iter().position(bad)
    } else {
        threads::install(|| ids.par_iter().position_first(bad))
    };
    match first_bad {
        None => Ok(()),
        Some(p) => Err(Error::IndexOutOfRange {
            what,
            index: ids[p].wide(),
            container,
            size,
        }),
    }
}

/// Validate and widen to `i64` (what candle's portable path and `SparseGrad` use).
pub fn to_i64<I: Id>(
    ids: &[I],
    size: usize,
    what: &'static str,
    container: &'static str,
) -> Result<Vec<i64>> {
    validate(ids, size, what, container)?;
    Ok(ids.iter().map(|&i| i.wide() as i64).collect())
}
