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
//! (mean); with `scale_grad_by_freq` each `s_k` is also divided by `n_i`, the number of
//! non-padding positions of id `i` in the whole call (every bag), as PyTorch's
//! `_embedding_bag_dense_backward_cpu_sum_mean` intends; for max each column's gradient goes
//! to that column's argmax (first occurrence), recomputed from the current table (max refuses
//! `scale_grad_by_freq`, as PyTorch's `F.embedding_bag`). Returned coalesced
//! ([`SparseGrad`](crate::SparseGrad)); padding rows get none.
//!
//! Two paths: [`EmbeddingBag::forward_into`] (CPU kernel `kernels::cpu::bag`) and
//! [`EmbeddingBag::forward_portable`] (candle `index_select` + `index_add`, any device).
//!
//! Files: this one holds the type and its options; [`offsets`] validates ids, offsets and
//! weights into CSR bounds; `forward` and `backward` hold the two directions.

mod backward;
mod forward;
pub mod offsets;

use candle_core::{DType, Device, Tensor};

use crate::kernels::cpu::bag::Reduce;
use crate::{Embedding, EmbeddingConfig, Error, Result};

pub use offsets::Bags;

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
    /// How each bag is reduced (PyTorch's default: mean).
    pub mode: BagMode,
    /// Row excluded from every bag (and from the mean's divisor); zeroed at init.
    pub padding_idx: Option<i64>,
    /// Renormalise each looked-up row whose `norm_type`-norm exceeds this, in place.
    pub max_norm: Option<f64>,
    /// The p of the p-norm used by `max_norm`.
    pub norm_type: f64,
    /// 1-D `offsets` hold `B + 1` entries, the last equal to the number of ids (CSR).
    pub include_last_offset: bool,
    /// Divide each id's gradient by its number of occurrences in the call (sum and mean).
    pub scale_grad_by_freq: bool,
    /// A frozen table refuses optimizer updates.
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
            scale_grad_by_freq: false,
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
            scale_grad_by_freq: self.scale_grad_by_freq,
            freeze: self.freeze,
        }
    }

    /// PyTorch's rule (`F.embedding_bag`): max mode has no frequency scaling.
    fn check(&self) -> Result<()> {
        if self.mode == Reduce::Max && self.scale_grad_by_freq {
            return Err(Error::invalid(
                "max mode does not support scaling the gradient by the frequency \
                 (scale_grad_by_freq=True needs mode 'sum' or 'mean')",
            ));
        }
        Ok(())
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
        config.check()?;
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
        config.check()?;
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
    /// The `(V, D)` table (shares storage: in-place updates show through).
    pub fn weight(&self) -> Tensor {
        self.table.weight()
    }
    /// Replace the table's values (see [`Embedding::set_weight`]).
    pub fn set_weight(&self, new: &Tensor) -> Result<()> {
        self.table.set_weight(new)
    }
    /// How each bag is reduced.
    pub fn mode(&self) -> BagMode {
        self.mode
    }
    /// Whether 1-D offsets carry the final `N` entry (CSR).
    pub fn include_last_offset(&self) -> bool {
        self.include_last_offset
    }
    /// Whether the backward divides each id's gradient by its count in the call.
    pub fn scale_grad_by_freq(&self) -> bool {
        self.table.config().scale_grad_by_freq
    }
    /// Rows of the table (`V`).
    pub fn num_embeddings(&self) -> usize {
        self.table.num_embeddings()
    }
    /// Columns of the table (`D`).
    pub fn embedding_dim(&self) -> usize {
        self.table.embedding_dim()
    }
    /// The padding row, normalised to `0..V`.
    pub fn padding_idx(&self) -> Option<usize> {
        self.table.padding_idx()
    }
}
