//! The forward and backward of [`TransformerEmbeddings`]: the three rows summed per token, the
//! crate's LayerNorm ([`crate::norm::layer_norm`]), dropout, and the backward's row gradients
//! coalesced per table by the grouping primitive ([`crate::sparse::coalesce`]).

use std::sync::atomic::Ordering;

use candle_core::{DType, Device, Tensor};

use std::sync::Arc;

use super::{ForwardState, PositionKind, TransformerEmbeddings, TransformerEmbeddingsGrads};
use crate::alloc::{checked_elems, try_alloc_uninit};
use crate::dtype::Float;
use crate::ids::Id;
use crate::norm::layer_norm::{LayerNorm, Saved};
use crate::rng::{self, Rng};
use crate::sparse::coalesce::{coalesce_to_grad, CoalesceOptions};
use crate::{storage, with_float, Embedding, Error, Result};

/// The dropout keep-mask of one token, element by element: `1/(1-p)` kept, 0 dropped (all zero
/// at p = 1); a pure function of `(seed, token)`, so the backward regenerates the forward's.
struct Mask {
    rng: Rng,
    p: f64,
    keep: f64,
}

impl Mask {
    fn new(seed: u64, token: usize, p: f64) -> Self {
        Mask {
            rng: Rng::new(seed, token as u64),
            p,
            keep: if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 },
        }
    }
    #[inline]
    fn next(&mut self) -> f64 {
        if self.rng.uniform() >= self.p {
            self.keep
        } else {
            0.0
        }
    }
}

impl TransformerEmbeddings {
    /// The LayerNorm's parameters as f64.
    fn layer_norm(&self) -> Result<LayerNorm> {
        Ok(LayerNorm {
            gamma: self.layer_norm_weight().to_dtype(DType::F64)?.to_vec1()?,
            beta: self.layer_norm_bias().to_dtype(DType::F64)?.to_vec1()?,
            eps: self.config.layer_norm_eps,
        })
    }

    /// Forward on CPU tables: returns `(..., T, D)` elements of the tables' dtype `T` and
    /// records its state as the last forward's (for [`backward`](Self::backward)).
    /// `position_ids` may be of ids' shape or `(T,)`. Nothing is recorded and no state changes
    /// when an input is rejected.
    pub fn forward<I: Id, T: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        token_type_ids: Option<&[I]>,
        position_ids: Option<&[I]>,
    ) -> Result<Vec<T>> {
        Ok(self
            .forward_with_state(ids, shape, token_type_ids, position_ids)?
            .0)
    }

    /// [`Self::forward`], also returning the call's [`ForwardState`] for
    /// [`Self::backward_with_state`] (it is recorded as the last forward's too).
    pub fn forward_with_state<I: Id, T: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        token_type_ids: Option<&[I]>,
        position_ids: Option<&[I]>,
    ) -> Result<(Vec<T>, Arc<ForwardState>)> {
        if self.dtype() != T::DT || !self.token.device().is_cpu() {
            return Err(Error::dtype(format!(
                "forward needs CPU {:?} tables",
                T::DT
            )));
        }
        let (tok, pids, tts) = self.resolve_ids(ids, shape, token_type_ids, position_ids)?;
        let n = tok.len();
        let d = self.dim;
        let p = self.config.dropout;
        let mask_seed = (self.training() && p > 0.0).then(|| {
            let mut s = self
                .seed
                .wrapping_add(self.calls.fetch_add(1, Ordering::Relaxed));
            rng::splitmix64(&mut s)
        });
        let ln = self.layer_norm()?;
        let mut out = try_alloc_uninit::<T>(checked_elems(&[n, d], std::mem::size_of::<T>())?)?;
        let (wt, wp, ws) = (
            self.token.weight(),
            self.position.weight(),
            self.segment.weight(),
        );
        let saved = storage::read::<T, Result<Saved>>(&wt, |tt_tab| {
            storage::read::<T, Result<Saved>>(&wp, |pt_tab| {
                storage::read::<T, Result<Saved>>(&ws, |st_tab| {
                    // e = tok[ids[n]] + pos[position_ids[n]] + seg[token_type_ids[n]]
                    let input = |r: usize, e: &mut [f64]| {
                        let (a, b, s) = (tok[r] * d, pids[r] * d, tts[r] * d);
                        for (j, e) in e.iter_mut().enumerate() {
                            *e = tt_tab[a + j].as_f64()
                                + pt_tab[b + j].as_f64()
                                + st_tab[s + j].as_f64();
                        }
                    };
                    let output = |r: usize, y: &[f64], o: &mut [T]| match mask_seed {
                        Some(seed) => {
                            let mut mask = Mask::new(seed, r, p);
                            for (o, &y) in o.iter_mut().zip(y) {
                                *o = T::of_f64(y * mask.next());
                            }
                        }
                        None => {
                            for (o, &y) in o.iter_mut().zip(y) {
                                *o = T::of_f64(y);
                            }
                        }
                    };
                    ln.forward(n, &mut out, input, output)
                })?
            })?
        })??;
        let state = Arc::new(ForwardState {
            owner: self.id,
            shape: shape.to_vec(),
            ids: tok,
            pids,
            tts,
            saved,
            mask_seed,
        });
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(state.clone());
        Ok((out, state))
    }

    /// Forward for a tensor of ids (u8/u32/i64 or other candle integer dtypes), on CPU.
    pub fn forward_tensor(&self, ids: &Tensor) -> Result<Tensor> {
        let shape = ids.dims().to_vec();
        let flat: Vec<i64> = ids.flatten_all()?.to_dtype(DType::I64)?.to_vec1()?;
        let mut out_shape = shape.clone();
        out_shape.push(self.dim);
        with_float!(self.dtype(), T => {
            let v = self.forward::<i64, T>(&flat, &shape, None, None)?;
            Ok(Tensor::from_vec(v, out_shape, &Device::Cpu)?)
        })
    }

    /// Backward of the **last** forward call (from any thread): `grad` of that call's output
    /// shape `(..., T, D)`. Its state stays (a second backward with another `grad` is
    /// allowed); a new forward replaces it. Without a prior forward this is an
    /// `InvalidArgument` error. Threads sharing the module use [`Self::backward_with_state`].
    pub fn backward<T: Float>(
        &self,
        grad: &[T],
        shape: &[usize],
    ) -> Result<TransformerEmbeddingsGrads> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let state = last.ok_or_else(|| Error::invalid("backward needs a forward call first"))?;
        self.backward_with_state(&state, grad, shape)
    }

    /// Backward of the forward call that returned `state` (a state of another module is an
    /// `InvalidArgument` error): `grad` of that call's output shape `(..., T, D)`. The
    /// LayerNorm weight in effect now is used, as [`Self::backward`] does.
    pub fn backward_with_state<T: Float>(
        &self,
        state: &ForwardState,
        grad: &[T],
        shape: &[usize],
    ) -> Result<TransformerEmbeddingsGrads> {
        if state.owner != self.id {
            return Err(Error::invalid(
                "state comes from another TransformerEmbeddings: pass the state its own forward \
                 returned",
            ));
        }
        let c = state;
        let d = self.dim;
        let mut want = c.shape.clone();
        want.push(d);
        if shape != want.as_slice() || grad.len() != c.ids.len() * d {
            return Err(Error::shape(format!(
                "grad has shape {shape:?}, the last forward's output has shape {want:?}"
            )));
        }
        let p = self.config.dropout;
        // g = grad · dropout mask (the forward's, regenerated from its seed).
        let upstream = |r: usize, g: &mut [f64]| {
            let src = &grad[r * d..(r + 1) * d];
            match c.mask_seed {
                Some(seed) => {
                    let mut mask = Mask::new(seed, r, p);
                    for (g, &v) in g.iter_mut().zip(src) {
                        *g = v.as_f64() * mask.next();
                    }
                }
                None => {
                    for (g, &v) in g.iter_mut().zip(src) {
                        *g = v.as_f64();
                    }
                }
            }
        };
        let grads = self.layer_norm()?.backward(&c.saved, upstream)?;
        let de = &grads.de;
        let dev = self.token.device();
        let dt = self.dtype();
        // de scattered to each table's rows, coalesced; the token padding row gets none.
        let scatter = |ids: &[usize], table: &Embedding, skip: Option<usize>| {
            let opts = CoalesceOptions {
                skip,
                scale_by_count: false,
            };
            coalesce_to_grad(ids, de, d, table.num_embeddings(), opts)?.to(dt, &dev)
        };
        let token = scatter(&c.ids, &self.token, self.token.padding_idx())?;
        let position = match self.config.position {
            PositionKind::Learned => Some(scatter(
                &c.pids,
                &self.position,
                self.position.padding_idx(),
            )?),
            PositionKind::Sinusoidal => None,
        };
        let segment = scatter(&c.tts, &self.segment, None)?;
        Ok(TransformerEmbeddingsGrads {
            token,
            position,
            segment,
            layer_norm_weight: Tensor::from_vec(grads.dgamma, d, &dev)?.to_dtype(dt)?,
            layer_norm_bias: Tensor::from_vec(grads.dbeta, d, &dev)?.to_dtype(dt)?,
        })
    }
}
