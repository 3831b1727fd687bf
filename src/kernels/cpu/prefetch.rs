//! Software prefetch of table rows. Random-row gathers from a table larger than the caches are
//! latency-bound; asking for the rows ~16 ids ahead roughly doubles the single-thread bandwidth
//! on this class of machine (see ../shared/reference/perf-baseline.md).

/// How many ids ahead of the current one the other row loops (optimizer updates, techniques)
/// prefetch; the gather and bag kernels size theirs per row ([`super::tuning`]).
pub const DISTANCE: usize = 16;

/// Hint the CPU to fetch `row` into the caches.
#[inline(always)]
pub fn prefetch_row<T>(row: &[T]) {
    prefetch_bytes(row.as_ptr(), std::mem::size_of_val(row));
}

/// Hint the CPU to fetch the `bytes` bytes from `ptr` into the caches, one request per 64 bytes
/// from `ptr`. For a row that does not start on a line boundary the last line it touches is
/// left to the hardware's adjacent-line prefetcher: on the f32 gather and the optimizers' rows
/// (hundreds of bytes) that measured 4-6 % faster than asking for it too (fifth session,
/// `compare_wheels.py`). Never faults, whatever the address. A no-op off x86-64.
#[inline(always)]
pub fn prefetch_bytes<T>(ptr: *const T, bytes: usize) {
    prefetch_from(ptr.cast(), bytes);
}

/// Hint the CPU to fetch every 64-byte line the `bytes` bytes from `ptr` touch (from the line
/// holding the first byte: a 40-byte packed row often spans two lines, a 256-byte row at a
/// 16-byte offset five). For the bag kernels' short rows (quantized rows of tens of bytes) the
/// line the plain count misses is a whole miss. Never faults. A no-op off x86-64.
#[inline(always)]
pub fn prefetch_lines_touched<T>(ptr: *const T, bytes: usize) {
    if bytes == 0 {
        return;
    }
    let lead = ptr as usize % 64;
    prefetch_from((ptr as *const u8).wrapping_sub(lead), lead + bytes);
}

/// One prefetch request every 64 bytes of `bytes` from `base`.
#[inline(always)]
fn prefetch_from(base: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = base as *const i8;
        let mut off = 0;
        while off < bytes {
            // SAFETY: prefetch is a hint: it never faults and never dereferences in Rust's sense.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (base, bytes);
}

/// The look-ahead of a loop over the positions `start..end` of `ids` that reads table row
/// `ids[pos]` (`row_bytes` bytes at `base + ids[pos] * row_bytes`) at each one: the rows a
/// row-size-dependent distance ahead are requested ([`super::tuning`]), the first `distance`
/// at construction (the thread that ran the previous chunk requested nothing for this one).
/// Ids must be validated by the caller.
pub struct RowsAhead<'a, I> {
    base: *const u8,
    row_bytes: usize,
    ids: &'a [I],
    end: usize,
    /// 0: prefetching is off.
    distance: usize,
}

impl<'a, I: crate::ids::Id> RowsAhead<'a, I> {
    /// Start the pipeline for positions `start..end` over the table at `base`.
    #[inline(always)]
    pub fn new<T>(
        base: *const T,
        row_bytes: usize,
        ids: &'a [I],
        start: usize,
        end: usize,
    ) -> Self {
        let distance = super::tuning::get().prefetch_rows(row_bytes);
        let ahead = RowsAhead {
            base: base.cast(),
            row_bytes,
            ids,
            end,
            distance,
        };
        (start..(start + distance).min(end)).for_each(|pos| ahead.row(pos));
        ahead
    }

    /// Request the row of position `pos` (nothing past the end).
    #[inline(always)]
    fn row(&self, pos: usize) {
        if pos < self.end {
            let offset = self.ids[pos].index() * self.row_bytes;
            prefetch_lines_touched(self.base.wrapping_add(offset), self.row_bytes);
        }
    }

    /// Called when position `pos` is about to be read: request the row `distance` ahead.
    #[inline(always)]
    pub fn before(&self, pos: usize) {
        if self.distance > 0 {
            self.row(pos + self.distance);
        }
    }
}
