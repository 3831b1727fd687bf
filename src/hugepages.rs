//! Transparent huge pages for large tables and optimizer state.
//!
//! A random-row gather from a table far larger than the TLB's reach (a few thousand 4 KiB
//! pages, i.e. ~10 MiB) pays a page-table walk for nearly every row; with 2 MiB pages the walks
//! mostly disappear. Linux in THP `madvise` mode (the default of most distributions, and of the
//! benchmark machine) backs memory with huge pages only where the program asked with
//! `madvise(MADV_HUGEPAGE)` before the first touch. NumPy asks for its large arrays, so a peer
//! that gathers from a NumPy-owned table gets huge pages; a plain `Vec` does not.
//!
//! Everything here is a hint: where it is unsupported (not Linux, THP disabled) nothing changes.

use candle_core::{Device, Tensor};

use crate::alloc::try_alloc_uninit;
use crate::dtype::Float;
use crate::{storage, with_float, Result};

/// Buffers below this size keep their pages: they fit the TLB's reach anyway, and the copy
/// that moving them would take is not worth it.
pub const MIN_BYTES: usize = 32 << 20;

/// The huge-page size the hint aligns to.
const HUGE_PAGE: usize = 2 << 20;

/// Ask for huge pages on the 2 MiB-aligned interior of `[ptr, ptr + bytes)`. Takes effect for
/// pages not yet touched, so call it right after allocating (an untouched `calloc` or
/// uninitialised buffer) and before writing. Best effort: an error only means 4 KiB pages.
pub fn advise<T>(ptr: *const T, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
        let end = (ptr as usize).saturating_add(bytes) / HUGE_PAGE * HUGE_PAGE;
        if bytes >= MIN_BYTES && end > start {
            // SAFETY: madvise only changes how the kernel backs pages of our own allocation
            // (the range lies inside it); it never invalidates their contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, bytes);
}

/// A fresh, contiguous copy of `t` for use as a table: on the CPU, large copies land in memory
/// advised for huge pages (see the module docs); otherwise a plain `copy`.
pub fn table_copy(t: &Tensor) -> Result<Tensor> {
    let bytes = t.elem_count() * t.dtype().size_in_bytes();
    if !t.device().is_cpu() || bytes < MIN_BYTES || !cfg!(target_os = "linux") {
        // `copy` keeps the layout; a table must be contiguous.
        return Ok(t.contiguous()?.copy()?);
    }
    let t = t.contiguous()?;
    with_float!(t.dtype(), T => copy_advised::<T>(&t))
}

/// `t` as a table: a large CPU tensor is moved into memory advised for huge pages (one copy);
/// anything else is returned as it is (made contiguous if needed). For fresh tensors nobody
/// else holds; use [`table_copy`] when the table must not share the caller's storage.
pub fn into_table(t: Tensor) -> Result<Tensor> {
    let bytes = t.elem_count() * t.dtype().size_in_bytes();
    if !t.device().is_cpu() || bytes < MIN_BYTES || !cfg!(target_os = "linux") {
        return Ok(t.contiguous()?);
    }
    table_copy(&t)
}

fn copy_advised<T: Float>(t: &Tensor) -> Result<Tensor> {
    let mut v = try_alloc_uninit::<T>(t.elem_count())?;
    advise(v.as_ptr(), v.len() * std::mem::size_of::<T>());
    storage::read::<T, ()>(t, |src| v.copy_from_slice(src))?;
    Ok(Tensor::from_vec(v, t.shape(), &Device::Cpu)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_copy_is_an_exact_independent_copy_above_and_below_the_threshold() {
        for rows in [3usize, MIN_BYTES / (4 * 64) + 5] {
            let v: Vec<f32> = (0..rows * 64).map(|i| i as f32 * 0.5 - 7.0).collect();
            let t = Tensor::from_vec(v.clone(), (rows, 64), &Device::Cpu).unwrap();
            let c = table_copy(&t).unwrap();
            assert_eq!(c.dims(), t.dims());
            assert_eq!(c.flatten_all().unwrap().to_vec1::<f32>().unwrap(), v);
            // A copy, not a view: writing the copy leaves the original alone.
            storage::write::<f32, ()>(&c, |s| {
                s[0] = 99.0;
                Ok(())
            })
            .unwrap();
            assert_eq!(t.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0], -7.0);
        }
    }

    #[test]
    fn into_table_keeps_a_small_tensor_and_moves_a_large_one() {
        for (rows, shared) in [(3usize, true), (MIN_BYTES / (4 * 64) + 5, false)] {
            let v: Vec<f32> = (0..rows * 64).map(|i| i as f32).collect();
            let t = Tensor::from_vec(v.clone(), (rows, 64), &Device::Cpu).unwrap();
            let table = into_table(t.clone()).unwrap();
            assert_eq!(table.flatten_all().unwrap().to_vec1::<f32>().unwrap(), v);
            storage::write::<f32, ()>(&t, |s| {
                s[0] = 99.0;
                Ok(())
            })
            .unwrap();
            let first = table.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
            assert_eq!(first == 99.0, shared, "rows {rows}");
        }
    }

    #[test]
    fn table_copy_of_a_strided_tensor_is_contiguous() {
        let t = Tensor::arange(0f64, 12.0, &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap()
            .t()
            .unwrap();
        let c = table_copy(&t).unwrap();
        assert!(c.is_contiguous());
        assert_eq!(c.to_vec2::<f64>().unwrap(), t.to_vec2::<f64>().unwrap());
    }
}
