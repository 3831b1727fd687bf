//! Software prefetch of table rows. Random-row gathers from a table larger than the caches are
//! latency-bound; asking for the rows ~16 ids ahead roughly doubles the single-thread bandwidth
//! on this class of machine (see ../shared/reference/perf-baseline.md).
//!
//! Two levels. The gather, the read-modify-write loops (optimizers, techniques), the similarity
//! scan and the float bags ask for lines into L1 (`prefetcht0`). The quantized bags and lookups
//! ask for them into L2 only (`prefetcht1`): with one core's random-row requests in flight
//! capped by its L1 miss buffers (a steady ~9 GB/s, about 16 lines per ~110 ns, on this
//! machine), requests that stop at L2 let more rows be on their way at once. Measured
//! (sixth session, BENCHMARKS.md): the int8 bag 1.12-1.20x faster into L2 with the L3 flushed
//! before each block, and no slower on repeated ids. The f32 gather was 1.08-1.16x faster into L2
//! on rows coming from memory but 1.07-1.18x slower on rows the L3 still held (`compare_wheels`),
//! so it stays on L1; the optimizers' steps were unchanged; the float bags see [`RowsAhead`].

/// How many ids ahead of the current one the other row loops (optimizer updates, techniques)
/// prefetch; the gather and bag kernels size theirs per row ([`super::tuning`]).
pub const DISTANCE: usize = 16;

/// Hint the CPU to fetch `row` into the caches.
#[inline(always)]
pub fn prefetch_row<T>(row: &[T]) {
    prefetch_bytes(row.as_ptr(), std::mem::size_of_val(row));
}

/// Hint the CPU to fetch the `bytes` bytes from `ptr` into L1, one request per 64 bytes from
/// `ptr`. For a row that does not start on a line boundary the last line it touches is left to
/// the hardware's adjacent-line prefetcher: on the f32 gather and the optimizers' rows (hundreds
/// of bytes) that measured 4-6 % faster than asking for it too (fifth session,
/// `compare_wheels.py`). Never faults, whatever the address. A no-op off x86-64.
#[inline(always)]
pub fn prefetch_bytes<T>(ptr: *const T, bytes: usize) {
    prefetch_from::<L1>(ptr.cast(), bytes);
}

/// Hint the CPU to fetch every 64-byte line the `bytes` bytes from `ptr` touch, into L1 or (with
/// `TO_L2`) into L2 only: from the line holding the first byte (a 40-byte packed row often spans
/// two lines, a 256-byte row at a 16-byte offset five). For the bag kernels' short rows
/// (quantized rows of tens of bytes) the line the plain count misses is a whole miss. Never
/// faults. A no-op off x86-64.
#[inline(always)]
pub fn prefetch_lines_touched<T, const TO_L2: bool>(ptr: *const T, bytes: usize) {
    if bytes == 0 {
        return;
    }
    let lead = ptr as usize % 64;
    let base = (ptr as *const u8).wrapping_sub(lead);
    match TO_L2 {
        true => prefetch_from::<L2>(base, lead + bytes),
        false => prefetch_from::<L1>(base, lead + bytes),
    }
}

/// `prefetcht0`: into every cache level.
#[cfg(target_arch = "x86_64")]
const L1: i32 = std::arch::x86_64::_MM_HINT_T0;
/// `prefetcht1`: into L2 (and L3), not L1.
#[cfg(target_arch = "x86_64")]
const L2: i32 = std::arch::x86_64::_MM_HINT_T1;
#[cfg(not(target_arch = "x86_64"))]
const L1: i32 = 0;
#[cfg(not(target_arch = "x86_64"))]
const L2: i32 = 0;

/// One prefetch request with hint `HINT` ([`L1`] or [`L2`]) every 64 bytes of `bytes` from
/// `base`.
#[inline(always)]
fn prefetch_from<const HINT: i32>(base: *const u8, bytes: usize) {
    let mut off = 0;
    while off < bytes {
        prefetch_line::<HINT>(base.wrapping_add(off));
        off += 64;
    }
}

/// One prefetch request with hint `HINT` for the line holding `at`. A no-op off x86-64.
#[inline(always)]
fn prefetch_line<const HINT: i32>(at: *const u8) {
    // SAFETY: prefetch is a hint: it never faults and never dereferences in Rust's sense.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<HINT>(at as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// The look-ahead of a loop over the positions `start..end` of `ids` that reads table row
/// `ids[pos]` (`row_bytes` bytes at `base + ids[pos] * row_bytes`) at each one: the rows a
/// row-size-dependent distance ahead are requested, the first `distance` at construction (the
/// thread that ran the previous chunk requested nothing for this one). Ids must be validated by
/// the caller.
///
/// Two policies, each where it measured best (sixth session, BENCHMARKS.md):
/// - `TO_L2 = false` (the float bags): into L1, `prefetch_bytes` ahead (16 rows of 512 bytes).
///   Into L2 and 64 rows ahead the f32 bag is 1.2x faster on ids spread over a table larger
///   than the caches but 1.07-1.35x slower when the ids repeat (Zipf, or a small set of rows),
///   where the rows already sit in L2 and the far requests only cost.
/// - `TO_L2 = true` (the quantized bags and lookups): into L2, `lookahead_bytes` ahead: the
///   int8 bag 1.12-1.20x faster on spread ids, and no slower on repeated ones.
pub struct RowsAhead<'a, I, const TO_L2: bool> {
    base: *const u8,
    row_bytes: usize,
    ids: &'a [I],
    end: usize,
    /// 0: prefetching is off.
    distance: usize,
    /// Positions below this have a row `distance` ahead inside the chunk (0 when off).
    until: usize,
    /// Lines a row can touch (one more than its size in lines where rows are not line-aligned).
    lines: usize,
}

// Not derived: the derive would ask `I: Copy`; the fields are a pointer, a borrow and numbers.
impl<I, const TO_L2: bool> Clone for RowsAhead<'_, I, TO_L2> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<I, const TO_L2: bool> Copy for RowsAhead<'_, I, TO_L2> {}

impl<'a, I: crate::ids::Id, const TO_L2: bool> RowsAhead<'a, I, TO_L2> {
    /// Start the pipeline for positions `start..end` over the table at `base`.
    #[inline(always)]
    pub fn new<T>(
        base: *const T,
        row_bytes: usize,
        ids: &'a [I],
        start: usize,
        end: usize,
    ) -> Self {
        let tuning = super::tuning::get();
        let distance = match TO_L2 {
            true => tuning.lookahead_rows(row_bytes),
            false => tuning.prefetch_rows(row_bytes),
        };
        // Past the ids nothing can be requested (and `line_start` relies on it unchecked).
        let end = end.min(ids.len());
        let lead = match row_bytes % 64 {
            0 => base as usize % 64,
            _ => 63,
        };
        let ahead = RowsAhead {
            base: base.cast(),
            row_bytes,
            ids,
            end,
            distance,
            until: if distance == 0 {
                0
            } else {
                end.saturating_sub(distance)
            },
            lines: (lead + row_bytes).div_ceil(64),
        };
        (start..(start + distance).min(end)).for_each(|pos| ahead.row(pos));
        ahead
    }

    /// Request the row of position `pos` (nothing past the end).
    #[inline(always)]
    fn row(&self, pos: usize) {
        if pos < self.end {
            let offset = self.ids[pos].index() * self.row_bytes;
            prefetch_lines_touched::<_, TO_L2>(self.base.wrapping_add(offset), self.row_bytes);
        }
    }

    /// Lines a row can touch.
    #[inline(always)]
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// The start of the first line of the row `distance` positions after `pos` (None past the
    /// chunk's end, or when prefetching is off), for [`RowsAhead::request_line`]. Kernels spread
    /// a row's requests over their loads this way, as FBGEMM's generated code does.
    #[inline(always)]
    pub fn line_start(&self, pos: usize) -> Option<*const u8> {
        if pos >= self.until {
            return None;
        }
        let ahead = pos + self.distance;
        debug_assert!(ahead < self.end && self.end <= self.ids.len());
        // SAFETY: `ahead < end` (`pos < until`), and `end <= ids.len()` (clamped in `new`).
        let id = unsafe { self.ids.get_unchecked(ahead) }.index();
        let start = self.base.wrapping_add(id * self.row_bytes);
        Some(start.wrapping_sub(start as usize % 64))
    }

    /// Request line `l` of the row whose first line starts at `line` (from
    /// [`RowsAhead::line_start`]; the caller has checked `l < lines()`).
    #[inline(always)]
    pub fn request_line(&self, line: *const u8, l: usize) {
        debug_assert!(l < self.lines);
        match TO_L2 {
            true => prefetch_line::<L2>(line.wrapping_add(l * 64)),
            false => prefetch_line::<L1>(line.wrapping_add(l * 64)),
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
