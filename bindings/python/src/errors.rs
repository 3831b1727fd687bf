//! The one bridge from failures to Python exceptions: core errors (`candle_embed::Error`),
//! NumPy's own refusals (an array too big, too many dimensions, no memory) and the bindings'
//! argument checks all leave as a class of `candle_embed._errors`, each of which derives from
//! `CandleEmbedError` *and* the builtin class a Python user expects.
//!
//! The classes are looked up once, when the module is imported ([`init`]), into a table; raising
//! one is then a table read, not an import and an attribute lookup by name.

use candle_embed::Error;
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The exception classes of `candle_embed._errors`, by kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    Index,
    Type,
    Value,
    Key,
    Memory,
    OS,
    FileNotFound,
    Runtime,
}

impl ErrorClass {
    const ALL: [ErrorClass; 8] = [
        ErrorClass::Index,
        ErrorClass::Type,
        ErrorClass::Value,
        ErrorClass::Key,
        ErrorClass::Memory,
        ErrorClass::OS,
        ErrorClass::FileNotFound,
        ErrorClass::Runtime,
    ];

    /// The class's name in `candle_embed._errors`.
    fn name(self) -> &'static str {
        match self {
            ErrorClass::Index => "CandleEmbedIndexError",
            ErrorClass::Type => "CandleEmbedTypeError",
            ErrorClass::Value => "CandleEmbedValueError",
            ErrorClass::Key => "CandleEmbedKeyError",
            ErrorClass::Memory => "CandleEmbedMemoryError",
            ErrorClass::OS => "CandleEmbedOSError",
            ErrorClass::FileNotFound => "CandleEmbedFileNotFoundError",
            ErrorClass::Runtime => "CandleEmbedRuntimeError",
        }
    }

    /// The class's position in [`CLASSES`] (the order of [`ErrorClass::ALL`]).
    fn slot(self) -> usize {
        self as usize
    }
}

/// The classes, in the order of [`ErrorClass::ALL`]; filled by [`init`].
static CLASSES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&'static [Py<PyType>]> {
    let table = CLASSES.get_or_try_init(py, || -> PyResult<_> {
        let module = py.import("candle_embed._errors")?;
        ErrorClass::ALL
            .iter()
            .map(|c| Ok(module.getattr(c.name())?.cast_into::<PyType>()?.unbind()))
            .collect()
    })?;
    Ok(table.as_slice())
}

/// Resolve the exception classes (called once from the module's init, so that a broken
/// installation fails at import rather than at the first error).
pub fn init(py: Python<'_>) -> PyResult<()> {
    classes(py).map(|_| ())
}

/// An exception of `class` carrying `msg`.
pub fn py_error(class: ErrorClass, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    Python::attach(|py| match classes(py) {
        Ok(table) => PyErr::from_type(table[class.slot()].bind(py).clone(), msg),
        Err(e) => e,
    })
}

/// The exception class a core error's variant stands for.
fn class_of(e: &Error) -> ErrorClass {
    match e {
        Error::IndexOutOfRange { .. } => ErrorClass::Index,
        Error::DType(_) => ErrorClass::Type,
        Error::Shape(_)
        | Error::InvalidArgument(_)
        | Error::UnsupportedDevice { .. }
        | Error::Format(_) => ErrorClass::Value,
        Error::Key(_) => ErrorClass::Key,
        Error::Memory(_) => ErrorClass::Memory,
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            ErrorClass::FileNotFound
        }
        Error::Io { .. } => ErrorClass::OS,
        Error::Candle(_) => ErrorClass::Runtime,
    }
}

/// Map a core error to the Python exception its variant stands for.
pub fn to_py(e: Error) -> PyErr {
    py_error(class_of(&e), e.to_string())
}

/// NumPy's own failure while making or converting an array, as ours: its `MemoryError`
/// ("Unable to allocate ...") becomes `CandleEmbedMemoryError`, its `ValueError` ("array is too
/// big", "maximum supported dimension ... is 64") `CandleEmbedValueError`; anything else is
/// reported as `fallback` with NumPy's message.
pub fn from_numpy(py: Python<'_>, e: PyErr, fallback: ErrorClass) -> PyErr {
    let class = if e.is_instance_of::<PyMemoryError>(py) {
        ErrorClass::Memory
    } else if e.is_instance_of::<PyValueError>(py) {
        ErrorClass::Value
    } else {
        fallback
    };
    // Already one of ours (say, raised by an `__array__` we called): keep it as it is.
    if let Ok(table) = classes(py) {
        if e.get_type(py).is(table[class.slot()].bind(py)) {
            return e;
        }
    }
    py_error(class, e.value(py).to_string())
}

/// `?`-friendly conversion: `core_call().py()?`.
pub trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for candle_embed::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

impl<T> IntoPyResult<T> for candle_core::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| to_py(Error::from(e)))
    }
}

pub fn value_error(msg: impl Into<String>) -> PyErr {
    py_error(ErrorClass::Value, msg)
}
pub fn type_error(msg: impl Into<String>) -> PyErr {
    py_error(ErrorClass::Type, msg)
}
pub fn memory_error(msg: impl Into<String>) -> PyErr {
    py_error(ErrorClass::Memory, msg)
}
pub fn runtime_error(msg: impl Into<String>) -> PyErr {
    py_error(ErrorClass::Runtime, msg)
}
