//! Sparse-gradient functions: `Embedding.backward`, `index_add`, `coalesce`,
//! `SparseGrad.from_rows`. Translation only; the kernels are in `candle_embed::sparse`.

use candle_core::{DType, Device, Tensor};
use candle_embed::dtype::Float;
use candle_embed::ids::Id;
use candle_embed::sparse::{self, CoalesceOptions};
use candle_embed::techniques::RowTransform;
use candle_embed::{Embedding, SparseGrad};
use numpy::{Element, PyArray1, PyArrayDescrMethods, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::args;
use crate::arrays::{as_ndarray, float_array, new_output, IdArray};
use crate::embedding::PyEmbedding;
use crate::errors::{type_error, value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::sparse_grad::PySparseGrad;
use crate::with_ids;

/// Which float element type a NumPy array has (float16/32/64); anything else is a TypeError.
fn float_kind(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<DType> {
    let arr = as_ndarray(obj)?;
    let dt = arr.dtype();
    match (dt.kind(), dt.itemsize()) {
        (b'f', 2) => Ok(DType::F16),
        (b'f', 4) => Ok(DType::F32),
        (b'f', 8) => Ok(DType::F64),
        _ => Err(type_error(format!(
            "{what} must be a float16/float32/float64 array, got dtype {}",
            dt.str()?
        ))),
    }
}

fn backward_as<T: Float + Element>(
    py: Python<'_>,
    emb: &Embedding,
    ids: &IdArray<'_>,
    grad_output: &Bound<'_, PyAny>,
    t: &RowTransform,
) -> PyResult<SparseGrad> {
    let g = float_array::<T>(grad_output, "grad_output")?;
    with_ids!(ids, |ids, shape| {
        let mut want = shape.to_vec();
        want.push(emb.embedding_dim());
        if g.shape() != want.as_slice() {
            return Err(value_error(format!(
                "grad_output has shape {:?}, expected ids.shape + (embedding_dim,) = {want:?}",
                g.shape()
            )));
        }
        let gs = contiguous(&g);
        without_gil(py, || emb.backward_transformed(ids, &gs, t))
    })
}

#[pymethods]
impl PyEmbedding {
    /// `emb.backward(ids, grad_output)`: the table's gradient as a coalesced `SparseGrad`;
    /// `dropout` / `seed` / `normalize` as in the forward (see `techniques.rs`).
    #[pyo3(signature = (ids, grad_output, *, dropout=0.0, seed=None, normalize=false))]
    fn backward(
        &self,
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        grad_output: &Bound<'_, PyAny>,
        dropout: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        normalize: bool,
    ) -> PyResult<PySparseGrad> {
        let t = RowTransform::for_backward(dropout, seed, normalize).py()?;
        let ids = IdArray::extract(ids, "ids")?;
        let g = match self.inner.dtype() {
            DType::F64 => backward_as::<f64>(py, &self.inner, &ids, grad_output, &t)?,
            DType::F16 => backward_as::<half::f16>(py, &self.inner, &ids, grad_output, &t)?,
            _ => backward_as::<f32>(py, &self.inner, &ids, grad_output, &t)?,
        };
        Ok(PySparseGrad::wrap(g))
    }
}

fn index_add_as<'py, T: Float + Element>(
    py: Python<'py>,
    dst: &Bound<'py, PyAny>,
    ids: &Bound<'py, PyAny>,
    src: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let d = float_array::<T>(dst, "dst")?;
    let s = float_array::<T>(src, "src")?;
    let ids = IdArray::extract(ids, "ids")?;
    let dshape = d.shape().to_vec();
    if dshape.is_empty() {
        return Err(value_error("dst must have at least one dimension"));
    }
    let dim: usize = dshape[1..].iter().product();
    with_ids!(ids, |ids, shape| {
        let mut want = shape.to_vec();
        want.extend_from_slice(&dshape[1..]);
        if s.shape() != want.as_slice() {
            return Err(value_error(format!(
                "src has shape {:?}, expected ids.shape + dst.shape[1:] = {want:?}",
                s.shape()
            )));
        }
        let (dc, sc) = (contiguous(&d), contiguous(&s));
        let out = new_output::<T>(py, &dshape);
        {
            // SAFETY: `out` is fresh and not yet shared with Python.
            let o = unsafe { out.as_slice_mut() }.map_err(|e| value_error(e.to_string()))?;
            without_gil(py, || {
                if dim == 0 {
                    candle_embed::ids::validate(ids, dshape[0], "index", "the destination")?;
                    return Ok(());
                }
                sparse::index_add_to(&dc, dim, ids, &sc, o)
            })?;
        }
        Ok(out.into_any())
    })
}

/// `index_add(dst, ids, src)`: a new array, `dst` with `src[i]` added to row `ids[i]`.
#[pyfunction]
pub fn index_add<'py>(
    py: Python<'py>,
    dst: &Bound<'py, PyAny>,
    ids: &Bound<'py, PyAny>,
    src: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    match float_kind(dst, "dst")? {
        DType::F64 => index_add_as::<f64>(py, dst, ids, src),
        DType::F16 => index_add_as::<half::f16>(py, dst, ids, src),
        _ => index_add_as::<f32>(py, dst, ids, src),
    }
}

/// Coalesce `values` (`ids.shape + (D,)`) by id against a table of `num_rows` rows
/// (`None`: one more than the largest id).
fn coalesce_as<T: Float + Element>(
    py: Python<'_>,
    ids: &IdArray<'_>,
    values: &Bound<'_, PyAny>,
    num_rows: Option<usize>,
) -> PyResult<(Vec<i64>, Vec<T>, usize, usize)> {
    let v = float_array::<T>(values, "values")?;
    with_ids!(ids, |ids, shape| {
        let vs = v.shape();
        if vs.len() != shape.len() + 1 || &vs[..shape.len()] != shape {
            return Err(value_error(format!(
                "values has shape {vs:?}, expected ids.shape + (D,) with ids.shape = {shape:?}"
            )));
        }
        let dim = vs[shape.len()];
        let vc = contiguous(&v);
        without_gil(py, || {
            let rows = match num_rows {
                Some(n) => n,
                None => {
                    candle_embed::ids::validate(ids, i64::MAX as usize, "index", "ids")?;
                    ids.iter().map(|i| i.index() + 1).max().unwrap_or(0)
                }
            };
            let (u, s) = sparse::coalesce_rows(ids, &vc, dim, rows, CoalesceOptions::default())?;
            Ok((u, s, dim, rows))
        })
    })
}

fn coalesce_any<'py>(
    py: Python<'py>,
    ids: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    num_rows: Option<usize>,
) -> PyResult<(Vec<i64>, Bound<'py, PyAny>, usize, usize)> {
    let ids = IdArray::extract(ids, "ids")?;
    macro_rules! go {
        ($T:ty) => {{
            let (u, s, dim, rows) = coalesce_as::<$T>(py, &ids, values, num_rows)?;
            let n = u.len();
            let arr = PyArray1::from_vec(py, s).reshape([n, dim])?.into_any();
            Ok((u, arr, dim, rows))
        }};
    }
    match float_kind(values, "values")? {
        DType::F64 => go!(f64),
        DType::F16 => go!(half::f16),
        _ => go!(f32),
    }
}

/// `coalesce(ids, values) -> (unique_ids, summed_values)`: sorted unique ids (int64) and, for
/// each, the sum of its rows of `values` (shape `ids.shape + (D,)`).
#[pyfunction]
pub fn coalesce<'py>(
    py: Python<'py>,
    ids: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyArray1<i64>>, Bound<'py, PyAny>)> {
    let (u, arr, _, _) = coalesce_any(py, ids, values, None)?;
    Ok((PyArray1::from_vec(py, u), arr))
}

#[pymethods]
impl PySparseGrad {
    /// `SparseGrad.from_rows(ids, values, num_rows)`: coalesce row gradients (duplicates summed)
    /// into the gradient of a `(num_rows, D)` table.
    #[staticmethod]
    fn from_rows(
        py: Python<'_>,
        ids: &Bound<'_, PyAny>,
        values: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::size)] num_rows: usize,
    ) -> PyResult<PySparseGrad> {
        let ids = IdArray::extract(ids, "ids")?;
        // The summed rows go straight into the gradient's tensor (no NumPy round trip).
        macro_rules! go {
            ($T:ty) => {{
                let (u, sums, dim, rows) = coalesce_as::<$T>(py, &ids, values, Some(num_rows))?;
                let t = Tensor::from_vec(sums, (u.len(), dim), &Device::Cpu)
                    .map_err(candle_embed::Error::from)
                    .py()?;
                SparseGrad::from_coalesced_unchecked(u, t, rows)
            }};
        }
        let g = match float_kind(values, "values")? {
            DType::F64 => go!(f64),
            DType::F16 => go!(half::f16),
            _ => go!(f32),
        };
        Ok(PySparseGrad::wrap(g))
    }
}
