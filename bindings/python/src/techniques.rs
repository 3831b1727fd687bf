//! `Embedding.attend` / `attend_backward` (weight tying) and the lookup transforms (whole-word
//! dropout, unit-norm rows) behind `Embedding.__call__(..., dropout=, seed=, normalize=)`.
//! Translation only: the work is in `candle_embed::techniques`.

use std::sync::Arc;

use candle_core::{DType, Tensor};
use candle_embed::dtype::Float;
use candle_embed::techniques::attend::Targets;
use candle_embed::techniques::RowTransform;
use candle_embed::Embedding;
use numpy::{Element, PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::args;
use crate::arrays::{contiguous, float_array, new_output, out_buffer, IdArray};
use crate::embedding::PyEmbedding;
use crate::errors::{value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::sparse_grad::PySparseGrad;
use crate::tables::{numpy_to_tensor, tensor_to_numpy};
use crate::with_ids;

/// `emb(ids, dropout=, seed=, normalize=, out=)`: the fused transformed lookup;
/// `(dropout, seed, normalize)` as the keyword arguments gave them.
pub fn lookup_transformed<'py>(
    py: Python<'py>,
    emb: &Arc<Embedding>,
    ids: &IdArray<'py>,
    out: Option<&Bound<'py, PyAny>>,
    (dropout, seed, normalize): (f64, Option<u64>, bool),
) -> PyResult<Bound<'py, PyAny>> {
    let t = RowTransform::new(dropout, seed, normalize).py()?;
    match emb.dtype() {
        DType::F64 => lookup_t::<f64>(py, emb, ids, out, &t),
        DType::F16 => lookup_t::<half::f16>(py, emb, ids, out, &t),
        _ => lookup_t::<f32>(py, emb, ids, out, &t),
    }
}

fn lookup_t<'py, D: Float + Element>(
    py: Python<'py>,
    emb: &Arc<Embedding>,
    ids: &IdArray<'py>,
    out: Option<&Bound<'py, PyAny>>,
    t: &RowTransform,
) -> PyResult<Bound<'py, PyAny>> {
    with_ids!(ids, |ids, shape| {
        let mut full = shape.to_vec();
        full.push(emb.embedding_dim());
        match out {
            Some(o) => {
                let mut buf = out_buffer::<D>(o, &full)?;
                let dst = buf.as_slice_mut().map_err(|e| value_error(e.to_string()))?;
                without_gil(py, || emb.lookup_transformed_into(ids, dst, t))?;
                Ok(o.clone())
            }
            None => {
                let arr = new_output::<D>(py, &full);
                {
                    // SAFETY: `arr` is fresh and not yet shared with Python.
                    let dst =
                        unsafe { arr.as_slice_mut() }.map_err(|e| value_error(e.to_string()))?;
                    without_gil(py, || emb.lookup_transformed_into(ids, dst, t))?;
                }
                Ok(arr.into_any())
            }
        }
    })
}

/// The leading shape and row count of `x` (`(..., D)`), checking `D`.
fn split_x(shape: &[usize], dim: usize) -> PyResult<(Vec<usize>, usize)> {
    let Some((&d, lead)) = shape.split_last() else {
        return Err(value_error(
            "x must have shape (..., embedding_dim), got a 0-d array",
        ));
    };
    if d != dim {
        return Err(value_error(format!(
            "x has last dimension {d}, expected embedding_dim {dim}"
        )));
    }
    Ok((lead.to_vec(), lead.iter().product()))
}

/// Build the `Targets` of `ids` (1-D: shared; `x.shape[:-1] + (k,)`: per row) and the logits'
/// column count.
fn targets<'a, I: candle_embed::ids::Id>(
    ids: &'a [I],
    ishape: &[usize],
    lead: &[usize],
) -> PyResult<(Targets<'a, I>, usize)> {
    if ishape.len() == 1 {
        return Ok((Targets::Shared(ids), ishape[0]));
    }
    match ishape.split_last() {
        Some((&k, il)) if il == lead => Ok((Targets::PerRow(ids, k), k)),
        _ => Err(value_error(format!(
            "ids must be 1-D (shared by every row) or of shape x.shape[:-1] + (k,) = {lead:?} + (k,), got {ishape:?}"
        ))),
    }
}

/// Logits of `xs` (`n` rows, leading shape `lead`) against `t`, into a fresh array.
fn attend_run<'py, T: Float + Element, I: candle_embed::ids::Id>(
    py: Python<'py>,
    emb: &Embedding,
    (xs, n, lead): (&[T], usize, &[usize]),
    t: Targets<'_, I>,
    cols: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let mut shape = lead.to_vec();
    shape.push(cols);
    let arr = new_output::<T>(py, &shape);
    {
        // SAFETY: `arr` is fresh and not yet shared with Python.
        let dst = unsafe { arr.as_slice_mut() }.map_err(|e| value_error(e.to_string()))?;
        without_gil(py, || emb.attend_into(xs, n, t, dst))?;
    }
    Ok(arr.into_any())
}

fn attend_as<'py, T: Float + Element>(
    py: Python<'py>,
    emb: &Arc<Embedding>,
    x: &Bound<'py, PyAny>,
    ids: Option<&IdArray<'py>>,
) -> PyResult<Bound<'py, PyAny>> {
    let x = float_array::<T>(x, "x")?;
    let (lead, n) = split_x(x.shape(), emb.embedding_dim())?;
    let xs = contiguous(&x);
    let xin = (&*xs, n, &lead[..]);
    match ids {
        None => attend_run(py, emb, xin, Targets::<i64>::All, emb.num_embeddings()),
        Some(ids) => with_ids!(ids, |ids, ishape| {
            let (t, cols) = targets(ids, ishape, &lead)?;
            attend_run(py, emb, xin, t, cols)
        }),
    }
}

/// Backward of `attend_run`: checks `gs`'s shape, returns `(grad_x, grad_weight)`.
fn attend_backward_run<'py, T: Float + Element, I: candle_embed::ids::Id>(
    py: Python<'py>,
    emb: &Embedding,
    (xs, n, lead): (&[T], usize, &[usize]),
    (gs, gshape): (&[T], &[usize]),
    t: Targets<'_, I>,
    cols: usize,
) -> PyResult<(Bound<'py, PyAny>, PySparseGrad)> {
    let mut want = lead.to_vec();
    want.push(cols);
    if gshape != want {
        return Err(value_error(format!(
            "grad_logits has shape {gshape:?}, expected {want:?}"
        )));
    }
    let mut xshape = lead.to_vec();
    xshape.push(emb.embedding_dim());
    let arr = new_output::<T>(py, &xshape);
    let gw = {
        // SAFETY: `arr` is fresh and not yet shared with Python.
        let dst = unsafe { arr.as_slice_mut() }.map_err(|e| value_error(e.to_string()))?;
        without_gil(py, || emb.attend_backward_into(xs, n, gs, t, dst))?
    };
    Ok((arr.into_any(), PySparseGrad::wrap(gw)))
}

fn attend_backward_as<'py, T: Float + Element>(
    py: Python<'py>,
    emb: &Arc<Embedding>,
    x: &Bound<'py, PyAny>,
    grad_logits: &Bound<'py, PyAny>,
    ids: Option<&IdArray<'py>>,
) -> PyResult<(Bound<'py, PyAny>, PySparseGrad)> {
    let x = float_array::<T>(x, "x")?;
    let g = float_array::<T>(grad_logits, "grad_logits")?;
    let (lead, n) = split_x(x.shape(), emb.embedding_dim())?;
    let (xs, gs) = (contiguous(&x), contiguous(&g));
    let xin = (&*xs, n, &lead[..]);
    let gin = (&*gs, g.shape());
    match ids {
        None => attend_backward_run(py, emb, xin, gin, Targets::<i64>::All, emb.num_embeddings()),
        Some(ids) => with_ids!(ids, |ids, ishape| {
            let (t, cols) = targets(ids, ishape, &lead)?;
            attend_backward_run(py, emb, xin, gin, t, cols)
        }),
    }
}

/// A 2-D CPU tensor of `x` (`(..., D)` flattened to `(n, D)`), keeping its float dtype.
fn x_tensor(x: &Bound<'_, PyAny>, dim: usize, what: &str) -> PyResult<(Tensor, Vec<usize>)> {
    let t = numpy_to_tensor(x, what)?;
    let (lead, n) = split_x(t.dims(), dim)?;
    let t = t
        .reshape((n, dim))
        .map_err(candle_embed::Error::from)
        .py()?;
    Ok((t, lead))
}

#[pymethods]
impl PyEmbedding {
    /// Weight tying: logits `x @ W.T` (`(..., V)`), or only the rows `ids` (1-D: `(..., k)`;
    /// `x.shape[:-1] + (k,)`: each row its own candidates).
    #[pyo3(signature = (x, ids=None))]
    fn attend<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = ids.map(|i| IdArray::extract(i, "ids")).transpose()?;
        match self.inner.dtype() {
            DType::F64 => attend_as::<f64>(py, &self.inner, x, ids.as_ref()),
            DType::F16 => attend_as::<half::f16>(py, &self.inner, x, ids.as_ref()),
            _ => attend_as::<f32>(py, &self.inner, x, ids.as_ref()),
        }
    }

    /// Backward of `attend`: `(grad_x, grad_weight)`, `grad_weight` a `SparseGrad`.
    #[pyo3(signature = (x, grad_logits, ids=None))]
    fn attend_backward<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        grad_logits: &Bound<'py, PyAny>,
        ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, PySparseGrad)> {
        let ids = ids.map(|i| IdArray::extract(i, "ids")).transpose()?;
        let (inner, ids) = (&self.inner, ids.as_ref());
        match inner.dtype() {
            DType::F64 => attend_backward_as::<f64>(py, inner, x, grad_logits, ids),
            DType::F16 => attend_backward_as::<half::f16>(py, inner, x, grad_logits, ids),
            _ => attend_backward_as::<f32>(py, inner, x, grad_logits, ids),
        }
    }

    /// Portable path of `attend` (candle `matmul`), for tests.
    #[pyo3(signature = (x, ids=None))]
    fn _attend_portable<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (xt, lead) = x_tensor(x, self.inner.embedding_dim(), "x")?;
        let inner = self.inner.clone();
        let y = match ids.map(|i| IdArray::extract(i, "ids")).transpose()? {
            None => without_gil(py, || inner.attend_portable(&xt, Targets::<i64>::All))?,
            Some(ids) => with_ids!(ids, |ids, ishape| {
                let (t, _) = targets(ids, ishape, &lead)?;
                without_gil(py, || inner.attend_portable(&xt, t))?
            }),
        };
        tensor_to_numpy(py, &y)
    }

    /// Portable path of `attend_backward` (candle `matmul` + `index_add`), for tests:
    /// `(grad_x as (n, D), grad_weight)`.
    #[pyo3(signature = (x, grad_logits, ids=None))]
    fn _attend_backward_portable<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        grad_logits: &Bound<'py, PyAny>,
        ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, PySparseGrad)> {
        let (xt, lead) = x_tensor(x, self.inner.embedding_dim(), "x")?;
        let g = numpy_to_tensor(grad_logits, "grad_logits")?;
        let inner = self.inner.clone();
        let (gx, gw) = match ids.map(|i| IdArray::extract(i, "ids")).transpose()? {
            None => without_gil(py, || {
                inner.attend_backward_portable(&xt, &g, Targets::<i64>::All)
            })?,
            Some(ids) => with_ids!(ids, |ids, ishape| {
                let (t, _) = targets(ids, ishape, &lead)?;
                without_gil(py, || inner.attend_backward_portable(&xt, &g, t))?
            }),
        };
        Ok((tensor_to_numpy(py, &gx)?, PySparseGrad::wrap(gw)))
    }

    /// Portable path of the transformed lookup (candle ops), for tests.
    #[pyo3(signature = (ids, *, dropout=0.0, seed=None, normalize=false))]
    fn _lookup_transformed_portable<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        dropout: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        normalize: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = RowTransform::new(dropout, seed, normalize).py()?;
        let ids = IdArray::extract(ids, "ids")?;
        let inner = self.inner.clone();
        let y = with_ids!(ids, |ids, shape| {
            without_gil(py, || inner.lookup_transformed_portable(ids, shape, &t))?
        });
        tensor_to_numpy(py, &y)
    }

    /// The upstream gradient rows transformed for the plain backward (per position, float64,
    /// shape `ids.shape + (D,)`): `backward(ids, g, dropout=, seed=, normalize=)` equals
    /// `backward(ids, _transform_grad(ids, g, ...))`.
    #[pyo3(signature = (ids, grad_output, *, dropout=0.0, seed=None, normalize=false))]
    fn _transform_grad<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        grad_output: &Bound<'py, PyAny>,
        dropout: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] seed: Option<u64>,
        normalize: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = RowTransform::for_backward(dropout, seed, normalize).py()?;
        let ids = IdArray::extract(ids, "ids")?;
        let g = float_array::<f64>(grad_output, "grad_output")?;
        let gs = contiguous(&g);
        let gshape = g.shape().to_vec();
        let inner = self.inner.clone();
        let v = with_ids!(ids, |ids, shape| {
            let mut want = shape.to_vec();
            want.push(inner.embedding_dim());
            if gshape != want {
                return Err(value_error(format!(
                    "grad_output has shape {gshape:?}, expected {want:?}"
                )));
            }
            without_gil(py, || inner.transform_grad(ids, &gs, &t))?
        });
        Ok(PyArray1::from_vec(py, v).reshape(gshape)?.into_any())
    }
}
