//! Integer index arrays (ids, offsets, positions, token types, relative positions) of every
//! integer width, read exactly once into an owned snapshot.
//!
//! Why a snapshot: kernels run without the GIL, so another thread may write to the caller's
//! array during the call. Validation and kernel read the same owned copy, hence a concurrent
//! write yields the result for some state of the input or a typed `IndexError`, never an
//! out-of-bounds read. The copy costs one pass over the ids (an output row is usually dozens of
//! times larger than its id) and is allocated fallibly: a broadcast input too large to copy
//! (`np.broadcast_to(np.int64(3), (2**40,))`) is a `MemoryError`.

use candle_embed::ids::Id;
use numpy::{
    Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat};

use super::snapshot::Snapshot;
use super::view::{asarray, view, Region};
use crate::errors::{from_numpy, memory_error, type_error, value_error, ErrorClass};

/// The values of an index array, in C order, in the width the caller gave them.
pub enum IdValues {
    I8(Snapshot<i8>),
    I16(Snapshot<i16>),
    I32(Snapshot<i32>),
    I64(Snapshot<i64>),
    U8(Snapshot<u8>),
    U16(Snapshot<u16>),
    U32(Snapshot<u32>),
    U64(Snapshot<u64>),
}

/// An owned snapshot of an integer array: its values, its shape, and where the caller's copy
/// lives (for the `out=` overlap check).
pub struct IdArray {
    values: IdValues,
    shape: Vec<usize>,
    region: Region,
}

/// Run `$body` once per id width with `$ids: &[I]` bound to the snapshot's values (C order).
macro_rules! with_ids {
    ($arr:expr, |$ids:ident| $body:expr) => {
        $crate::arrays::ids::match_widths!($arr, |$ids| $body;
            I8: i8, I16: i16, I32: i32, I64: i64, U8: u8, U16: u16, U32: u32, U64: u64)
    };
}
/// The `match` behind [`with_ids!`], one arm per `Variant: type`.
macro_rules! match_widths {
    ($arr:expr, |$ids:ident| $body:expr; $($variant:ident: $t:ty),*) => {
        match $arr.values() {
            $($crate::arrays::ids::IdValues::$variant(v) => {
                let $ids: &[$t] = v;
                $body
            })*
        }
    };
}
pub(crate) use match_widths;
pub(crate) use with_ids;

impl IdArray {
    /// Read an integer array-like of any shape and strides, a Python int, or a (nested)
    /// sequence of ints. Floats, bools, objects, complex numbers and strings are a `TypeError`.
    pub fn read(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Self> {
        if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyFloat>() {
            return Err(type_error(format!(
                "{what} must be integers, got {}",
                obj.get_type().name()?
            )));
        }
        let viewed = view(obj, what)?;
        let mut arr = viewed.array;
        // np.asarray([]) is float64: an empty Python sequence means "no ids".
        if viewed.from_list && arr.len() == 0 && arr.dtype().kind() == b'f' {
            arr = asarray(obj, Some("int64"), what)?;
        }
        Self::snapshot(&arr, what)
    }

    /// [`IdArray::read`], with `None` (absent or Python `None`) passed through.
    pub fn read_opt(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Self>> {
        obj.filter(|o| !o.is_none())
            .map(|o| Self::read(o, what))
            .transpose()
    }

    fn snapshot(arr: &Bound<'_, PyUntypedArray>, what: &str) -> PyResult<Self> {
        let dtype = arr.dtype();
        let kind = dtype.kind();
        if kind != b'i' && kind != b'u' {
            return Err(type_error(format!(
                "{what} must be an integer array, got dtype {}",
                dtype.str()?
            )));
        }
        if !dtype.is_native_byteorder().unwrap_or(true) {
            let py = arr.py();
            let native = dtype.call_method1("newbyteorder", ("=",))?;
            let swapped = arr
                .call_method1("astype", (native,))
                .map_err(|e| from_numpy(py, e, ErrorClass::Type))?;
            return Self::snapshot(swapped.cast::<PyUntypedArray>()?, what);
        }
        let shape = arr.shape().to_vec();
        let (values, region) = match (kind, dtype.itemsize()) {
            (b'i', 1) => copy_typed(arr, what, IdValues::I8)?,
            (b'i', 2) => copy_typed(arr, what, IdValues::I16)?,
            (b'i', 4) => copy_typed(arr, what, IdValues::I32)?,
            (b'i', 8) => copy_typed(arr, what, IdValues::I64)?,
            (b'u', 1) => copy_typed(arr, what, IdValues::U8)?,
            (b'u', 2) => copy_typed(arr, what, IdValues::U16)?,
            (b'u', 4) => copy_typed(arr, what, IdValues::U32)?,
            (b'u', 8) => copy_typed(arr, what, IdValues::U64)?,
            _ => {
                return Err(type_error(format!(
                    "unsupported {what} dtype {}",
                    dtype.str()?
                )))
            }
        };
        Ok(IdArray {
            values,
            shape,
            region,
        })
    }

    pub fn values(&self) -> &IdValues {
        &self.values
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Where the caller's array lives.
    pub fn region(&self) -> Region {
        self.region
    }

    /// The values widened to `i64` in a fallibly allocated vector; a `u64` beyond `i64::MAX`
    /// saturates (it is out of range of anything it can index, and is reported as such).
    pub fn to_i64(&self, what: &str) -> PyResult<Vec<i64>> {
        let n = self.shape.iter().product::<usize>();
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| {
            memory_error(format!(
                "cannot widen {what}: {n} int64 values do not fit in memory"
            ))
        })?;
        with_ids!(self, |ids| v.extend(ids.iter().map(|&i| {
            i.wide().clamp(i64::MIN as i128, i64::MAX as i128) as i64
        })));
        Ok(v)
    }

    /// [`IdArray::to_i64`] of a 1-D array (offsets), a `ValueError` for any other shape.
    pub fn to_i64_1d(&self, what: &str) -> PyResult<Vec<i64>> {
        if self.shape.len() != 1 {
            return Err(value_error(format!(
                "{what} must be 1-D, got shape {:?}",
                self.shape
            )));
        }
        self.to_i64(what)
    }
}

/// Copy `arr` (whose dtype is `T`) in C order into a [`Snapshot`], wrapped by `wrap`.
fn copy_typed<T: Element + Copy>(
    arr: &Bound<'_, PyUntypedArray>,
    what: &str,
    wrap: fn(Snapshot<T>) -> IdValues,
) -> PyResult<(IdValues, Region)> {
    let typed = arr.cast::<PyArrayDyn<T>>()?;
    let region = Region::of(typed);
    let borrowed = typed
        .try_readonly()
        .map_err(|e| value_error(format!("{what} cannot be read ({e})")))?;
    Ok((wrap(Snapshot::copy_of(&borrowed, what)?), region))
}
