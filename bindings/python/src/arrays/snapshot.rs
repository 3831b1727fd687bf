//! The owned copy of an index array ([`Snapshot`]), in an allocation the thread keeps for its
//! next call.
//!
//! Why keep it: every call copies its ids ([`super::ids`]). A bag call on 131072 int64 ids with a
//! fresh 1 MiB output made two allocations of about 1 MiB per call, which glibc serves from the
//! top of its heap and, once both are freed, hands back to the kernel (the free top then passes
//! its trim threshold): every call faulted the pages of both in again, about 500 page faults and
//! 0.6 ms of a 1.4 ms bag (seventh session, `perf stat`; a PyTorch process making the same call
//! does not, its indices are not copied). Taking the copy's allocation from a per-thread pool
//! takes it out of that pattern and saves the allocation itself.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};

use numpy::{Element, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::{memory_error, value_error};

/// The largest allocation a thread keeps for its next snapshot (a larger one is freed as usual).
const MAX_KEPT_BYTES: usize = 64 << 20;

thread_local! {
    /// The allocation kept for this thread's next snapshot (empty when none, or while in use).
    static KEPT: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// `len` values of an integer type `T` in C order, stored in 8-byte words taken from this
/// thread's kept allocation (or a fresh one); the words go back to the thread when dropped.
pub struct Snapshot<T> {
    words: Vec<u64>,
    len: usize,
    _values: PhantomData<T>,
}

impl<T: Element + Copy> Snapshot<T> {
    /// `T` fits the word storage: it divides a word and needs no more than a word's alignment.
    const FITS_WORDS: () = assert!(align_of::<T>() <= 8 && 8 % size_of::<T>() == 0);

    /// The elements of `a` in C order, allocated fallibly: a size beyond the address space is a
    /// `ValueError`, one the allocator refuses a `MemoryError`.
    pub fn copy_of(a: &PyReadonlyArrayDyn<'_, T>, what: &str) -> PyResult<Self> {
        let () = Self::FITS_WORDS;
        let n = a.len();
        let item = size_of::<T>();
        let bytes = n
            .checked_mul(item)
            .filter(|&b| b <= isize::MAX as usize)
            .ok_or_else(|| {
                value_error(format!(
                    "cannot copy {what}: {n} elements of {item} bytes exceed the address space"
                ))
            })?;
        let n_words = bytes.div_ceil(8);
        let mut words = KEPT
            .try_with(|k| std::mem::take(&mut *k.borrow_mut()))
            .unwrap_or_default();
        words.clear();
        words.try_reserve_exact(n_words).map_err(|_| {
            memory_error(format!(
                "cannot copy {what}: {n} elements of {item} bytes do not fit in memory"
            ))
        })?;
        let spare = &mut words.spare_capacity_mut()[..n_words];
        if let Some(last) = spare.last_mut() {
            // The bytes of the last word past the values are never read, but zeroed, so that
            // every word `set_len` exposes is initialised.
            last.write(0);
        }
        let dst = spare.as_mut_ptr().cast::<T>();
        match a.as_slice() {
            // SAFETY: `dst` has room for `n_words * 8 >= n * item` bytes, is aligned for `T`
            // (`FITS_WORDS`), and does not overlap the array's memory (a fresh or kept buffer).
            Ok(s) if a.is_c_contiguous() => unsafe {
                std::ptr::copy_nonoverlapping(s.as_ptr(), dst, n)
            },
            _ => {
                let view = a.as_array();
                debug_assert_eq!(view.len(), n);
                for (i, x) in view.iter().copied().enumerate().take(n) {
                    // SAFETY: `i < n`, within the room shown above.
                    unsafe { dst.add(i).write(x) };
                }
            }
        }
        // SAFETY: every one of the `n_words` words is initialised: the values cover the first
        // `n * item` bytes and the last word was zeroed before them.
        unsafe { words.set_len(n_words) };
        Ok(Snapshot {
            words,
            len: n,
            _values: PhantomData,
        })
    }
}

impl<T> std::ops::Deref for Snapshot<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: the words hold `len` values of `T` from their start, written by `copy_of`
        // (whose `FITS_WORDS` check makes a word pointer aligned for `T`).
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T> Drop for Snapshot<T> {
    fn drop(&mut self) {
        let words = std::mem::take(&mut self.words);
        if words.capacity() * 8 > MAX_KEPT_BYTES {
            return;
        }
        // Keep the larger of this allocation and the one the thread holds (a call with
        // several index arrays, ids and offsets, keeps its largest). `try_with`: a snapshot
        // dropped while the thread ends frees its words as usual.
        let _ = KEPT.try_with(|k| {
            if let Ok(mut kept) = k.try_borrow_mut() {
                if words.capacity() > kept.capacity() {
                    *kept = words;
                }
            }
        });
    }
}
