//! Fallible allocation: the one mechanism for every buffer whose size comes from user input.
//!
//! Rust's `vec![x; n]`, `Vec::with_capacity(n)`, `collect()` and candle's `Tensor::zeros` abort
//! the process when the allocator refuses (and panic with "capacity overflow" when `n` times the
//! element size passes `isize::MAX`). Here every such size is checked and reserved with
//! `try_reserve_exact`, so an impossible size is an error the caller can report:
//!
//! - [`Error::Memory`] (Python `MemoryError`): a buffer too large to allocate, whether its byte
//!   size overflows (`rows * dim * size_of` past `isize::MAX`) or the allocator refuses it;
//! - [`Error::InvalidArgument`] (Python `ValueError`): a count that overflows but is no buffer
//!   size (jobs times epochs, a position offset plus a length), via [`checked_count`].
//!
//! The checks happen before anything is allocated or written, so a refused call has no effect.

use candle_core::{DType, Device, Shape, Tensor};

use crate::dtype::Float;
use crate::{Error, Result};

fn refused<T>(n: usize) -> Error {
    Error::Memory(format!(
        "cannot allocate {n} elements of {} bytes",
        std::mem::size_of::<T>()
    ))
}

/// An empty vector with room for exactly `n` elements (reserved fallibly); the caller pushes
/// or extends at most `n` elements, so nothing reallocates afterwards.
pub fn try_with_capacity<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| refused::<T>(n))?;
    Ok(v)
}

/// `n` copies of `value`: a fallible `vec![value; n]`.
pub fn try_filled<T: Clone>(n: usize, value: T) -> Result<Vec<T>> {
    let mut v = try_with_capacity(n)?;
    v.resize(n, value);
    Ok(v)
}

/// Plain numbers whose all-zero bytes are the value zero, so a zeroed buffer of them can come
/// straight from the allocator (`calloc`: fresh pages are zero already, no write pass).
///
/// # Safety
/// Implement only for types for which every all-zero bit pattern is a valid value.
pub unsafe trait Zeroed: Copy {}

macro_rules! zeroed {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive number: all-zero bytes are its zero.
        unsafe impl Zeroed for $t {}
    )*};
}
zeroed!(
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    isize,
    f32,
    f64,
    half::f16,
    half::bf16
);

/// A vector of `n` zeros, reporting failure instead of aborting: a fallible `vec![0; n]`,
/// allocated zeroed as `vec!` does (no separate zero-fill pass).
pub fn try_alloc<T: Zeroed>(n: usize) -> Result<Vec<T>> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return try_filled(n, zero::<T>());
    }
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| refused::<T>(n))?;
    // SAFETY: the layout has a non-zero size (n > 0, T is not zero-sized).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(refused::<T>(n));
    }
    // SAFETY: `ptr` comes from the global allocator with the layout of a `Vec<T>` of capacity
    // `n` (`Layout::array`), and its `n` elements are all-zero bytes, valid `T`s (`Zeroed`).
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// The zero of a [`Zeroed`] type.
fn zero<T: Zeroed>() -> T {
    // SAFETY: all-zero bytes are a valid `T` (the `Zeroed` contract).
    unsafe { std::mem::zeroed() }
}

/// A vector of `n` floats whose contents the caller overwrites completely, without a zero-fill
/// (a lookup must cost one read and one write of the rows, nothing more).
pub fn try_alloc_uninit<T: Float>(n: usize) -> Result<Vec<T>> {
    let mut v: Vec<T> = try_with_capacity(n)?;
    // SAFETY: T is a plain float type (no drop, every bit pattern valid); the caller overwrites
    // all `n` elements before reading any.
    unsafe { v.set_len(n) };
    Ok(v)
}

/// Collect an iterator into a vector reserved fallibly for the iterator's reported length (its
/// `size_hint` lower bound): a fallible `collect::<Vec<_>>()` for iterators of known length.
pub fn try_collect<T>(items: impl IntoIterator<Item = T>) -> Result<Vec<T>> {
    let items = items.into_iter();
    let mut v = try_with_capacity(items.size_hint().0)?;
    v.extend(items);
    Ok(v)
}

/// The number of elements of a buffer of shape `dims` (their product), or [`Error::Memory`] when
/// the product, or its size in bytes for elements of `elem_bytes`, overflows `isize`.
pub fn checked_elems(dims: &[usize], elem_bytes: usize) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|n| {
            n.checked_mul(elem_bytes.max(1))
                .is_some_and(|b| b <= isize::MAX as usize)
        })
        .ok_or_else(|| {
            Error::Memory(format!(
                "a buffer of shape {dims:?} ({elem_bytes}-byte elements) does not fit in memory"
            ))
        })
}

/// Check that a `rows x dim` table of `dtype` can exist: `rows * dim * size` fits in `isize`.
/// Returns the number of elements.
pub fn check_table_size(rows: usize, dim: usize, dtype: DType) -> Result<usize> {
    checked_elems(&[rows, dim], dtype.size_in_bytes()).map_err(|_| {
        Error::Memory(format!(
            "a {rows} x {dim} {dtype:?} table does not fit in memory"
        ))
    })
}

/// `a * b` for counts that are no buffer size (iterations, positions): an overflow is the
/// caller's argument being out of range, [`Error::InvalidArgument`] naming `what`.
pub fn checked_count(a: u64, b: u64, what: &str) -> Result<u64> {
    a.checked_mul(b)
        .ok_or_else(|| Error::invalid(format!("{what} = {a} x {b} overflows 64 bits")))
}

/// A tensor of zeros of `shape`, `dtype` on `device`. On the CPU the buffer is allocated
/// fallibly (candle's `Tensor::zeros` aborts when the allocation fails); other devices report
/// their allocation failures themselves.
pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
    let shape: Shape = shape.into();
    checked_elems(shape.dims(), dtype.size_in_bytes())?;
    if !device.is_cpu() {
        return Ok(Tensor::zeros(shape, dtype, device)?);
    }
    crate::with_float!(dtype, T => {
        let v = try_filled(shape.elem_count(), T::of_f64(0.0))?;
        Ok(Tensor::from_vec(v, shape, device)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_sizes_are_errors_not_aborts() {
        // Byte sizes past isize::MAX fail before the allocator is asked.
        assert!(matches!(
            try_alloc::<f64>(usize::MAX / 4),
            Err(Error::Memory(_))
        ));
        assert!(matches!(
            try_alloc_uninit::<f32>(usize::MAX / 2),
            Err(Error::Memory(_))
        ));
        assert!(matches!(
            try_with_capacity::<u64>(1 << 62),
            Err(Error::Memory(_))
        ));
        assert!(matches!(
            try_filled(1usize << 62, 0u32),
            Err(Error::Memory(_))
        ));
        assert!(matches!(
            try_collect(0..(1usize << 62)),
            Err(Error::Memory(_))
        ));
        assert!(matches!(
            check_table_size(1 << 62, 1 << 10, DType::F32),
            Err(Error::Memory(_))
        ));
        assert!(matches!(
            checked_elems(&[1 << 40, 1 << 30], 1),
            Err(Error::Memory(_))
        ));
        assert!(matches!(
            zeros((1usize << 40, 1usize << 30), DType::F32, &Device::Cpu),
            Err(Error::Memory(_))
        ));
        assert!(matches!(
            checked_count(1 << 62, 4, "jobs"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn possible_sizes_allocate_what_was_asked() {
        assert_eq!(try_alloc::<i32>(5).unwrap(), vec![0; 5]);
        assert_eq!(try_filled(3, 7u8).unwrap(), vec![7, 7, 7]);
        assert_eq!(
            try_collect((0..4).map(|i| i * 2)).unwrap(),
            vec![0, 2, 4, 6]
        );
        assert_eq!(try_alloc_uninit::<f32>(6).unwrap().len(), 6);
        assert_eq!(checked_elems(&[3, 4, 5], 8).unwrap(), 60);
        assert_eq!(checked_elems(&[], 8).unwrap(), 1);
        assert_eq!(check_table_size(10, 3, DType::F16).unwrap(), 30);
        assert_eq!(checked_count(3, 4, "x").unwrap(), 12);
        let z = zeros((2, 3), DType::BF16, &Device::Cpu).unwrap();
        assert_eq!(z.dims(), [2, 3]);
        assert_eq!(
            z.to_dtype(DType::F32)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
    }
}
