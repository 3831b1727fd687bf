//! Any array-like as an ndarray, through NumPy's own view machinery so that nothing is copied
//! when the memory is usable as it is.
//!
//! - an ndarray is used as it is (no Python call at all: the hot path);
//! - an object with `__dlpack_device__` (a PyTorch / JAX / CuPy tensor, ...) goes through
//!   `np.from_dlpack` once its device is known to be host memory; any other device is a
//!   `ValueError` that says to move the data to the CPU;
//! - anything else goes through `np.asarray`: the buffer protocol (`memoryview`, `bytearray`,
//!   `array.array`), `__array_interface__`, `__array__`, Python scalars and sequences.

use numpy::{
    Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyMemoryError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple};

use crate::errors::{memory_error, type_error, value_error};

/// The bytes an array's elements occupy in memory, `[start, end)`; empty for an array without
/// elements. For a strided array the range also covers the gaps between elements, so an
/// overlap test on it is conservative (it may report two interleaved views as overlapping).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    start: usize,
    end: usize,
}

impl Region {
    /// The extent of `a`'s elements: from the lowest byte any element occupies to one past the
    /// highest (negative strides included).
    pub fn of<T: Element>(a: &Bound<'_, PyArrayDyn<T>>) -> Region {
        let shape = a.shape();
        if shape.contains(&0) {
            return Region::default();
        }
        // NumPy keeps every element inside the address space, so these sums fit; i128 keeps
        // the arithmetic exact whatever the strides' signs.
        let (mut lo, mut hi) = (0i128, 0i128);
        for (&n, &stride) in shape.iter().zip(a.strides()) {
            let span = (n as i128 - 1) * stride as i128;
            if span < 0 {
                lo += span;
            } else {
                hi += span;
            }
        }
        let base = a.data() as usize as i128;
        Region {
            start: (base + lo) as usize,
            end: (base + hi + std::mem::size_of::<T>() as i128) as usize,
        }
    }

    /// True when the two ranges share at least one byte.
    pub fn overlaps(&self, other: &Region) -> bool {
        self.start < self.end
            && other.start < other.end
            && self.start < other.end
            && other.start < self.end
    }
}

/// An input seen as an ndarray, and whether it came from a Python list or tuple (whose empty
/// form NumPy types as float64).
pub struct Viewed<'py> {
    pub array: Bound<'py, PyUntypedArray>,
    pub from_list: bool,
}

/// `np.asarray` and `np.from_dlpack`, looked up once.
struct NumPy {
    asarray: Py<PyAny>,
    from_dlpack: Py<PyAny>,
}

static NUMPY: PyOnceLock<NumPy> = PyOnceLock::new();

fn numpy(py: Python<'_>) -> PyResult<&'static NumPy> {
    NUMPY.get_or_try_init(py, || -> PyResult<_> {
        let np = py.import("numpy")?;
        Ok(NumPy {
            asarray: np.getattr("asarray")?.unbind(),
            from_dlpack: np.getattr("from_dlpack")?.unbind(),
        })
    })
}

/// `np.asarray(obj, dtype)`: the one call that turns a non-ndarray into an array.
pub fn asarray<'py>(
    obj: &Bound<'py, PyAny>,
    dtype: Option<&str>,
    what: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    let asarray = numpy(py)?.asarray.bind(py);
    let arr = match dtype {
        None => asarray.call1((obj,)),
        Some(d) => asarray.call1((obj, d)),
    }
    .map_err(|e| {
        refused(
            py,
            e,
            what,
            "an array-like (ndarray, buffer, sequence of numbers)",
        )
    })?;
    Ok(arr.cast_into::<PyUntypedArray>()?)
}

/// `obj` as an ndarray (see the module docs for what is accepted).
pub fn view<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Viewed<'py>> {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return Ok(Viewed {
            array: a.clone(),
            from_list: false,
        });
    }
    let py = obj.py();
    let from_list = obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>();
    let array = if !from_list && obj.hasattr(intern!(py, "__dlpack_device__"))? {
        check_dlpack_device(obj, what)?;
        numpy(py)?
            .from_dlpack
            .bind(py)
            .call1((obj,))
            .map_err(|e| refused(py, e, what, "readable through DLPack"))?
            .cast_into::<PyUntypedArray>()?
    } else {
        asarray(obj, None, what)?
    };
    Ok(Viewed { array, from_list })
}

/// DLPack device types whose memory the CPU reads directly (NumPy's `from_dlpack` accepts the
/// same): CPU, CUDA pinned host memory, ROCm host memory, CUDA managed memory.
const HOST_DEVICES: [i64; 4] = [1, 3, 11, 13];

/// Refuse a DLPack producer whose data is not in host memory, with a `ValueError` that says so.
fn check_dlpack_device(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    let device = obj
        .call_method0(intern!(obj.py(), "__dlpack_device__"))
        .and_then(|d| d.extract::<(i64, i64)>())
        .map_err(|e| type_error(format!("{what}: __dlpack_device__() failed: {e}")))?;
    if HOST_DEVICES.contains(&device.0) {
        return Ok(());
    }
    let name = match device.0 {
        2 => "CUDA",
        4 => "OpenCL",
        7 => "Vulkan",
        8 => "Metal",
        10 => "ROCm",
        14 => "oneAPI",
        _ => "a non-CPU device",
    };
    Err(value_error(format!(
        "{what} lives on {name} (DLPack device {:?}); only CPU memory can be read: \
         move it to the CPU first (e.g. tensor.cpu())",
        device
    )))
}

/// NumPy refusing to view `what`: a `MemoryError` stays one, anything else is a `TypeError`
/// (the object is not an array-like we can read).
fn refused(py: Python<'_>, e: PyErr, what: &str, expected: &str) -> PyErr {
    if e.is_instance_of::<PyMemoryError>(py) {
        return memory_error(format!("{what}: {}", e.value(py)));
    }
    type_error(format!("{what} must be {expected}: {}", e.value(py)))
}

/// The elements of `a` in C order as a new vector, allocated fallibly: a size beyond the
/// address space is a `ValueError`, one the allocator refuses a `MemoryError`.
pub fn c_order_copy<T: Element + Copy>(
    a: &PyReadonlyArrayDyn<'_, T>,
    what: &str,
) -> PyResult<Vec<T>> {
    let n = a.len();
    let item = std::mem::size_of::<T>();
    if n.checked_mul(item).is_none_or(|b| b > isize::MAX as usize) {
        return Err(value_error(format!(
            "cannot copy {what}: {n} elements of {item} bytes exceed the address space"
        )));
    }
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        memory_error(format!(
            "cannot copy {what}: {n} elements of {item} bytes do not fit in memory"
        ))
    })?;
    match a.as_slice() {
        Ok(s) if a.is_c_contiguous() => v.extend_from_slice(s),
        _ => v.extend(a.as_array().iter().copied()),
    }
    Ok(v)
}
