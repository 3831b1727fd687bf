//! `EmbeddingBag`: pooled lookups, `y[b, :] = reduce_{k in bag b} w_k * W[ids[k], :]`.
//!
//! PyTorch's `nn.EmbeddingBag` semantics (reference/semantics.md §1.2):
//! - `mode`: sum, mean (sum / number of non-padding ids) or max (column-wise); an empty bag
//!   (or one of only padding) gives zeros in every mode.
//! - bags: 2-D ids `(B, N)` are B bags of N (offsets must be absent); 1-D ids `(N,)` need 1-D
//!   `offsets` (any integer dtype) with `offsets[0] == 0`, non-decreasing, each `<= N`: B bags,
//!   bag `b` = `offsets[b]..offsets[b + 1]` (the last runs to N). With `include_last_offset`
//!   offsets has `B + 1` entries and the last must equal N (CSR).
//! - `per_sample_weights` (same shape as ids): weights `w_k` of a weighted sum, "sum" only.
//! - `padding_idx`: excluded from the reduction and from the mean's divisor; zero at init.
//! - `max_norm`: the looked-up rows are renormalised in place first (as `Embedding`).
//!
//! Backward: `d W[i] = sum_{k: ids[k] = i} s_k * g[bag(k)]` with `s_k = w_k` (sum), `1/count`
//! (mean); for max each column's gradient goes to that column's argmax (first occurrence),
//! recomputed from the current table. Returned coalesced ([`SparseGrad`]). Padding rows get none.
//!
//! Two paths: [`EmbeddingBag::forward_into`] (CPU kernel `kernels::cpu::bag`) and
//! [`EmbeddingBag::forward_portable`] (candle `index_select` + `index_add`, any device).

use candle_core::{DType, Device, Tensor};

use crate::dtype::Float;
use crate::ids::Id;
use crate::kernels::cpu::bag::{bag_argmax, bag_reduce, BagArgs, Reduce};
use crate::{storage, with_float, Embedding, EmbeddingConfig, Error, Result, SparseGrad};

/// How each bag is reduced.
pub type BagMode = Reduce;

/// Parse "sum" / "mean" / "max".
pub fn parse_mode(s: &str) -> Result<BagMode> {
    match s {
        "sum" => Ok(Reduce::Sum),
        "mean" => Ok(Reduce::Mean),
        "max" => Ok(Reduce::Max),
        other => Err(Error::invalid(format!(
            "mode must be 'sum', 'mean' or 'max', got '{other}'"
        ))),
    }
}

/// The name of a mode.
pub fn mode_name(m: BagMode) -> &'static str {
    match m {
        Reduce::Sum => "sum",
        Reduce::Mean => "mean",
        Reduce::Max => "max",
    }
}

/// Options of an [`EmbeddingBag`].
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingBagConfig {
    pub mode: BagMode,
    pub padding_idx: Option<i64>,
    pub max_norm: Option<f64>,
    pub norm_type: f64,
    pub include_last_offset: bool,
    pub freeze: bool,
}

impl Default for EmbeddingBagConfig {
    fn default() -> Self {
        EmbeddingBagConfig {
            mode: Reduce::Mean,
            padding_idx: None,
            max_norm: None,
            norm_type: 2.0,
            include_last_offset: false,
            freeze: false,
        }
    }
}

impl EmbeddingBagConfig {
    fn table_config(&self) -> EmbeddingConfig {
        EmbeddingConfig {
            padding_idx: self.padding_idx,
            max_norm: self.max_norm,
            norm_type: self.norm_type,
            scale_grad_by_freq: false,
            freeze: self.freeze,
        }
    }
}

/// The bags of one call: ids (flat) and validated CSR bounds.
pub struct Bags<'a, I> {
    pub ids: &'a [I],
    pub bounds: Vec<usize>,
}

impl<I> Bags<'_, I> {
    pub fn num_bags(&self) -> usize {
        self.bounds.len() - 1
    }
}

/// A table of bags. Holds an [`Embedding`] (table, padding, `max_norm`) plus the bag options.
#[derive(Debug, Clone)]
pub struct EmbeddingBag {
    table: Embedding,
    mode: BagMode,
    include_last_offset: bool,
}

impl EmbeddingBag {
    /// A table initialised N(0, 1) (seeded), padding row zeroed.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        config: EmbeddingBagConfig,
        dtype: DType,
        device: &Device,
        seed: Option<u64>,
    ) -> Result<Self> {
        let table = Embedding::new(
            num_embeddings,
            embedding_dim,
            config.table_config(),
            dtype,
            device,
            seed,
        )?;
        Ok(Self::wrap(table, &config))
    }

    /// Wrap an existing `(V, D)` table (storage shared; the padding row is kept as given).
    pub fn from_pretrained(weight: Tensor, config: EmbeddingBagConfig) -> Result<Self> {
        let table = Embedding::from_pretrained(weight, config.table_config())?;
        Ok(Self::wrap(table, &config))
    }

    fn wrap(table: Embedding, config: &EmbeddingBagConfig) -> Self {
        EmbeddingBag {
            table,
            mode: config.mode,
            include_last_offset: config.include_last_offset,
        }
    }

    /// The underlying table.
    pub fn embedding(&self) -> &Embedding {
        &self.table
    }
    pub fn weight(&self) -> Tensor {
        self.table.weight()
    }
    pub fn set_weight(&self, new: &Tensor) -> Result<()> {
        self.table.set_weight(new)
    }
    pub fn mode(&self) -> BagMode {
        self.mode
    }
    pub fn include_last_offset(&self) -> bool {
        self.include_last_offset
    }
    pub fn num_embeddings(&self) -> usize {
        self.table.num_embeddings()
    }
    pub fn embedding_dim(&self) -> usize {
        self.table.embedding_dim()
    }
    pub fn padding_idx(&self) -> Option<usize> {
        self.table.padding_idx()
    }

    /// Number of bags for ids of `shape` and `offsets_len` offsets (checks ranks and presence).
    pub fn num_bags(&self, shape: &[usize], offsets_len: Option<usize>) -> Result<usize> {
        match (shape.len(), offsets_len) {
            (2, None) => Ok(shape[0]),
            (2, Some(_)) => Err(Error::invalid(
                "offsets must be None when ids is 2-D (each row is a bag)",
            )),
            (1, None) => Err(Error::invalid("offsets are required when ids is 1-D")),
            (1, Some(n)) if self.include_last_offset => {
                if n == 0 {
                    Err(Error::invalid(
                        "with include_last_offset, offsets needs at least one entry",
                    ))
                } else {
                    Ok(n - 1)
                }
            }
            (1, Some(n)) => Ok(n),
            (r, _) => Err(Error::shape(format!("ids must be 1-D or 2-D, got {r}-D"))),
        }
    }

    /// Check shapes, offsets and ids (in that order) and build the CSR bounds.
    /// Nothing is modified; every error comes before any kernel runs.
    pub fn bags<'a, I: Id, O: Id>(
        &self,
        ids: &'a [I],
        shape: &[usize],
        offsets: Option<&[O]>,
    ) -> Result<Bags<'a, I>> {
        let num_bags = self.num_bags(shape, offsets.map(<[O]>::len))?;
        let n = ids.len();
        if shape.iter().product::<usize>() != n {
            return Err(Error::shape(format!("{n} ids do not fill shape {shape:?}")));
        }
        let bounds: Vec<usize> = match offsets {
            None => {
                let per = shape[1];
                (0..=num_bags).map(|b| b * per).collect()
            }
            Some(off) => {
                let mut bounds = Vec::with_capacity(num_bags + 1);
                let mut prev = 0i128;
                for (k, &o) in off.iter().enumerate() {
                    let v = o.wide();
                    if k == 0 && v != 0 {
                        return Err(Error::invalid(format!("offsets[0] must be 0, got {v}")));
                    }
                    if v < prev {
                        return Err(Error::invalid(format!(
                            "offsets must be non-decreasing: offsets[{k}] = {v} < offsets[{}] = {prev}",
                            k - 1
                        )));
                    }
                    if v > n as i128 {
                        return Err(Error::invalid(format!(
                            "offsets[{k}] = {v} points past the {n} ids"
                        )));
                    }
                    bounds.push(v as usize);
                    prev = v;
                }
                if self.include_last_offset {
                    if prev != n as i128 {
                        return Err(Error::invalid(format!(
                            "with include_last_offset the last offset must equal the number of ids ({n}), got {prev}"
                        )));
                    }
                } else {
                    if off.is_empty() && n > 0 {
                        return Err(Error::invalid(format!(
                            "offsets is empty (no bags) but there are {n} ids"
                        )));
                    }
                    bounds.push(n);
                }
                bounds
            }
        };
        self.table.validate_ids(ids)?;
        Ok(Bags { ids, bounds })
    }

    fn check_weights<I, W>(&self, bags: &Bags<'_, I>, weights: Option<&[W]>) -> Result<()> {
        if let Some(w) = weights {
            if self.mode != Reduce::Sum {
                return Err(Error::invalid(format!(
                    "per_sample_weights is only supported for mode='sum', got mode='{}'",
                    mode_name(self.mode)
                )));
            }
            if w.len() != bags.ids.len() {
                return Err(Error::shape(format!(
                    "per_sample_weights has {} elements, expected one per id ({})",
                    w.len(),
                    bags.ids.len()
                )));
            }
        }
        Ok(())
    }

    /// CPU fast path: validate, apply `max_norm`, then reduce every bag into `out`
    /// (`B * D` elements of `D`: the table's dtype, or f32 for a bf16/f16 table).
    /// On other devices the portable path runs and its result is copied into `out`.
    pub fn forward_into<I: Id, O: Id, D: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        per_sample_weights: Option<&[D]>,
        out: &mut [D],
    ) -> Result<()> {
        let bags = self.bags(ids, shape, offsets)?;
        self.check_weights(&bags, per_sample_weights)?;
        let dim = self.embedding_dim();
        if out.len() != bags.num_bags() * dim {
            return Err(Error::shape(format!(
                "out has {} elements, expected {} ({} bags x {dim})",
                out.len(),
                bags.num_bags() * dim,
                bags.num_bags()
            )));
        }
        self.table.apply_max_norm(ids)?;
        let w = self.weight();
        if !w.device().is_cpu() {
            let t = self.reduce_portable(&bags, per_sample_weights)?;
            let v = t.to_dtype(D::DT)?.flatten_all()?.to_vec1::<D>()?;
            out.copy_from_slice(&v);
            return Ok(());
        }
        let (padding, mode) = (self.padding_idx(), self.mode);
        with_float!(w.dtype(), S => storage::read::<S, ()>(&w, |table| {
            let args = BagArgs {
                table,
                dim,
                ids,
                bounds: &bags.bounds,
                weights: per_sample_weights,
                padding,
                mode,
            };
            bag_reduce(&args, out);
        }))
    }

    /// Fast path into a new `(B * D)` vector.
    pub fn forward_vec<I: Id, O: Id, D: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        per_sample_weights: Option<&[D]>,
    ) -> Result<Vec<D>> {
        let b = self.num_bags(shape, offsets.map(<[O]>::len))?;
        let mut out = crate::embedding::try_alloc_uninit::<D>(b * self.embedding_dim())?;
        self.forward_into(ids, shape, offsets, per_sample_weights, &mut out)?;
        Ok(out)
    }

    /// Portable path (any device): validation, `max_norm`, then `index_select` of the
    /// non-padding rows, a weighted `index_add` into the bags (sum / mean) or a per-bag `max`.
    /// Accumulates in f32 (f64 for f64 tables); returns `(B, D)` in the table's dtype.
    pub fn forward_portable<I: Id, O: Id, W: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        per_sample_weights: Option<&[W]>,
    ) -> Result<Tensor> {
        let bags = self.bags(ids, shape, offsets)?;
        self.check_weights(&bags, per_sample_weights)?;
        self.table.apply_max_norm(ids)?;
        self.reduce_portable(&bags, per_sample_weights)
    }

    fn reduce_portable<I: Id, W: Float>(
        &self,
        bags: &Bags<'_, I>,
        weights: Option<&[W]>,
    ) -> Result<Tensor> {
        let w = self.weight();
        let dev = w.device();
        let acc_dt = if w.dtype() == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let (dim, nb) = (self.embedding_dim(), bags.num_bags());
        // Positions that take part (non-padding), the bag of each, and per-position scales.
        let mut rows = Vec::new();
        let mut bag_of = Vec::new();
        let mut scale = Vec::new();
        let mut count = vec![0usize; nb];
        for (b, c) in count.iter_mut().enumerate() {
            let lo = bags.bounds[b];
            for (pos, id) in (lo..).zip(&bags.ids[lo..bags.bounds[b + 1]]) {
                let id = id.index();
                if Some(id) == self.padding_idx() {
                    continue;
                }
                rows.push(id as i64);
                bag_of.push(b as u32);
                scale.push(weights.map_or(1.0, |ws| ws[pos].as_f64()));
                *c += 1;
            }
        }
        let zeros = Tensor::zeros((nb, dim), acc_dt, dev)?;
        if rows.is_empty() {
            return Ok(zeros.to_dtype(w.dtype())?);
        }
        let m = rows.len();
        let idx = Tensor::from_vec(rows, m, dev)?;
        let gathered = w.index_select(&idx, 0)?.to_dtype(acc_dt)?;
        let out = match self.mode {
            Reduce::Sum | Reduce::Mean => {
                let src = if weights.is_some() {
                    let s = Tensor::from_vec(scale, (m, 1), dev)?.to_dtype(acc_dt)?;
                    gathered.broadcast_mul(&s)?
                } else {
                    gathered
                };
                let bag_idx = Tensor::from_vec(bag_of, m, dev)?;
                let sum = zeros.index_add(&bag_idx, &src, 0)?;
                if self.mode == Reduce::Mean {
                    let c: Vec<f64> = count.iter().map(|&c| c.max(1) as f64).collect();
                    let c = Tensor::from_vec(c, (nb, 1), dev)?.to_dtype(acc_dt)?;
                    sum.broadcast_div(&c)?
                } else {
                    sum
                }
            }
            Reduce::Max => {
                let mut parts = Vec::with_capacity(nb);
                let mut start = 0;
                for &c in &count {
                    parts.push(if c == 0 {
                        Tensor::zeros((1, dim), acc_dt, dev)?
                    } else {
                        gathered.narrow(0, start, c)?.max_keepdim(0)?
                    });
                    start += c;
                }
                Tensor::cat(&parts, 0)?
            }
        };
        Ok(out.to_dtype(w.dtype())?)
    }

    /// Gradient of the table given `grad_output` `(B, D)` (as `B * D` values), coalesced.
    /// The values have the table's dtype; sums run in f64 in id-position order (deterministic).
    pub fn backward<I: Id, O: Id, D: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        grad_output: &[D],
        per_sample_weights: Option<&[D]>,
    ) -> Result<SparseGrad> {
        let bags = self.bags(ids, shape, offsets)?;
        self.check_weights(&bags, per_sample_weights)?;
        let (dim, nb) = (self.embedding_dim(), bags.num_bags());
        if grad_output.len() != nb * dim {
            return Err(Error::shape(format!(
                "grad_output has {} elements, expected ({nb}, {dim})",
                grad_output.len()
            )));
        }
        let w = self.weight();
        let padding = self.padding_idx();
        // Bag of each position and the scale of its gradient row.
        let mut bag_of = vec![0usize; ids.len()];
        let mut scale = vec![0f64; ids.len()];
        for b in 0..nb {
            let (lo, hi) = (bags.bounds[b], bags.bounds[b + 1]);
            let count = ids[lo..hi]
                .iter()
                .filter(|i| Some(i.index()) != padding)
                .count();
            bag_of[lo..hi].fill(b);
            for (pos, s) in (lo..hi).zip(&mut scale[lo..hi]) {
                *s = match self.mode {
                    Reduce::Mean => 1.0 / count.max(1) as f64,
                    _ => per_sample_weights.map_or(1.0, |ws| ws[pos].as_f64()),
                };
            }
        }
        let argmax = if self.mode == Reduce::Max {
            let wc = w.to_device(&Device::Cpu)?;
            Some(
                with_float!(wc.dtype(), S => storage::read::<S, _>(&wc, |t| {
                    bag_argmax(t, dim, ids, &bags.bounds, padding)
                }))?,
            )
        } else {
            None
        };
        let (uniq, values) = coalesce_rows(
            ids,
            self.num_embeddings(),
            padding,
            dim,
            |pos, acc: &mut [f64]| {
                let b = bag_of[pos];
                let g = &grad_output[b * dim..(b + 1) * dim];
                match &argmax {
                    None => {
                        let s = scale[pos];
                        for (a, &x) in acc.iter_mut().zip(g) {
                            *a += s * x.as_f64();
                        }
                    }
                    Some(arg) => {
                        let arg = &arg[b * dim..(b + 1) * dim];
                        for ((a, &m), &x) in acc.iter_mut().zip(arg).zip(g) {
                            if m == pos {
                                *a += x.as_f64();
                            }
                        }
                    }
                }
            },
        );
        let n = uniq.len();
        let values = Tensor::from_vec(values, (n, dim), &Device::Cpu)?
            .to_dtype(w.dtype())?
            .to_device(w.device())?;
        Ok(SparseGrad::from_coalesced_unchecked(
            uniq,
            values,
            self.num_embeddings(),
        ))
    }

    /// Gradient of the per-sample weights (sum mode): `d w_k = <g[bag(k)], W[ids[k]]>`,
    /// 0 for padding positions. One value per id, in f64.
    pub fn backward_per_sample_weights<I: Id, O: Id, D: Float>(
        &self,
        ids: &[I],
        shape: &[usize],
        offsets: Option<&[O]>,
        grad_output: &[D],
    ) -> Result<Vec<f64>> {
        if self.mode != Reduce::Sum {
            return Err(Error::invalid(format!(
                "per_sample_weights gradients exist only for mode='sum', got mode='{}'",
                mode_name(self.mode)
            )));
        }
        let bags = self.bags(ids, shape, offsets)?;
        let (dim, nb) = (self.embedding_dim(), bags.num_bags());
        if grad_output.len() != nb * dim {
            return Err(Error::shape(format!(
                "grad_output has {} elements, expected ({nb}, {dim})",
                grad_output.len()
            )));
        }
        let w = self.weight().to_device(&Device::Cpu)?;
        let padding = self.padding_idx();
        let mut out = vec![0f64; ids.len()];
        with_float!(w.dtype(), S => storage::read::<S, ()>(&w, |t| {
            for b in 0..nb {
                let g = &grad_output[b * dim..(b + 1) * dim];
                let (lo, hi) = (bags.bounds[b], bags.bounds[b + 1]);
                for (&id, o) in ids[lo..hi].iter().zip(&mut out[lo..hi]) {
                    let id = id.index();
                    if Some(id) == padding {
                        continue;
                    }
                    let row = &t[id * dim..(id + 1) * dim];
                    *o = row.iter().zip(g).map(|(&r, &x)| r.as_f64() * x.as_f64()).sum();
                }
            }
        }))?;
        Ok(out)
    }
}

/// Coalesce per-position gradient rows: sorted unique non-padding ids, and for each the sum
/// (in position order) of `add(pos, acc)` over its positions. The grouping is the crate's shared
/// coalesce (`sparse::coalesce::group`); only the per-position contribution is the bag's own, so
/// no `(ids.len(), dim)` intermediate is materialised. Deterministic for any thread count.
fn coalesce_rows<I: Id>(
    ids: &[I],
    num_rows: usize,
    padding: Option<usize>,
    dim: usize,
    add: impl Fn(usize, &mut [f64]) + Sync,
) -> (Vec<i64>, Vec<f64>) {
    use rayon::prelude::*;
    let groups = crate::sparse::coalesce::group(ids, num_rows, padding);
    let mut values = vec![0f64; groups.len() * dim];
    if dim > 0 {
        crate::threads::install(|| {
            values
                .par_chunks_mut(dim)
                .with_min_len(64)
                .enumerate()
                .for_each(|(u, acc)| {
                    for &pos in groups.positions(u) {
                        add(pos, acc);
                    }
                });
        });
    }
    (groups.unique, values)
}
