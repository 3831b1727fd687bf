//! `candle_embed.RotaryEmbedding`: translation only; the work is in
//! `candle_embed::positional::rotary`.

use std::sync::Arc;

use candle_embed::positional::rotary::{Positions, RopeLayout, RotaryConfig, RotaryEmbedding};
use pyo3::prelude::*;

use super::rope_scaling::scaling_json;
use crate::args;
use crate::arrays::view::view;
use crate::arrays::{fill, float_dtype, vec_output, with_ids, with_out_float, Floats, IdArray};
use crate::errors::{value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::properties::getters;

/// Rotary position embedding (RoPE) of ``(..., T, head_dim)`` arrays: each pair of the first
/// ``rotary_dim`` dimensions is rotated by ``position * inv_freq``.
///
/// ``head_dim``: even, at most 65536. ``rotary_dim = head_dim * partial_rotary_factor``;
/// ``layout`` "half" (GPT-NeoX, Llama: pairs ``(i, i + rotary_dim/2)``)
/// or "interleaved" (GPT-J: pairs ``(2i, 2i+1)``); ``scaling`` a Hugging Face
/// ``rope_parameters`` dict (``{"rope_type": "linear" | "dynamic" | "yarn" | "longrope" |
/// "llama3" | "proportional", ...}``, every type of transformers 5.x). "proportional" (Gemma 4)
/// rotates the whole head with the last ``1 - partial_rotary_factor`` share of the frequencies
/// zero. Frequencies are computed in float64.
///
/// "dynamic" follows each call's ``max(position) + 1``; ``stateful_dynamic=True`` keeps
/// instead, as transformers' module does, the frequencies of the longest length seen
/// (``max_seq_len_cached``) until a call shorter than ``max_position_embeddings`` resets them.
#[pyclass(frozen, name = "RotaryEmbedding", module = "candle_embed")]
pub struct PyRotaryEmbedding {
    pub inner: Arc<RotaryEmbedding>,
}

fn parse_layout(layout: &str) -> PyResult<RopeLayout> {
    match layout {
        "half" | "neox" | "rotate_half" => Ok(RopeLayout::Half),
        "interleaved" | "gptj" | "rotate_every_two" => Ok(RopeLayout::Interleaved),
        other => Err(value_error(format!(
            "layout must be 'half' or 'interleaved', got '{other}'"
        ))),
    }
}

/// The positions of a call: explicit `(T,)` / `(B, T)` ids (snapshotted; `offset` must stay 0)
/// or `offset..offset+T`; and where explicit ids live (for the `out=` overlap check).
pub fn positions(
    obj: Option<&Bound<'_, PyAny>>,
    offset: i64,
) -> PyResult<(Positions, Option<crate::arrays::Region>)> {
    match IdArray::read_opt(obj, "positions")? {
        Some(ids) => {
            if offset != 0 {
                return Err(value_error(
                    "give either positions or offset, not both (offset must stay 0)",
                ));
            }
            let pos = with_ids!(ids, |v| Positions::from_ids(v, ids.shape()).py())?;
            Ok((pos, Some(ids.region())))
        }
        None => Ok((Positions::offset(offset).py()?, None)),
    }
}

impl PyRotaryEmbedding {
    /// Rotate `x` (float16/32/64, kept) with the fast kernel into a fresh array or `out`.
    fn rotate<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        (pos, offset): (Option<&Bound<'py, PyAny>>, i64),
        out: Option<&Bound<'py, PyAny>>,
        (transpose, what): (bool, &str),
    ) -> PyResult<Bound<'py, PyAny>> {
        let x = view(x, what)?;
        let dtype = float_dtype(&x, what)?;
        let (pos, pos_region) = positions(pos, offset)?;
        let rope = &*self.inner;
        with_out_float!(dtype, T => {
            let x = Floats::<T>::of_view(x, what)?;
            let inputs: Vec<_> = std::iter::once(x.region()).chain(pos_region).collect();
            let (shape, xs) = (x.shape(), x.values());
            let (y, ()) = fill::<T, _, _>(py, out, shape, &inputs, |dst| {
                rope.apply_into(xs, shape, &pos, dst, transpose)
            })?;
            Ok(y)
        })
    }
}

#[pymethods]
impl PyRotaryEmbedding {
    #[new]
    #[pyo3(signature = (head_dim, *, base=10000.0, max_position_embeddings=2048,
        partial_rotary_factor=1.0, layout=args::default_text("half"), scaling=None,
        stateful_dynamic=false),
        text_signature = "(head_dim, *, base=10000.0, max_position_embeddings=2048, \
        partial_rotary_factor=1.0, layout='half', scaling=None, stateful_dynamic=False)")]
    fn new(
        #[pyo3(from_py_with = args::size)] head_dim: usize,
        #[pyo3(from_py_with = args::real)] base: f64,
        #[pyo3(from_py_with = args::size)] max_position_embeddings: usize,
        #[pyo3(from_py_with = args::real)] partial_rotary_factor: f64,
        #[pyo3(from_py_with = args::text)] layout: String,
        scaling: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = args::flag)] stateful_dynamic: bool,
    ) -> PyResult<Self> {
        let cfg = RotaryConfig {
            base,
            max_position_embeddings,
            partial_rotary_factor,
            layout: parse_layout(&layout)?,
            scaling: Default::default(),
            stateful_dynamic,
        }
        .with_rope_parameters(&scaling_json(scaling)?)
        .py()?;
        let inner = RotaryEmbedding::new(head_dim, cfg).py()?;
        Ok(PyRotaryEmbedding {
            inner: Arc::new(inner),
        })
    }

    /// The inverse frequencies at initialisation, float64 ``(rotary_dim // 2,)``.
    #[getter]
    fn inv_freq<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let f = self.inner.inv_freq();
        vec_output(py, f.to_vec(), &[f.len()])
    }

    /// The factor cos and sin are multiplied by (yarn and longrope; 1 otherwise).
    #[getter]
    fn attention_scaling(&self) -> f64 {
        self.inner.attention_scaling()
    }

    /// The inverse frequencies a call with ``max(position) + 1 == seq_len`` would use now (they
    /// depend on it for "dynamic" and "longrope", and for stateful "dynamic" on the longest
    /// length kept), float64 ``(rotary_dim // 2,)``. A query: no state changes.
    fn frequencies<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::size)] seq_len: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = self.inner.frequencies(seq_len).0;
        let n = f.len();
        vec_output(py, f, &[n])
    }

    /// ``(cos, sin)`` of ``positions`` (``(T,)`` or ``(B, T)`` integers), each of shape
    /// ``positions.shape + (rotary_dim // 2,)``, float64, attention scaling applied.
    fn cos_sin<'py>(
        &self,
        py: Python<'py>,
        positions: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let ids = IdArray::read(positions, "positions")?;
        let pos = with_ids!(ids, |v| Positions::from_ids(v, ids.shape()).py())?;
        let mut shape = ids.shape().to_vec();
        let t = *shape.last().unwrap_or(&0);
        let inner = self.inner.clone();
        let (c, s) = without_gil(py, move || inner.cos_sin(&pos, t))?;
        shape.push(self.inner.rotary_dim() / 2);
        Ok((vec_output(py, c, &shape)?, vec_output(py, s, &shape)?))
    }

    /// Rotate ``x`` ``(..., T, head_dim)`` (float16/float32/float64, same dtype out) at
    /// ``positions`` (``(T,)``, or ``(B, T)`` for ``x`` of shape ``(B, ..., T, head_dim)``) or
    /// at ``offset..offset+T``; dimensions past ``rotary_dim`` pass through. ``out``: a
    /// C-contiguous array of ``x``'s shape and dtype to write into (returned).
    #[pyo3(signature = (x, positions=None, *, offset=0, out=None))]
    fn apply<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        positions: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.rotate(py, x, (positions, offset), out, (false, "x"))
    }

    /// The backward of ``apply``: the transposed rotation of ``grad_output`` (same arguments),
    /// i.e. the gradient of ``apply`` with respect to ``x``.
    #[pyo3(signature = (grad_output, positions=None, *, offset=0, out=None))]
    fn apply_backward<'py>(
        &self,
        py: Python<'py>,
        grad_output: &Bound<'py, PyAny>,
        positions: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = args::signed)] offset: i64,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.rotate(
            py,
            grad_output,
            (positions, offset),
            out,
            (true, "grad_output"),
        )
    }

    fn __repr__(&self) -> String {
        let r = &self.inner;
        format!(
            "RotaryEmbedding(head_dim={}, rotary_dim={}, base={}, layout='{}', rope_type='{}')",
            r.head_dim(),
            r.rotary_dim(),
            r.config().base,
            layout_name(r.config().layout),
            r.config().scaling.name()
        )
    }
}

fn layout_name(layout: RopeLayout) -> &'static str {
    match layout {
        RopeLayout::Half => "half",
        RopeLayout::Interleaved => "interleaved",
    }
}

getters!(PyRotaryEmbedding, |s| {
    /// The per-head width ``head_dim``.
    head_dim: usize = s.inner.head_dim();
    /// How many leading dimensions of each head are rotated (``head_dim *
    /// partial_rotary_factor``, even; the whole ``head_dim`` for "proportional").
    rotary_dim: usize = s.inner.rotary_dim();
    /// The frequency base ``θ`` of ``inv_freq_i = θ**(-2i/rotary_dim)``.
    base: f64 = s.inner.config().base;
    /// The context length the model was trained for (scaling rules refer to it).
    max_position_embeddings: usize = s.inner.config().max_position_embeddings;
    /// The fraction of ``head_dim`` that is rotated.
    partial_rotary_factor: f64 = s.inner.config().partial_rotary_factor;
    /// "half" or "interleaved" (which dimensions form a rotated pair).
    layout: &'static str = layout_name(s.inner.config().layout);
    /// The scaling rule: "default", "linear", "dynamic", "yarn", "longrope", "llama3" or
    /// "proportional".
    rope_type: &'static str = s.inner.config().scaling.name();
    /// Whether "dynamic" keeps the frequencies of the longest length seen (transformers'
    /// module) instead of following each call's length.
    stateful_dynamic: bool = s.inner.config().stateful_dynamic;
    /// The length whose "dynamic" frequencies are kept in the stateful mode
    /// (``max_position_embeddings`` until a longer call, and after a reset).
    max_seq_len_cached: usize = s.inner.max_seq_len_cached();
});
