//! Disjoint mutable access to rows of one buffer from many threads.

/// A raw view of a row-major `[rows, dim]` buffer that lets threads write *distinct* rows
/// concurrently. Callers guarantee distinctness (coalesced / unique row ids).
#[derive(Clone, Copy)]
pub struct RowsMut<T> {
    ptr: *mut T,
    rows: usize,
    dim: usize,
}

// SAFETY: access is by distinct rows only (the caller's contract on `row`).
unsafe impl<T: Send> Send for RowsMut<T> {}
unsafe impl<T: Send> Sync for RowsMut<T> {}

impl<T> RowsMut<T> {
    /// A view of `data` as rows of `dim` elements (exclusively borrowed for its lifetime).
    pub fn new(data: &mut [T], dim: usize) -> Self {
        let rows = data.len().checked_div(dim).unwrap_or(0);
        RowsMut {
            ptr: data.as_mut_ptr(),
            rows,
            dim,
        }
    }

    /// Start of row `r`, for prefetching (no reference is made, so no aliasing is possible).
    #[inline(always)]
    pub fn row_ptr(&self, r: usize) -> *const T {
        assert!(r < self.rows, "row {r} out of {}", self.rows);
        self.ptr.wrapping_add(r * self.dim)
    }

    /// Bytes in a row.
    #[inline(always)]
    pub fn row_bytes(&self) -> usize {
        self.dim * std::mem::size_of::<T>()
    }

    /// Row `r` as a mutable slice.
    ///
    /// # Safety
    /// No two live references may be to the same row, and the underlying buffer must outlive
    /// the returned slice.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn row(&self, r: usize) -> &mut [T] {
        assert!(r < self.rows, "row {r} out of {}", self.rows);
        std::slice::from_raw_parts_mut(self.ptr.add(r * self.dim), self.dim)
    }
}
