//! Memory-mapped tables at the Python boundary: the `mmap` argument of the `load` classmethods
//! (gensim's and NumPy's names) and the members of a mapped `Embedding` / `EmbeddingBag`
//! (`mmap_mode`, `flush`). The mapping itself is the core's (`candle_embed::mmap`).

use candle_embed::mmap::MapMode;
use candle_embed::Embedding;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use crate::errors::{type_error, IntoPyResult};
use crate::gil::without_gil;

/// The `mmap` argument of `load`: `None` or `False` (read the file into memory), `True` or
/// `"r"` (map read-only), `"r+"` (writable: writes go to the file), `"c"` (copy-on-write:
/// writes stay in memory). Anything else is a `ValueError` (an unknown mode) or `TypeError`.
pub fn map_mode(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<MapMode>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(b.is_true().then_some(MapMode::ReadOnly));
    }
    if obj.is_instance_of::<PyString>() {
        return MapMode::parse(&crate::args::text(obj)?).py().map(Some);
    }
    Err(type_error(format!(
        "mmap must be None, a bool or one of 'r', 'r+', 'c', got {}",
        obj.get_type().name()?
    )))
}

/// The mode name of a table's mapping, or None for a table in memory.
pub fn mode_name(table: &Embedding) -> Option<&'static str> {
    table.rows().map_mode().map(MapMode::name)
}

/// Write a `"r+"` table's changed rows back to its file now (a no-op otherwise).
pub fn flush(py: Python<'_>, table: &Embedding) -> PyResult<()> {
    let rows = table.rows();
    without_gil(py, move || rows.mapping().map_or(Ok(()), |m| m.flush()))
}

/// The members of a table that may be memory-mapped, for `$cls` whose table is `$table`
/// (invoked beside each class, so this file imports no class).
macro_rules! mapped_members {
    ($cls:ty, |$s:ident| $table:expr) => {
        #[pymethods]
        impl $cls {
            /// How the table's file is mapped (``load(path, mmap=...)``): "r" (read-only, the
            /// table is frozen), "r+" (writes go to the file), "c" (copy-on-write: writes stay
            /// in memory), or None for a table held in memory.
            #[getter]
            fn mmap_mode(&self) -> Option<&'static str> {
                let $s = self;
                $crate::mapped::mode_name($table)
            }

            /// Write the rows changed through an ``mmap="r+"`` map back to the file now (the
            /// OS also does it on its own schedule, and when the table is dropped). A no-op for
            /// other tables.
            fn flush(&self, py: Python<'_>) -> PyResult<()> {
                let $s = self;
                $crate::mapped::flush(py, $table)
            }
        }
    };
}

pub(crate) use mapped_members;
