//! `candle_embed._native._testing`: the portable paths (candle ops, any device) and other hooks
//! the test suite checks the fast kernels against. Not public API: they live in this private
//! submodule so that `dir(candle_embed)` and `dir(candle_embed.Embedding)` show only what users
//! call. Each takes the object it exercises as its first argument; integer arguments are
//! plain (the tests pass valid ones), without the public API's strict extractors.

use candle_core::{Device, Tensor};
use candle_embed::positional::alibi;
use candle_embed::positional::rotary::{Positions, RotaryEmbedding};
use candle_embed::positional::sinusoidal;
use candle_embed::techniques::attend::Targets;
use candle_embed::techniques::RowTransform;
use pyo3::prelude::*;

use crate::arrays::tables::{numpy_to_tensor, tensor_to_numpy};
use crate::arrays::{collect, vec_output, with_ids, Floats, IdArray};
use crate::bag::{read_offsets, read_weights, PyEmbeddingBag};
use crate::embedding::PyEmbedding;
use crate::errors::{value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::positional::py_dtype;
use crate::positional::relative::PyRelativePositionBias;
use crate::positional::rotary::{positions, PyRotaryEmbedding};
use crate::positional::sinusoidal::PySinusoidalPositionalEncoding;
use crate::quantized::{PyQuantizedEmbedding, PyQuantizedEmbeddingBag};
use crate::sparse_grad::PySparseGrad;
use crate::techniques::{split_x, targets};

/// `table(ids)` through candle ops, for an `Embedding` (`index_select`, its dtype) or a
/// `QuantizedEmbedding` (dequantized rows, float32): shape ``ids.shape + (D,)``. Registered
/// also as `quantized_lookup_portable`.
#[pyfunction]
fn lookup_portable<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyAny>,
    ids: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let t = if let Ok(q) = table.cast::<PyQuantizedEmbedding>() {
        let (q, ids) = (q.get().inner.clone(), IdArray::read(ids, "ids")?);
        with_ids!(ids, |v| without_gil(py, || q
            .lookup_portable(v, ids.shape()))?)
    } else {
        let e = table.cast::<PyEmbedding>()?.get().inner.clone();
        let ids = IdArray::read(ids, "ids")?;
        with_ids!(ids, |v| without_gil(py, || e
            .lookup_portable(v, ids.shape()))?)
    };
    tensor_to_numpy(py, &t)
}

/// `emb(ids, dropout=, seed=, normalize=)` through candle ops.
#[pyfunction]
#[pyo3(signature = (emb, ids, *, dropout=0.0, seed=None, normalize=false))]
fn lookup_transformed_portable<'py>(
    py: Python<'py>,
    emb: &Bound<'py, PyEmbedding>,
    ids: &Bound<'py, PyAny>,
    dropout: f64,
    seed: Option<u64>,
    normalize: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let t = RowTransform::new(dropout, seed, normalize).py()?;
    let ids = IdArray::read(ids, "ids")?;
    let inner = emb.get().inner.clone();
    let y = with_ids!(ids, |v| {
        without_gil(py, || inner.lookup_transformed_portable(v, ids.shape(), &t))?
    });
    tensor_to_numpy(py, &y)
}

/// The upstream gradient rows transformed for the plain backward (per position, float64, shape
/// ``ids.shape + (D,)``): ``emb.backward(ids, g, dropout=, seed=, normalize=)`` equals
/// ``emb.backward(ids, transform_grad(emb, ids, g, ...))``.
#[pyfunction]
#[pyo3(signature = (emb, ids, grad_output, *, dropout=0.0, seed=None, normalize=false))]
fn transform_grad<'py>(
    py: Python<'py>,
    emb: &Bound<'py, PyEmbedding>,
    ids: &Bound<'py, PyAny>,
    grad_output: &Bound<'py, PyAny>,
    dropout: f64,
    seed: Option<u64>,
    normalize: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let t = RowTransform::for_backward(dropout, seed, normalize).py()?;
    let ids = IdArray::read(ids, "ids")?;
    let g = Floats::<f64>::read(grad_output, "grad_output")?;
    let inner = &*emb.get().inner;
    let mut want = ids.shape().to_vec();
    want.push(inner.embedding_dim());
    if g.shape() != want {
        return Err(value_error(format!(
            "grad_output has shape {:?}, expected {want:?}",
            g.shape()
        )));
    }
    let gs = g.values();
    with_ids!(ids, |v| collect(py, g.shape(), || inner
        .transform_grad(v, gs, &t)))
}

/// `x` (`(..., D)`) as a 2-D CPU tensor `(n, D)` of its own float dtype, and its leading shape.
fn x_tensor(x: &Bound<'_, PyAny>, dim: usize) -> PyResult<(Tensor, Vec<usize>)> {
    let t = numpy_to_tensor(x, "x")?;
    let (lead, n) = split_x(t.dims(), dim)?;
    Ok((t.reshape((n, dim)).py()?, lead))
}

/// `emb.attend(x, ids)` through candle's `matmul`: shape ``(n, cols)``.
#[pyfunction]
#[pyo3(signature = (emb, x, ids=None))]
fn attend_portable<'py>(
    py: Python<'py>,
    emb: &Bound<'py, PyEmbedding>,
    x: &Bound<'py, PyAny>,
    ids: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let inner = emb.get().inner.clone();
    let (xt, lead) = x_tensor(x, inner.embedding_dim())?;
    let y = match IdArray::read_opt(ids, "ids")? {
        None => without_gil(py, || inner.attend_portable(&xt, Targets::<i64>::All))?,
        Some(ids) => with_ids!(ids, |v| {
            let (t, _) = targets(v, ids.shape(), &lead)?;
            without_gil(py, || inner.attend_portable(&xt, t))?
        }),
    };
    tensor_to_numpy(py, &y)
}

/// `emb.attend_backward(x, grad_logits, ids)` through candle's `matmul` and `index_add`:
/// ``(grad_x of shape (n, D), grad_weight)``.
#[pyfunction]
#[pyo3(signature = (emb, x, grad_logits, ids=None))]
fn attend_backward_portable<'py>(
    py: Python<'py>,
    emb: &Bound<'py, PyEmbedding>,
    x: &Bound<'py, PyAny>,
    grad_logits: &Bound<'py, PyAny>,
    ids: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, PySparseGrad)> {
    let inner = emb.get().inner.clone();
    let (xt, lead) = x_tensor(x, inner.embedding_dim())?;
    let g = numpy_to_tensor(grad_logits, "grad_logits")?;
    let (gx, gw) = match IdArray::read_opt(ids, "ids")? {
        None => without_gil(py, || {
            inner.attend_backward_portable(&xt, &g, Targets::<i64>::All)
        })?,
        Some(ids) => with_ids!(ids, |v| {
            let (t, _) = targets(v, ids.shape(), &lead)?;
            without_gil(py, || inner.attend_backward_portable(&xt, &g, t))?
        }),
    };
    Ok((tensor_to_numpy(py, &gx)?, PySparseGrad::wrap(gw)))
}

/// `bag(ids, offsets, per_sample_weights)` through candle ops, for an `EmbeddingBag`
/// (`index_select` + `index_add`, weights read as float64, in the table's dtype) or a
/// `QuantizedEmbeddingBag` (dequantized rows, weights and output float32). Registered also as
/// `quantized_bag_portable`.
#[pyfunction]
#[pyo3(signature = (bag, ids, offsets=None, per_sample_weights=None))]
fn bag_forward_portable<'py>(
    py: Python<'py>,
    bag: &Bound<'py, PyAny>,
    ids: &Bound<'py, PyAny>,
    offsets: Option<&Bound<'py, PyAny>>,
    per_sample_weights: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let t = if let Ok(qb) = bag.cast::<PyQuantizedEmbeddingBag>() {
        let qb = qb.get().inner.clone();
        let (ids, off) = bag_inputs(ids, offsets)?;
        let w = read_weights::<f32>(per_sample_weights, ids.shape())?;
        let (s, off, w) = (ids.shape(), off.as_deref(), w.as_ref().map(Floats::values));
        with_ids!(ids, |v| without_gil(py, || qb
            .forward_portable(v, s, off, w))?)
    } else {
        let b = bag.cast::<PyEmbeddingBag>()?.get().inner.clone();
        let (ids, off) = bag_inputs(ids, offsets)?;
        let w = read_weights::<f64>(per_sample_weights, ids.shape())?;
        let (s, off, w) = (ids.shape(), off.as_deref(), w.as_ref().map(Floats::values));
        with_ids!(ids, |v| without_gil(py, || b
            .forward_portable(v, s, off, w))?)
    };
    tensor_to_numpy(py, &t)
}

/// The ids and 1-D offsets (as int64) of a bag call.
fn bag_inputs<'py>(
    ids: &Bound<'py, PyAny>,
    offsets: Option<&Bound<'py, PyAny>>,
) -> PyResult<(IdArray, Option<Vec<i64>>)> {
    let ids = IdArray::read(ids, "ids")?;
    Ok((ids, read_offsets(offsets)?.map(|(v, _)| v)))
}

/// A candle-op path of `rope` on `x` (float16/32/64 kept) at `positions` / `offset`.
fn rope_tensor_path<'py>(
    py: Python<'py>,
    rope: &PyRotaryEmbedding,
    x: &Bound<'py, PyAny>,
    (pos, offset): (Option<&Bound<'py, PyAny>>, i64),
    f: impl FnOnce(&RotaryEmbedding, &Tensor, &Positions) -> candle_embed::Result<Tensor> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let t = numpy_to_tensor(x, "x")?;
    let (pos, _) = positions(pos, offset)?;
    let inner = rope.inner.clone();
    let r = without_gil(py, move || f(&inner, &t, &pos))?;
    tensor_to_numpy(py, &r)
}

/// `rope.apply` (or, with `backward=True`, `rope.apply_backward`) through candle ops.
#[pyfunction]
#[pyo3(signature = (rope, x, positions=None, *, offset=0, backward=false))]
fn rope_apply_portable<'py>(
    py: Python<'py>,
    rope: &Bound<'py, PyRotaryEmbedding>,
    x: &Bound<'py, PyAny>,
    positions: Option<&Bound<'py, PyAny>>,
    offset: i64,
    backward: bool,
) -> PyResult<Bound<'py, PyAny>> {
    rope_tensor_path(py, rope.get(), x, (positions, offset), move |r, t, p| {
        if backward {
            r.backward_portable(t, p)
        } else {
            r.forward_portable(t, p)
        }
    })
}

/// `rope.apply` through candle-nn's fused `rope` / `rope_i` (4-D ``x`` only).
#[pyfunction]
#[pyo3(signature = (rope, x, positions=None, *, offset=0))]
fn rope_apply_fused<'py>(
    py: Python<'py>,
    rope: &Bound<'py, PyRotaryEmbedding>,
    x: &Bound<'py, PyAny>,
    positions: Option<&Bound<'py, PyAny>>,
    offset: i64,
) -> PyResult<Bound<'py, PyAny>> {
    rope_tensor_path(py, rope.get(), x, (positions, offset), |r, t, p| {
        r.forward_fused(t, p)
    })
}

/// The gradient of ``sum(rope.apply(x) * grad_output)`` with respect to ``x`` through candle's
/// autograd on the fast path's `CustomOp`.
#[pyfunction]
#[pyo3(signature = (rope, x, grad_output, positions=None, *, offset=0))]
fn rope_autograd<'py>(
    py: Python<'py>,
    rope: &Bound<'py, PyRotaryEmbedding>,
    x: &Bound<'py, PyAny>,
    grad_output: &Bound<'py, PyAny>,
    positions: Option<&Bound<'py, PyAny>>,
    offset: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let g = numpy_to_tensor(grad_output, "grad_output")?;
    rope_tensor_path(py, rope.get(), x, (positions, offset), move |r, t, p| {
        let v = candle_core::Var::from_tensor(t)?;
        let y = r.forward(v.as_tensor(), p)?;
        let loss = (y * g.to_dtype(t.dtype())?)?.sum_all()?;
        let grads = loss.backward()?;
        grads
            .get(v.as_tensor())
            .cloned()
            .ok_or_else(|| candle_embed::Error::InvalidArgument("no gradient reached x".into()))
            .and_then(|t| Ok(t.to_device(&Device::Cpu)?))
    })
}

/// The sinusoidal table of `pe` computed by the portable path (candle ops).
#[pyfunction]
fn sinusoidal_table_portable<'py>(
    py: Python<'py>,
    pe: &Bound<'py, PySinusoidalPositionalEncoding>,
) -> PyResult<Bound<'py, PyAny>> {
    let c = *pe.get().inner.config();
    let (dim, dt) = (pe.get().inner.dim(), pe.get().inner.table().dtype());
    let t = without_gil(py, || {
        sinusoidal::sinusoidal_table_portable(c.max_len, dim, c.base, c.layout, dt, &Device::Cpu)
    })?;
    tensor_to_numpy(py, &t)
}

/// `alibi_bias(...)` through candle ops.
#[pyfunction]
#[pyo3(signature = (num_heads, q_len, k_len, *, offset=0, dtype="float32"))]
fn alibi_bias_portable<'py>(
    py: Python<'py>,
    num_heads: usize,
    q_len: usize,
    k_len: usize,
    offset: i64,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (h, q, k) = (num_heads, q_len, k_len);
    let dt = py_dtype(dtype)?;
    let t = without_gil(py, || {
        alibi::alibi_bias_portable(h, q, k, offset, dt, &Device::Cpu)
    })?;
    tensor_to_numpy(py, &t)
}

/// `rpb(q_len, k_len, offset=)` through bucket ids and candle's `index_select`.
#[pyfunction]
#[pyo3(signature = (rpb, q_len, k_len, *, offset=0))]
fn relative_bias_portable<'py>(
    py: Python<'py>,
    rpb: &Bound<'py, PyRelativePositionBias>,
    q_len: usize,
    k_len: usize,
    offset: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let r = &*rpb.get().inner;
    let t = without_gil(py, || r.bias_portable(q_len, k_len, offset))?;
    tensor_to_numpy(py, &t)
}

/// Set the CPU gather/bag tuning (`candle_embed::kernels::cpu::tuning`) for the whole process
/// and return the previous `(prefetch_bytes, stream_min_bytes)`; `None` keeps a setting. The
/// benchmarks sweep them; no result depends on them. `stream_min_bytes=-1` never streams.
#[pyfunction]
#[pyo3(signature = (*, prefetch_bytes=None, stream_min_bytes=None))]
fn set_cpu_tuning(prefetch_bytes: Option<usize>, stream_min_bytes: Option<i64>) -> (usize, i64) {
    use candle_embed::kernels::cpu::tuning;
    let old = tuning::get();
    let as_py = |b: usize| i64::try_from(b).unwrap_or(-1);
    tuning::set(tuning::Tuning {
        prefetch_bytes: prefetch_bytes.unwrap_or(old.prefetch_bytes),
        lookahead_bytes: old.lookahead_bytes,
        stream_min_bytes: match stream_min_bytes {
            None => old.stream_min_bytes,
            Some(b) => usize::try_from(b).unwrap_or(usize::MAX),
        },
    });
    (old.prefetch_bytes, as_py(old.stream_min_bytes))
}

/// Set how many bytes of rows the CPU quantized bag kernels prefetch ahead (`None` keeps it) and return
/// the previous value; the benchmarks sweep it, no result depends on it.
#[pyfunction]
#[pyo3(signature = (lookahead_bytes=None))]
fn set_cpu_lookahead(lookahead_bytes: Option<usize>) -> usize {
    use candle_embed::kernels::cpu::tuning;
    let old = tuning::get();
    if let Some(lookahead_bytes) = lookahead_bytes {
        tuning::set(tuning::Tuning {
            lookahead_bytes,
            ..old
        });
    }
    old.lookahead_bytes
}

/// Copies of the float32 `(rows, dim)` tables `syn0` and `syn1neg` (same `dim`) and their
/// shapes, for the HogBatch and FastText hooks.
type TablePair = ((Vec<f32>, Vec<usize>), (Vec<f32>, Vec<usize>));

fn hogbatch_tables(syn0: &Bound<'_, PyAny>, syn1neg: &Bound<'_, PyAny>) -> PyResult<TablePair> {
    let (a, b) = (
        Floats::<f32>::read(syn0, "syn0")?,
        Floats::<f32>::read(syn1neg, "syn1neg")?,
    );
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    if sa.len() != 2 || sb.len() != 2 || sa[1] != sb[1] {
        return Err(value_error(
            "syn0 and syn1neg must be (rows, dim) with the same dim",
        ));
    }
    Ok(((a.values().to_vec(), sa), (b.values().to_vec(), sb)))
}

/// One HogBatch skip-gram window (`candle_embed::word2vec::hogbatch::window_on_tables`) on
/// copies of `syn0` and `syn1neg` (`(rows, dim)` float32): `contexts` are syn0 rows, `outputs`
/// syn1neg rows (the true word first). Returns `(syn0, syn1neg, loss)` after the update.
#[pyfunction]
fn w2v_hogbatch_window<'py>(
    py: Python<'py>,
    syn0: &Bound<'py, PyAny>,
    syn1neg: &Bound<'py, PyAny>,
    contexts: Vec<u32>,
    outputs: Vec<u32>,
    alpha: f32,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, f64)> {
    use candle_embed::word2vec::hogbatch::window_on_tables;
    let ((mut x, sa), (mut y, sb)) = hogbatch_tables(syn0, syn1neg)?;
    let loss = window_on_tables(&mut x, &mut y, sa[1], &contexts, &outputs, alpha).py()?;
    Ok((vec_output(py, x, &sa)?, vec_output(py, y, &sb)?, loss))
}

/// One HogBatch CBOW batch (`candle_embed::word2vec::hogbatch_cbow::cbow_on_tables`) on copies
/// of `syn0` and `syn1neg`: target `targets[b]` with the syn0 rows `contexts[b]`, the shared
/// noise words `noise`. Returns `(syn0, syn1neg, loss)` after the update.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn w2v_hogbatch_cbow<'py>(
    py: Python<'py>,
    syn0: &Bound<'py, PyAny>,
    syn1neg: &Bound<'py, PyAny>,
    contexts: Vec<Vec<u32>>,
    targets: Vec<u32>,
    noise: Vec<u32>,
    alpha: f32,
    cbow_mean: bool,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, f64)> {
    use candle_embed::word2vec::hogbatch_cbow::cbow_on_tables;
    let ((mut x, sa), (mut y, sb)) = hogbatch_tables(syn0, syn1neg)?;
    let (batch, how) = (
        (&contexts[..], &targets[..], &noise[..]),
        (alpha, cbow_mean),
    );
    let loss = cbow_on_tables(&mut x, &mut y, sa[1], batch, how).py()?;
    Ok((vec_output(py, x, &sa)?, vec_output(py, y, &sb)?, loss))
}

/// Skip-gram negative sampling over one sentence by the FastText trainer's loop
/// (`candle_embed::fasttext::train::sg_sentence_on_tables`: full windows, no subsampling, every
/// noise word 0) on copies of `input` (`(rows, dim)`, word `w`'s input rows `bags[w]`) and
/// `syn1neg` (`(len(bags), dim)`); `how` is `(window, negative, alpha)`. Returns
/// `(input, syn1neg)` after the updates.
#[pyfunction]
fn ft_sg_sentence<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    bags: Vec<Vec<u32>>,
    syn1neg: &Bound<'py, PyAny>,
    sentence: Vec<u32>,
    how: (usize, usize, f32),
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    use candle_embed::fasttext::{train::sg_sentence_on_tables, WordBags};
    let ((mut x, sa), (mut y, sb)) = hogbatch_tables(input, syn1neg)?;
    let mut bounds = vec![0];
    bounds.extend(bags.iter().scan(0, |end, b| {
        *end += b.len();
        Some(*end)
    }));
    let bags = WordBags {
        ids: bags.concat(),
        bounds,
    };
    sg_sentence_on_tables(&mut x, &mut y, (sa[1], &bags), &sentence, how).py()?;
    Ok((vec_output(py, x, &sa)?, vec_output(py, y, &sb)?))
}

/// Add the `_testing` submodule to `parent` (and to `sys.modules`, so that
/// `import candle_embed._native._testing` works too).
pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = parent.py();
    let m = PyModule::new(py, "candle_embed._native._testing")?;
    m.add_function(wrap_pyfunction!(lookup_portable, &m)?)?;
    m.add_function(wrap_pyfunction!(lookup_transformed_portable, &m)?)?;
    m.add_function(wrap_pyfunction!(transform_grad, &m)?)?;
    m.add_function(wrap_pyfunction!(attend_portable, &m)?)?;
    m.add_function(wrap_pyfunction!(attend_backward_portable, &m)?)?;
    m.add_function(wrap_pyfunction!(bag_forward_portable, &m)?)?;
    m.add_function(wrap_pyfunction!(rope_apply_portable, &m)?)?;
    m.add_function(wrap_pyfunction!(rope_apply_fused, &m)?)?;
    m.add_function(wrap_pyfunction!(rope_autograd, &m)?)?;
    m.add_function(wrap_pyfunction!(sinusoidal_table_portable, &m)?)?;
    m.add_function(wrap_pyfunction!(alibi_bias_portable, &m)?)?;
    m.add_function(wrap_pyfunction!(relative_bias_portable, &m)?)?;
    // The quantized tables' portable paths are the same hooks under their earlier names.
    m.add("quantized_lookup_portable", m.getattr("lookup_portable")?)?;
    m.add("quantized_bag_portable", m.getattr("bag_forward_portable")?)?;
    crate::quantized::register_testing(&m)?;
    m.add_function(wrap_pyfunction!(set_cpu_tuning, &m)?)?;
    m.add_function(wrap_pyfunction!(set_cpu_lookahead, &m)?)?;
    m.add_function(wrap_pyfunction!(w2v_hogbatch_window, &m)?)?;
    m.add_function(wrap_pyfunction!(w2v_hogbatch_cbow, &m)?)?;
    m.add_function(wrap_pyfunction!(ft_sg_sentence, &m)?)?;
    parent.add("_testing", &m)?;
    py.import("sys")?
        .getattr("modules")?
        .set_item("candle_embed._native._testing", &m)
}
