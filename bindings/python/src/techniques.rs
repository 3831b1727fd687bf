//! `Embedding.attend` / `attend_backward` (weight tying): translation only; the work is in
//! `candle_embed::techniques::attend`. (The lookup transforms, `Embedding.__call__(...,
//! dropout=, normalize=)`, are `__call__` itself in `embedding.rs`: the core's transformed
//! lookup, which is the plain lookup when no transform is asked for.)

use candle_embed::dtype::Float;
use candle_embed::ids::Id;
use candle_embed::techniques::attend::Targets;
use candle_embed::Embedding;
use pyo3::prelude::*;

use crate::arrays::{fill, with_ids, with_out_float, Element, Floats, IdArray};
use crate::embedding::PyEmbedding;
use crate::errors::value_error;
use crate::sparse_grad::PySparseGrad;

/// The leading shape and row count of `x` (`(..., D)`), checking `D`.
pub fn split_x(shape: &[usize], dim: usize) -> PyResult<(Vec<usize>, usize)> {
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

/// The `Targets` of `ids` of shape `ishape` (1-D: shared; `x.shape[:-1] + (k,)`: per row) and
/// the logits' column count.
pub fn targets<'a, I: Id>(
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

/// `lead + (last,)`.
fn with_last(lead: &[usize], last: usize) -> Vec<usize> {
    let mut shape = lead.to_vec();
    shape.push(last);
    shape
}

/// Logits of `x` (`n` rows, leading shape `lead`) against `t`, into a fresh array.
fn logits<'py, T: Float + Element, I: Id>(
    py: Python<'py>,
    emb: &Embedding,
    (x, n, lead): (&Floats<'py, T>, usize, &[usize]),
    (t, cols): (Targets<'_, I>, usize),
) -> PyResult<Bound<'py, PyAny>> {
    let xs = x.values();
    let (y, ()) = fill::<T, _, _>(py, None, &with_last(lead, cols), &[], |dst| {
        emb.attend_into(xs, n, t, dst)
    })?;
    Ok(y)
}

/// Backward of [`logits`] for `g` (`lead + (cols,)`): `(grad_x, grad_weight)`.
fn logits_backward<'py, T: Float + Element, I: Id>(
    py: Python<'py>,
    emb: &Embedding,
    (x, n, lead): (&Floats<'py, T>, usize, &[usize]),
    g: &Floats<'py, T>,
    (t, cols): (Targets<'_, I>, usize),
) -> PyResult<(Bound<'py, PyAny>, PySparseGrad)> {
    let want = with_last(lead, cols);
    if g.shape() != want {
        return Err(value_error(format!(
            "grad_logits has shape {:?}, expected {want:?}",
            g.shape()
        )));
    }
    let (xs, gs) = (x.values(), g.values());
    let shape = with_last(lead, emb.embedding_dim());
    let (gx, gw) = fill::<T, _, _>(py, None, &shape, &[], |dst| {
        emb.attend_backward_into(xs, n, gs, t, dst)
    })?;
    Ok((gx, PySparseGrad::wrap(gw)))
}

#[pymethods]
impl PyEmbedding {
    /// Weight tying: logits ``x @ W.T`` for ``x`` of shape ``(..., embedding_dim)`` (cast to the
    /// table's dtype) -> ``(..., num_embeddings)``. ``ids`` 1-D (``k``): only those rows, shared
    /// by every row of ``x`` -> ``(..., k)``; ``ids`` of shape ``x.shape[:-1] + (k,)``: each
    /// row of ``x`` scored against its own ``k`` rows -> ``(..., k)``.
    #[pyo3(signature = (x, ids=None))]
    fn attend<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ids = IdArray::read_opt(ids, "ids")?;
        let emb = &*self.inner;
        with_out_float!(emb.dtype(), T => {
            let x = Floats::<T>::read(x, "x")?;
            let (lead, n) = split_x(x.shape(), emb.embedding_dim())?;
            let xin = (&x, n, &lead[..]);
            match &ids {
                None => logits(py, emb, xin, (Targets::<i64>::All, emb.num_embeddings())),
                Some(ids) => with_ids!(ids, |v| logits(py, emb, xin, targets(v, ids.shape(), &lead)?)),
            }
        })
    }

    /// Backward of ``attend`` for ``grad_logits`` (the logits' shape): ``(grad_x, grad_weight)``,
    /// ``grad_x`` shaped like ``x``, ``grad_weight`` a ``SparseGrad`` with every row when ``ids``
    /// is None, else the sorted unique ids with duplicates summed.
    #[pyo3(signature = (x, grad_logits, ids=None))]
    fn attend_backward<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        grad_logits: &Bound<'py, PyAny>,
        ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, PySparseGrad)> {
        let ids = IdArray::read_opt(ids, "ids")?;
        let emb = &*self.inner;
        with_out_float!(emb.dtype(), T => {
            let x = Floats::<T>::read(x, "x")?;
            let g = Floats::<T>::read(grad_logits, "grad_logits")?;
            let (lead, n) = split_x(x.shape(), emb.embedding_dim())?;
            let xin = (&x, n, &lead[..]);
            match &ids {
                None => logits_backward(py, emb, xin, &g, (Targets::<i64>::All, emb.num_embeddings())),
                Some(ids) => with_ids!(ids, |v| {
                    logits_backward(py, emb, xin, &g, targets(v, ids.shape(), &lead)?)
                }),
            }
        })
    }
}
