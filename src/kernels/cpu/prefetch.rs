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

/// Hint the CPU to fetch the `bytes` bytes from `ptr` into the caches, one request per 64-byte
/// line. Never faults, whatever the address. A no-op off x86-64.
#[inline(always)]
pub fn prefetch_bytes<T>(ptr: *const T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = ptr as *const i8;
        let mut off = 0;
        while off < bytes {
            // SAFETY: prefetch is a hint: it never faults and never dereferences in Rust's sense.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (ptr, bytes);
}
