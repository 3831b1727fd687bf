//! `Embedding`: a `(num_embeddings, embedding_dim)` table looked up by integer ids.
//!
//! Math: `y[..., :] = W[ids[...], :]`, so `ids` of shape `S` give `y` of shape `S + (D,)`.
//! PyTorch's `nn.Embedding` semantics: `padding_idx` (row zeroed at init, no gradient),
//! `max_norm` (looked-up rows renormalised in place before the lookup), `scale_grad_by_freq`.
//!
//! Two paths: [`Embedding::lookup_into`] is the CPU fast path (parallel row copies straight into
//! the caller's buffer); [`Embedding::lookup_portable`] is candle's `index_select` and runs on any
//! device. Both validate every id first, so an out-of-range id is an error on every backend.

use std::sync::RwLock;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::alloc::{check_table_size, checked_elems, try_alloc, try_alloc_uninit, try_collect};
use crate::dtype::{check_float, Float};
use crate::ids::index_tensor;
use crate::ids::{self, Id};
use crate::kernels::cpu::gather;
use crate::norm::{check_norm_type, renorm_rows};
use crate::sparse::coalesce::unique_ids;
use crate::{hugepages, rng, storage, with_float, Error, Result};

mod backward;
mod train;

pub use train::TrainLookup;

/// Options of an [`Embedding`] (PyTorch's constructor arguments).
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingConfig {
    /// Row that is zeroed at init and receives no gradient; negative counts from the end.
    pub padding_idx: Option<i64>,
    /// Renormalise each looked-up row whose `norm_type`-norm exceeds this, in place.
    pub max_norm: Option<f64>,
    /// The p of the p-norm used by `max_norm` (2.0 by default; `f64::INFINITY` allowed).
    pub norm_type: f64,
    /// Divide each gradient row by the number of times its id occurs in the batch.
    pub scale_grad_by_freq: bool,
    /// A frozen table refuses optimizer updates (PyTorch's `from_pretrained(freeze=True)`).
    pub freeze: bool,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        EmbeddingConfig {
            padding_idx: None,
            max_norm: None,
            norm_type: 2.0,
            scale_grad_by_freq: false,
            freeze: false,
        }
    }
}

/// Resolve a possibly negative `padding_idx` against `num_embeddings` (PyTorch's rule).
pub fn resolve_padding_idx(
    padding_idx: Option<i64>,
    num_embeddings: usize,
) -> Result<Option<usize>> {
    match padding_idx {
        None => Ok(None),
        Some(p) => {
            let n = num_embeddings as i64;
            let r = if p < 0 { p + n } else { p };
            if r < 0 || r >= n {
                Err(Error::IndexOutOfRange {
                    what: "padding_idx",
                    index: p as i128,
                    container: "a table",
                    size: num_embeddings,
                })
            } else {
                Ok(Some(r as usize))
            }
        }
    }
}

/// An embedding table. Cheap to share across threads: every method takes `&self`.
#[derive(Debug)]
pub struct Embedding {
    weight: RwLock<Tensor>,
    num_embeddings: usize,
    embedding_dim: usize,
    padding_idx: Option<usize>,
    config: EmbeddingConfig,
}

impl Clone for Embedding {
    /// A deep copy: the clone's table is independent of this one.
    fn clone(&self) -> Self {
        let w = self.weight();
        let copy = w.copy().expect("copying a table");
        Embedding {
            weight: RwLock::new(copy),
            num_embeddings: self.num_embeddings,
            embedding_dim: self.embedding_dim,
            padding_idx: self.padding_idx,
            config: self.config.clone(),
        }
    }
}

impl Embedding {
    /// A table initialised from N(0, 1) (seeded: same seed, same table), padding row zeroed.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        config: EmbeddingConfig,
        dtype: DType,
        device: &Device,
        seed: Option<u64>,
    ) -> Result<Self> {
        check_float(dtype)?;
        let n = check_table_size(num_embeddings, embedding_dim, dtype)?;
        let padding_idx = resolve_padding_idx(config.padding_idx, num_embeddings)?;
        let seed = seed.unwrap_or_else(rng::entropy_seed);
        let mut values = try_alloc::<f64>(n)?;
        rng::fill_normal(&mut values, seed, 0.0, 1.0);
        if let Some(p) = padding_idx {
            values[p * embedding_dim..(p + 1) * embedding_dim].fill(0.0);
        }
        let weight = Tensor::from_vec(values, (num_embeddings, embedding_dim), &Device::Cpu)?
            .to_dtype(dtype)?;
        let weight = hugepages::into_table(weight)?.to_device(device)?;
        Self::build(weight, config)
    }

    /// Wrap an existing `(V, D)` table (PyTorch's `from_pretrained`: the padding row is kept).
    ///
    /// Placement is the core's policy ([`hugepages::into_table`]): a CPU table of at least
    /// [`hugepages::MIN_BYTES`] is moved once into memory advised for huge pages (a copy: the
    /// embedding no longer shares the caller's storage); a smaller or non-CPU table is used as
    /// it is (made contiguous), sharing its storage as PyTorch shares the given tensor.
    pub fn from_pretrained(weight: Tensor, config: EmbeddingConfig) -> Result<Self> {
        Self::check_weight(&weight)?;
        Self::build(hugepages::into_table(weight)?, config)
    }

    /// A weight must be a 2-D float tensor.
    fn check_weight(weight: &Tensor) -> Result<()> {
        if weight.rank() != 2 {
            return Err(Error::shape(format!(
                "weight must be 2-D (num_embeddings, embedding_dim), got shape {:?}",
                weight.dims()
            )));
        }
        check_float(weight.dtype())
    }

    /// Like `candle_nn::embedding`: the table `weight` of shape `(V, D)` from a `VarBuilder`,
    /// initialised N(0, 1) when the builder creates it. The builder's tensor is shared whatever
    /// its size (no huge-page move), so candle optimizers on its `VarMap` update this table.
    pub fn from_var_builder(
        vb: VarBuilder,
        num_embeddings: usize,
        embedding_dim: usize,
        config: EmbeddingConfig,
    ) -> Result<Self> {
        let weight = vb.get_with_hints(
            (num_embeddings, embedding_dim),
            "weight",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        Self::check_weight(&weight)?;
        Self::build(weight.contiguous()?, config)
    }

    fn build(weight: Tensor, config: EmbeddingConfig) -> Result<Self> {
        let (num_embeddings, embedding_dim) = weight.dims2()?;
        let padding_idx = resolve_padding_idx(config.padding_idx, num_embeddings)?;
        check_norm_type(config.norm_type)?;
        if let Some(m) = config.max_norm {
            if m.is_nan() || m < 0.0 {
                return Err(Error::invalid(format!("max_norm must be >= 0, got {m}")));
            }
        }
        Ok(Embedding {
            weight: RwLock::new(weight),
            num_embeddings,
            embedding_dim,
            padding_idx,
            config,
        })
    }

    /// The table (shares storage with this embedding: in-place updates show through).
    pub fn weight(&self) -> Tensor {
        self.weight
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replace the table's values (same shape; converted to the table's dtype and device).
    pub fn set_weight(&self, new: &Tensor) -> Result<()> {
        if new.dims() != [self.num_embeddings, self.embedding_dim] {
            return Err(Error::shape(format!(
                "weight must have shape ({}, {}), got {:?}",
                self.num_embeddings,
                self.embedding_dim,
                new.dims()
            )));
        }
        check_float(new.dtype())?;
        let old = self.weight();
        let fresh = hugepages::table_copy(&new.to_dtype(old.dtype())?.to_device(old.device())?)?;
        *self.weight.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Rows of the table (`V`).
    pub fn num_embeddings(&self) -> usize {
        self.num_embeddings
    }
    /// Columns of the table (`D`).
    pub fn embedding_dim(&self) -> usize {
        self.embedding_dim
    }
    /// The padding row, normalised to `0..num_embeddings`.
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx
    }
    /// The options the table was built with.
    pub fn config(&self) -> &EmbeddingConfig {
        &self.config
    }
    /// The table's element type.
    pub fn dtype(&self) -> DType {
        self.weight().dtype()
    }
    /// The device the table lives on.
    pub fn device(&self) -> Device {
        self.weight().device().clone()
    }
    /// Whether optimizers refuse to update this table (`freeze`).
    pub fn is_frozen(&self) -> bool {
        self.config.freeze
    }

    /// Validate ids against the table (the error names the first bad id and the table size).
    pub fn validate_ids<I: Id>(&self, ids: &[I]) -> Result<()> {
        ids::validate(ids, self.num_embeddings, "index", "an embedding table")
    }

    /// Check that an array of `len` elements holds one row of `D` per id (`n_ids` ids); the
    /// product is checked, never wrapped.
    pub fn check_rows(&self, n_ids: usize, len: usize, what: &str) -> Result<()> {
        let dim = self.embedding_dim;
        if Some(len) != n_ids.checked_mul(dim) {
            return Err(Error::shape(format!(
                "{what} has {len} elements, expected {} ({n_ids} ids x {dim})",
                n_ids.saturating_mul(dim)
            )));
        }
        Ok(())
    }

    /// Apply `max_norm` to the rows `ids` would look up (no-op without `max_norm`).
    /// Ids must already be validated.
    pub fn apply_max_norm<I: Id>(&self, ids: &[I]) -> Result<()> {
        let Some(max_norm) = self.config.max_norm else {
            return Ok(());
        };
        let w = self.weight();
        let rows = unique_ids(ids, self.num_embeddings)?;
        let (dim, p) = (self.embedding_dim, self.config.norm_type);
        if w.device().is_cpu() {
            with_float!(w.dtype(), T => storage::write::<T, ()>(&w, |t| {
                renorm_rows(t, dim, &rows, max_norm, p);
                Ok(())
            }))
        } else {
            self.renorm_portable(&w, &rows, max_norm)
        }
    }

    /// `max_norm` with candle ops (non-CPU devices): `W[rows] += (scale - 1) * W[rows]`.
    fn renorm_portable(&self, w: &Tensor, rows: &[usize], max_norm: f64) -> Result<()> {
        let idx = index_tensor(rows, self.num_embeddings, w.device())?;
        let sel = w.index_select(&idx, 0)?.to_dtype(DType::F64)?;
        let p = self.config.norm_type;
        let norms = if p == f64::INFINITY {
            sel.abs()?.max_keepdim(1)?
        } else {
            sel.abs()?.powf(p)?.sum_keepdim(1)?.powf(1.0 / p)?
        };
        let over = norms.gt(max_norm)?.to_dtype(DType::F64)?;
        let scale = ((norms + 1e-7)?.recip()? * max_norm)?;
        let factor = ((over * (scale - 1.0)?)? + 1.0)?;
        let delta = sel.broadcast_mul(&(factor - 1.0)?)?.to_dtype(w.dtype())?;
        let updated = w.index_add(&idx, &delta, 0)?;
        *self.weight.write().unwrap_or_else(|e| e.into_inner()) = updated;
        Ok(())
    }

    /// CPU fast path: validate, apply `max_norm`, then copy the rows into `out`
    /// (`ids.len() * embedding_dim` elements of `D`: the table's dtype, or f32 for a bf16/f16 table).
    pub fn lookup_into<I: Id, D: Float>(&self, ids: &[I], out: &mut [D]) -> Result<()> {
        let dim = self.embedding_dim;
        self.check_rows(ids.len(), out.len(), "out")?;
        self.validate_ids(ids)?;
        self.apply_max_norm(ids)?;
        let w = self.weight();
        if !w.device().is_cpu() {
            let rows = self.lookup_portable(ids, &[ids.len()])?;
            return storage::copy_into(&rows, out);
        }
        with_float!(w.dtype(), S => storage::read::<S, ()>(&w, |t| {
            if S::DT == D::DT {
                // SAFETY-free reinterpretation: S and D are the same type here.
                let t: &[D] = unsafe { std::slice::from_raw_parts(t.as_ptr() as *const D, t.len()) };
                gather::gather_rows(t, dim, ids, out)
            } else {
                gather::gather_rows_map(t, dim, ids, out, |s: S| D::of_f64(s.as_f64()))
            }
        }))
    }

    /// CPU fast path returning a new `(ids.len(), D)` vector of the table's dtype.
    pub fn lookup_vec<I: Id, T: Float>(&self, ids: &[I]) -> Result<Vec<T>> {
        let n = checked_elems(&[ids.len(), self.embedding_dim], std::mem::size_of::<T>())?;
        let mut out = try_alloc_uninit::<T>(n)?;
        self.lookup_into(ids, &mut out)?;
        Ok(out)
    }

    /// Portable path: validation, `max_norm`, then candle's `index_select` on the table's device.
    /// Returns a tensor of shape `shape + (D,)`.
    pub fn lookup_portable<I: Id>(&self, ids: &[I], shape: &[usize]) -> Result<Tensor> {
        if shape.iter().product::<usize>() != ids.len() {
            return Err(Error::shape(format!(
                "{} ids do not fill shape {shape:?}",
                ids.len()
            )));
        }
        self.validate_ids(ids)?;
        self.apply_max_norm(ids)?;
        let w = self.weight();
        let idx = index_tensor(ids, self.num_embeddings, w.device())?;
        let mut out_shape = shape.to_vec();
        out_shape.push(self.embedding_dim);
        Ok(w.index_select(&idx, 0)?.reshape(out_shape)?)
    }

    /// Look up a tensor of ids (u8, u32 or i64, any shape) on any device; the result has shape
    /// `ids.shape + (D,)`. On CPU this takes the fast path.
    pub fn lookup_tensor(&self, ids: &Tensor) -> Result<Tensor> {
        let shape = ids.dims().to_vec();
        let flat = ids.flatten_all()?;
        let ids_vec: Vec<i64> = match flat.dtype() {
            DType::U8 => try_collect(flat.to_vec1::<u8>()?.into_iter().map(i64::from))?,
            DType::U32 => try_collect(flat.to_vec1::<u32>()?.into_iter().map(i64::from))?,
            DType::I16 => try_collect(flat.to_vec1::<i16>()?.into_iter().map(i64::from))?,
            DType::I32 => try_collect(flat.to_vec1::<i32>()?.into_iter().map(i64::from))?,
            DType::I64 => flat.to_vec1::<i64>()?,
            other => return Err(Error::dtype(format!("ids must be integers, got {other:?}"))),
        };
        let w = self.weight();
        if !w.device().is_cpu() {
            return self.lookup_portable(&ids_vec, &shape);
        }
        let mut out_shape = shape;
        out_shape.push(self.embedding_dim);
        with_float!(w.dtype(), T => {
            let v = self.lookup_vec::<i64, T>(&ids_vec)?;
            Ok(Tensor::from_vec(v, out_shape, &Device::Cpu)?)
        })
    }
}

impl Module for Embedding {
    /// `ids` (any shape, integer dtype) -> `ids.shape + (D,)`.
    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        self.lookup_tensor(ids).map_err(candle_core::Error::wrap)
    }
}
