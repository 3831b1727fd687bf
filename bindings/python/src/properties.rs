//! Python members declared once instead of once per class:
//! - [`getters!`]: read-only properties, one line each;
//! - [`tensor_property!`]: an array property (reading copies a tensor out, assigning replaces
//!   its values in place);
//! - for the classes that hold an embedding table: [`weight_property!`] (Embedding,
//!   EmbeddingBag, LearnedPositionalEmbedding, RelativePositionBias), [`table_properties!`] and
//!   [`table_files!`] (Embedding, EmbeddingBag).
//!
//! Each expands to one more `#[pymethods]` block of the class (`multiple-pymethods`); doc
//! comments become the members' docstrings.

/// Read-only properties of `$cls`: after each doc comment, `name: Type = expression;` with
/// `self` bound as `$s`.
macro_rules! getters {
    ($cls:ty, |$s:ident| { $( $(#[$doc:meta])* $name:ident: $ty:ty = $e:expr; )* }) => {
        #[pyo3::pymethods]
        impl $cls {
            $(
                $(#[$doc])*
                #[getter]
                fn $name(&self) -> $ty {
                    let $s = self;
                    $e
                }
            )*
        }
    };
}
pub(crate) use getters;

/// A read-write array property of `$cls` (Python name `$get` without `get_`): reading gives a
/// copy of the tensor `$read`; assigning converts the array (float16/32/64) and runs `$write`
/// with it bound as `$t`. `self` is bound as `$s`.
macro_rules! tensor_property {
    ($cls:ty, $(#[$doc:meta])* $get:ident / $set:ident, |$s:ident| $read:expr,
        |$t:ident| $write:expr) => {
        #[pyo3::pymethods]
        impl $cls {
            $(#[$doc])*
            #[getter]
            fn $get<'py>(
                &self,
                py: pyo3::Python<'py>,
            ) -> pyo3::PyResult<pyo3::Bound<'py, pyo3::PyAny>> {
                let $s = self;
                $crate::arrays::tables::tensor_to_numpy(py, &$read)
            }

            #[setter]
            fn $set(&self, value: &pyo3::Bound<'_, pyo3::PyAny>) -> pyo3::PyResult<()> {
                use $crate::errors::IntoPyResult as _;
                let $s = self;
                let what = stringify!($get).trim_start_matches("get_");
                let $t = $crate::arrays::tables::numpy_to_tensor(value, what)?;
                $write.py()
            }
        }
    };
}
pub(crate) use tensor_property;

/// `weight` of `$cls` whose table is `$table` (an `&candle_embed::Embedding` reached from
/// `self` bound as `$s`).
macro_rules! weight_property {
    ($cls:ty, |$s:ident| $table:expr) => {
        $crate::properties::tensor_property!(
            $cls,
            /// The table, ``(rows, dim)``: reading gives a copy (a bfloat16 table comes back as
            /// float32; a memory-mapped table is read whole from its file); assigning a
            /// float16/float32/float64 array of the same shape replaces the values in place (cast
            /// to the table's dtype), seen by every holder of the table (written to the file of
            /// an ``mmap="r+"`` table; refused for ``mmap="r"``).
            get_weight / set_weight,
            |$s| $crate::errors::IntoPyResult::py($table.table())?,
            |t| $table.set_weight(&t)
        );
    };
}
pub(crate) use weight_property;

/// The read-only properties of a lookup table for `$cls` whose table is `$table` (an
/// `&candle_embed::Embedding` reached from `self` bound as `$s`).
macro_rules! table_properties {
    ($cls:ty, |$s:ident| $table:expr) => {
        $crate::properties::getters!($cls, |$s| {
            /// Number of rows of the table (the id range is ``[0, num_embeddings)``).
            num_embeddings: usize = $table.num_embeddings();
            /// Width ``D`` of each row.
            embedding_dim: usize = $table.embedding_dim();
            /// The row that is zero at initialisation and gets no gradient (resolved to
            /// ``[0, num_embeddings)``), or None.
            padding_idx: Option<usize> = $table.padding_idx();
            /// Rows looked up with a ``norm_type``-norm above this are renormalised to it in
            /// place, or None.
            max_norm: Option<f64> = $table.config().max_norm;
            /// The ``p`` of the p-norm ``max_norm`` uses.
            norm_type: f64 = $table.config().norm_type;
            /// True when optimizers refuse to update the table (``from_pretrained(freeze=True)``).
            frozen: bool = $table.is_frozen();
            /// The table's dtype: "float32", "float64", "float16" or "bfloat16".
            dtype: &'static str = candle_embed::dtype::dtype_name($table.dtype());
            /// Where the table lives: "cpu", "cuda:N" or "metal:N".
            device: String = candle_embed::device::device_name(&$table.device());
        });
    };
}
pub(crate) use table_properties;

/// `save` and `load` of `$cls` whose core type `$core` has `save(&self, path)`,
/// `load(path, device)` and `load_mapped(path, mode)`; `$load_doc`: what `load` accepts.
macro_rules! table_files {
    ($cls:ident, $core:ty, $(#[$load_doc:meta])*) => {
        #[pyo3::pymethods]
        impl $cls {
            /// Save the table and its options to a safetensors file ``path``, atomically (a
            /// reader sees the old file or the new one, never a part). A memory-mapped table's
            /// rows are streamed from its file.
            fn save(
                &self,
                py: pyo3::Python<'_>,
                #[pyo3(from_py_with = $crate::args::path)] path: std::path::PathBuf,
            ) -> pyo3::PyResult<()> {
                let inner = self.inner.clone();
                $crate::gil::without_gil(py, move || inner.save(&path))
            }

            $(#[$load_doc])*
            ///
            /// ``mmap``: None or False reads the file into memory; True or "r" maps it
            /// read-only (rows are read from the file as lookups touch them, nothing up front;
            /// the table is frozen), "r+" maps it writable (optimizer steps write to the file),
            /// "c" copy-on-write (steps change memory only). Mapped tables live on the CPU.
            #[classmethod]
            #[pyo3(signature = (path, *, mmap=None, device=$crate::args::default_text("cpu")),
                text_signature = "(path, *, mmap=None, device='cpu')")]
            fn load(
                _cls: &pyo3::Bound<'_, pyo3::types::PyType>,
                py: pyo3::Python<'_>,
                #[pyo3(from_py_with = $crate::args::path)] path: std::path::PathBuf,
                mmap: Option<&pyo3::Bound<'_, pyo3::PyAny>>,
                #[pyo3(from_py_with = $crate::args::text)] device: String,
            ) -> pyo3::PyResult<Self> {
                use $crate::errors::IntoPyResult as _;
                let device = candle_embed::device::parse_device(&device).py()?;
                let mode = $crate::mapped::map_mode(mmap)?;
                if mode.is_some() && !device.is_cpu() {
                    return Err($crate::errors::value_error(
                        "a memory-mapped table lives on the CPU: pass device='cpu' with mmap",
                    ));
                }
                let inner = $crate::gil::without_gil(py, move || match mode {
                    None => <$core>::load(&path, &device),
                    Some(mode) => <$core>::load_mapped(&path, mode),
                })?;
                Ok($cls {
                    inner: std::sync::Arc::new(inner),
                })
            }
        }
    };
}
pub(crate) use table_files;
