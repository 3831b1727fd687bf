//! Software prefetch of table rows. Random-row gathers from a table larger than the caches are
//! latency-bound; asking for the rows ~16 ids ahead roughly doubles the single-thread bandwidth
//! on this class of machine (see ../shared/reference/perf-baseline.md).

/// How many ids ahead of the current one the gather prefetches.
pub const DISTANCE: usize = 16;

/// Hint the CPU to fetch `bytes` starting at `ptr` into the caches. A no-op off x86-64.
#[inline(always)]
pub fn prefetch_row<T>(row: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(row);
        let base = row.as_ptr() as *const i8;
        let mut off = 0;
        while off < bytes {
            // SAFETY: prefetch never faults; the address is inside `row` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}
