//! Sparse-gradient functions: `Embedding.backward`, `index_add`, `coalesce`,
//! `SparseGrad.from_rows`. Translation only; the kernels are in `candle_embed::sparse`.

use candle_core::{Device, Tensor};
use candle_embed::dtype::Float;
use candle_embed::ids::Id;
use candle_embed::sparse::{self, CoalesceOptions};
use candle_embed::techniques::RowTransform;
use candle_embed::SparseGrad;
use pyo3::prelude::*;

use crate::args;
use crate::arrays::view::view;
use crate::arrays::{
    fill, float_dtype, vec_output, with_ids, with_out_float, Element, Floats, IdArray,
};
use crate::embedding::PyEmbedding;
use crate::errors::{value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::sparse_grad::PySparseGrad;

#[pymethods]
impl PyEmbedding {
    /// The table's gradient given ``grad_output`` (shape ``ids.shape + (embedding_dim,)``, cast
    /// to the table's dtype): a coalesced ``SparseGrad`` (sorted unique ids, one summed row
    /// each). ``padding_idx`` rows get nothing; ``scale_grad_by_freq`` divides each row by its
    /// count in ``ids``. ``dropout`` / ``seed`` / ``normalize`` as in the forward: the exact
    /// gradient through them (``dropout > 0`` needs the forward's explicit ``seed``; dropped
    /// rows appear with zero values).
    #[pyo3(signature = (ids, grad_output, *, dropout=0.0, seed=None, normalize=false))]
    fn backward(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        grad_output: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::real)] dropout: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        #[pyo3(from_py_with = args::flag)] normalize: bool,
    ) -> PyResult<PySparseGrad> {
        let t = RowTransform::for_backward(dropout, seed, normalize).py()?;
        let ids = IdArray::read(ids, "ids")?;
        let emb = &*self.inner;
        let g = with_out_float!(emb.dtype(), T => {
            let g = Floats::<T>::read(grad_output, "grad_output")?;
            let mut want = ids.shape().to_vec();
            want.push(emb.embedding_dim());
            if g.shape() != want.as_slice() {
                return Err(value_error(format!(
                    "grad_output has shape {:?}, expected ids.shape + (embedding_dim,) = {want:?}",
                    g.shape()
                )));
            }
            let gs = g.values();
            with_ids!(ids, |v| without_gil(py, || emb.backward_transformed(v, gs, &t))?)
        });
        Ok(PySparseGrad::wrap(g))
    }
}

/// ``dst`` with ``src[i]`` added to row ``ids[i]``, as a new array (``dst`` is unchanged);
/// ``src`` has shape ``ids.shape + dst.shape[1:]`` and is cast to ``dst``'s float dtype.
/// Deterministic for any thread count. IndexError for an id outside ``[0, len(dst))``.
#[pyfunction]
pub fn index_add<'py>(
    py: Python<'py>,
    dst: &Bound<'py, PyAny>,
    ids: &Bound<'py, PyAny>,
    src: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let dst = view(dst, "dst")?;
    with_out_float!(float_dtype(&dst, "dst")?, T => {
        let d = Floats::<T>::of_view(dst, "dst")?;
        let s = Floats::<T>::read(src, "src")?;
        let ids = IdArray::read(ids, "ids")?;
        let dshape = d.shape().to_vec();
        let Some((&rows, inner)) = dshape.split_first() else {
            return Err(value_error("dst must have at least one dimension"));
        };
        let mut want = ids.shape().to_vec();
        want.extend_from_slice(inner);
        if s.shape() != want.as_slice() {
            return Err(value_error(format!(
                "src has shape {:?}, expected ids.shape + dst.shape[1:] = {want:?}",
                s.shape()
            )));
        }
        let dim: usize = inner.iter().product();
        let (dv, sv) = (d.values(), s.values());
        with_ids!(ids, |v| {
            let (out, ()) = fill::<T, _, _>(py, None, &dshape, &[], |o| {
                if dim == 0 {
                    // Nothing to add or copy: only the ids' range is checked.
                    return candle_embed::ids::validate(v, rows, "index", "the destination");
                }
                sparse::index_add_to(dv, dim, v, sv, o)
            })?;
            Ok(out)
        })
    })
}

/// Coalesce `values` (`ids.shape + (D,)`, float dtype `T`) by id against a table of `num_rows`
/// rows (`None`: one more than the largest id): `(unique ids, summed rows, D, rows)`.
fn coalesce_as<T: Float + Element>(
    py: Python<'_>,
    ids: &IdArray,
    values: &Floats<'_, T>,
    num_rows: Option<usize>,
) -> PyResult<(Vec<i64>, Vec<T>, usize, usize)> {
    let (vs, shape) = (values.shape(), ids.shape());
    if vs.len() != shape.len() + 1 || &vs[..shape.len()] != shape {
        return Err(value_error(format!(
            "values has shape {vs:?}, expected ids.shape + (D,) with ids.shape = {shape:?}"
        )));
    }
    let dim = vs[shape.len()];
    let vals = values.values();
    with_ids!(ids, |v| without_gil(py, || {
        let rows = match num_rows {
            Some(n) => n,
            None => {
                candle_embed::ids::validate(v, i64::MAX as usize, "index", "ids")?;
                v.iter().map(|i| i.index() + 1).max().unwrap_or(0)
            }
        };
        let (u, s) = sparse::coalesce_rows(v, vals, dim, rows, CoalesceOptions::default())?;
        Ok((u, s, dim, rows))
    }))
}

/// Sorted unique ``ids`` (int64) and, for each, the sum of its rows of ``values`` (shape
/// ``ids.shape + (D,)``, float16/32/64, kept): ``(unique_ids, summed_values)`` of shapes
/// ``(n,)`` and ``(n, D)``.
#[pyfunction]
pub fn coalesce<'py>(
    py: Python<'py>,
    ids: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let ids = IdArray::read(ids, "ids")?;
    let values = view(values, "values")?;
    with_out_float!(float_dtype(&values, "values")?, T => {
        let values = Floats::<T>::of_view(values, "values")?;
        let (u, s, dim, _) = coalesce_as::<T>(py, &ids, &values, None)?;
        let sums = vec_output(py, s, &[u.len(), dim])?;
        let n = u.len();
        Ok((vec_output(py, u, &[n])?, sums))
    })
}

#[pymethods]
impl PySparseGrad {
    /// Coalesce row gradients ``values`` (shape ``ids.shape + (D,)``, float16/32/64) into the
    /// gradient of a ``(num_rows, D)`` table, duplicates summed. IndexError for an id outside
    /// ``[0, num_rows)``.
    #[staticmethod]
    fn from_rows(
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        values: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::size)] num_rows: usize,
    ) -> PyResult<PySparseGrad> {
        let ids = IdArray::read(ids, "ids")?;
        let values = view(values, "values")?;
        // The summed rows go straight into the gradient's tensor (no NumPy round trip).
        let g = with_out_float!(float_dtype(&values, "values")?, T => {
            let values = Floats::<T>::of_view(values, "values")?;
            let (u, sums, dim, rows) = coalesce_as::<T>(py, &ids, &values, Some(num_rows))?;
            let t = Tensor::from_vec(sums, (u.len(), dim), &Device::Cpu).py()?;
            SparseGrad::from_coalesced_unchecked(u, t, rows)
        });
        Ok(PySparseGrad::wrap(g))
    }
}
