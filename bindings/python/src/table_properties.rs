//! The Python properties every class holding an embedding table shares, written once:
//! [`weight_property!`] (`weight`: a copy out, an in-place replacement in) for `Embedding`,
//! `EmbeddingBag`, `LearnedPositionalEmbedding` and `RelativePositionBias`, and
//! [`table_properties!`] (sizes, options, dtype, device) for `Embedding` and `EmbeddingBag`.
//! Each expands to one more `#[pymethods]` block of the class (`multiple-pymethods`).

/// `weight` for class `$cls` whose table is `$table` (an `&candle_embed::Embedding`, reached
/// from `self` bound as `$s`).
macro_rules! weight_property {
    ($cls:ty, |$s:ident| $table:expr) => {
        #[pyo3::pymethods]
        impl $cls {
            /// The table, ``(rows, dim)``: reading gives a copy (a bfloat16 table comes back as
            /// float32); assigning a float16/float32/float64 array of the same shape replaces
            /// the values in place (cast to the table's dtype), seen by every holder of the table.
            #[getter]
            fn get_weight<'py>(
                &self,
                py: pyo3::Python<'py>,
            ) -> pyo3::PyResult<pyo3::Bound<'py, pyo3::PyAny>> {
                let $s = self;
                $crate::arrays::tables::tensor_to_numpy(py, &$table.weight())
            }

            #[setter]
            fn set_weight(&self, value: &pyo3::Bound<'_, pyo3::PyAny>) -> pyo3::PyResult<()> {
                use $crate::errors::IntoPyResult as _;
                let $s = self;
                let t = $crate::arrays::tables::numpy_to_tensor(value, "weight")?;
                $table.set_weight(&t).py()
            }
        }
    };
}
pub(crate) use weight_property;

/// The read-only properties of a lookup table for class `$cls` whose table is `$table` (an
/// `&candle_embed::Embedding`, reached from `self` bound as `$s`).
macro_rules! table_properties {
    ($cls:ty, |$s:ident| $table:expr) => {
        #[pyo3::pymethods]
        impl $cls {
            /// Number of rows of the table (the id range is ``[0, num_embeddings)``).
            #[getter]
            fn num_embeddings(&self) -> usize {
                let $s = self;
                $table.num_embeddings()
            }
            /// Width ``D`` of each row.
            #[getter]
            fn embedding_dim(&self) -> usize {
                let $s = self;
                $table.embedding_dim()
            }
            /// The row that is zero at initialisation and gets no gradient (resolved to
            /// ``[0, num_embeddings)``), or None.
            #[getter]
            fn padding_idx(&self) -> Option<usize> {
                let $s = self;
                $table.padding_idx()
            }
            /// Rows looked up with a ``norm_type``-norm above this are renormalised to it in
            /// place, or None.
            #[getter]
            fn max_norm(&self) -> Option<f64> {
                let $s = self;
                $table.config().max_norm
            }
            /// The ``p`` of the p-norm ``max_norm`` uses.
            #[getter]
            fn norm_type(&self) -> f64 {
                let $s = self;
                $table.config().norm_type
            }
            /// True when optimizers refuse to update the table (``from_pretrained(freeze=True)``).
            #[getter]
            fn frozen(&self) -> bool {
                let $s = self;
                $table.is_frozen()
            }
            /// The table's dtype: "float32", "float64", "float16" or "bfloat16".
            #[getter]
            fn dtype(&self) -> &'static str {
                let $s = self;
                candle_embed::dtype::dtype_name($table.dtype())
            }
            /// Where the table lives: "cpu", "cuda:N" or "metal:N".
            #[getter]
            fn device(&self) -> String {
                let $s = self;
                candle_embed::device::device_name(&$table.device())
            }
        }
    };
}
pub(crate) use table_properties;
