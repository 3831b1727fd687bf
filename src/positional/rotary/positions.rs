//! The positions of one rotary call: a range from an offset, one list shared by every row, or
//! one list per batch row; each checked against [`MAX_POSITION`].

use crate::alloc::try_collect;
use crate::ids::Id;
use crate::{Error, Result};

/// Largest position accepted (exact in f64).
pub const MAX_POSITION: usize = 1 << 53;

/// The positions of one call: `offset..offset + T`, one `(T,)` list for every row, or one list
/// per leading batch index (`(B, T)`, row-major).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Positions {
    /// `offset..offset + T` for every row.
    Range {
        /// The first position.
        offset: usize,
    },
    /// One `(T,)` list for every row.
    Shared(Vec<usize>),
    /// One `(T,)` list per leading batch index.
    PerBatch {
        /// The leading dimension `B` of `x`.
        batches: usize,
        /// `(B, T)` positions, row-major.
        positions: Vec<usize>,
    },
}

impl Positions {
    /// Validate integer positions of shape `(T,)` or `(B, T)`: each in `0..MAX_POSITION`
    /// (`IndexOutOfRange` otherwise).
    pub fn from_ids<I: Id>(ids: &[I], shape: &[usize]) -> Result<Self> {
        crate::ids::validate(ids, MAX_POSITION, "position", "rotary positions")?;
        let v = try_collect(ids.iter().map(|i| i.index()))?;
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
