//! `candle_embed.RelativePositionBias` and `relative_position_bucket` (T5): translation only;
//! the work is in `candle_embed::positional::relative`.

use std::ffi::CStr;
use std::sync::Arc;

use candle_core::Device;
use candle_embed::positional::relative::{self, BucketConfig, RelativePositionBias};
use pyo3::prelude::*;

use super::py_dtype;
use crate::args;
use crate::arrays::{collect, with_ids, with_out_float, Floats, IdArray};
use crate::embedding::PyEmbedding;
use crate::errors::value_error;
use crate::gil::{build_shared, without_gil};
use crate::properties::{getters, weight_property};
use crate::sparse_grad::PySparseGrad;

/// T5's relative position bias: a learned ``(num_buckets, num_heads)`` table indexed by the
/// bucket of each ``key - query`` distance, added to attention logits.
///
/// Half the buckets are exact small distances, the rest logarithmic up to ``max_distance``;
/// with ``bidirectional=False`` (decoders) every key after the query falls in bucket 0.
#[pyclass(frozen, name = "RelativePositionBias", module = "candle_embed")]
pub struct PyRelativePositionBias {
    pub inner: Arc<RelativePositionBias>,
}

/// The documentation of `RelativePositionBias.__call__` (see `docs.rs`).
pub const CALL_DOC: &CStr = c"__call__($self, q_len, k_len, *, offset=0)
--

The bias ``(num_heads, q_len, k_len)``: ``W[bucket(j - (i + offset)), h]`` for query ``i``
(shifted by ``offset``, e.g. the cached length when decoding) and key ``j``.";

pub fn bucket_config(num_buckets: usize, max_distance: usize, bidirectional: bool) -> BucketConfig {
    BucketConfig {
        num_buckets,
        max_distance,
        bidirectional,
    }
}

/// T5's bucket of each relative position ``key - query`` (integers, any shape), int64 of the
/// same shape, computed as transformers does (in float32).
#[pyfunction]
#[pyo3(signature = (relative_position, *, bidirectional=true, num_buckets=32, max_distance=128))]
fn relative_position_bucket<'py>(
    py: Python<'py>,
    relative_position: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = args::flag)] bidirectional: bool,
    #[pyo3(from_py_with = args::size)] num_buckets: usize,
    #[pyo3(from_py_with = args::size)] max_distance: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let cfg = bucket_config(num_buckets, max_distance, bidirectional);
    let rel = IdArray::read(relative_position, "relative_position")?;
    with_ids!(rel, |v| collect(py, rel.shape(), || {
        relative::relative_position_bucket(v, &cfg)
    }))
}

#[pymethods]
impl PyRelativePositionBias {
    #[new]
    #[pyo3(signature = (num_heads, *, num_buckets=32, max_distance=128, bidirectional=true, seed=None,
        dtype=args::default_text("float32")),
        text_signature = "(num_heads, *, num_buckets=32, max_distance=128, bidirectional=True, \
        seed=None, dtype='float32')")]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] num_heads: usize,
        #[pyo3(from_py_with = args::size)] num_buckets: usize,
        #[pyo3(from_py_with = args::size)] max_distance: usize,
        #[pyo3(from_py_with = args::flag)] bidirectional: bool,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        #[pyo3(from_py_with = args::text)] dtype: String,
    ) -> PyResult<Self> {
        let cfg = bucket_config(num_buckets, max_distance, bidirectional);
        let h = num_heads;
        let dt = py_dtype(&dtype)?;
        Ok(Self {
            inner: build_shared(py, || {
                RelativePositionBias::new(h, cfg, dt, &Device::Cpu, seed)
            })?,
        })
    }

    #[pyo3(signature = (q_len, k_len, *, offset=0))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::size)] q_len: usize,
        #[pyo3(from_py_with = args::size)] k_len: usize,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = &*self.inner;
        let shape = [r.num_heads(), q_len, k_len];
        with_out_float!(r.embedding().dtype(), T => {
            collect(py, &shape, || r.bias::<T>(q_len, k_len, offset))
        })
    }

    /// The table's gradient for ``grad`` of shape ``(num_heads, q_len, k_len)`` (the bias of the
    /// same call): a ``SparseGrad`` over the buckets used.
    #[pyo3(signature = (grad, q_len, k_len, *, offset=0))]
    fn backward(
        &self,
        py: Python<'_>,
        grad: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::size)] q_len: usize,
        #[pyo3(from_py_with = args::size)] k_len: usize,
        #[pyo3(from_py_with = args::signed)] offset: i64,
    ) -> PyResult<PySparseGrad> {
        let r = &*self.inner;
        let h = r.num_heads();
        let g = with_out_float!(r.embedding().dtype(), T => {
            let g = Floats::<T>::read(grad, "grad")?;
            if g.shape() != [h, q_len, k_len] {
                return Err(value_error(format!(
                    "grad has shape {:?}, expected ({h}, {q_len}, {k_len})",
                    g.shape()
                )));
            }
            let v = g.values();
            without_gil(py, || r.backward(v, q_len, k_len, offset))?
        });
        Ok(PySparseGrad::wrap(g))
    }

    /// The bias table as an ``Embedding`` ``(num_buckets, num_heads)`` sharing this object's
    /// storage (an optimizer stepping it updates this object).
    #[getter]
    fn embedding(&self) -> PyEmbedding {
        PyEmbedding::shared(self.inner.embedding())
    }
    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "RelativePositionBias({}, num_buckets={}, max_distance={}, bidirectional={})",
            self.inner.num_heads(),
            c.num_buckets,
            c.max_distance,
            if c.bidirectional { "True" } else { "False" }
        )
    }
}

weight_property!(PyRelativePositionBias, |s| s.inner.embedding());
getters!(PyRelativePositionBias, |s| {
    /// The number of attention heads (columns of the table).
    num_heads: usize = s.inner.num_heads();
    /// The number of distance buckets (rows of the table).
    num_buckets: usize = s.inner.config().num_buckets;
    /// The distance from which every larger distance shares the last bucket.
    max_distance: usize = s.inner.config().max_distance;
    /// True when keys on both sides of the query have their own buckets (encoders).
    bidirectional: bool = s.inner.config().bidirectional;
});

/// Register `RelativePositionBias` and `relative_position_bucket`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::docs::add_callable_class::<PyRelativePositionBias>(m, CALL_DOC)?;
    m.add_function(wrap_pyfunction!(relative_position_bucket, m)?)
}
