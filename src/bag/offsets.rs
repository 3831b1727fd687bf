//! The bags of one call: ids with 2-D shape or 1-D offsets, validated into CSR bounds, and the
//! checks of the arrays that come with them (per-sample weights, the upstream gradient).
//!
//! Every check runs before any kernel and modifies nothing, so a refused call leaves the table
//! as it was. The checks need only a [`BagSpec`] (the table's size and the bag options), so a
//! quantized bag ([`crate::quantized::QuantizedEmbeddingBag`]) runs the same ones.

use super::{mode_name, EmbeddingBag};
use crate::alloc::{try_collect, try_with_capacity};
use crate::ids::{self, Id};
pub use crate::kernels::cpu::bag::Bags;
use crate::kernels::cpu::bag::Reduce;
use crate::{Error, Result};

/// What the checks of a call's bags need to know about a table of bags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BagSpec {
    /// The reduction (per-sample weights exist only for sum).
    pub mode: Reduce,
    /// Whether 1-D offsets carry the final `N` entry (CSR).
    pub include_last_offset: bool,
    /// Rows of the table (ids must lie in `0..num_embeddings`).
    pub num_embeddings: usize,
    /// Columns of the table (outputs are `(B, embedding_dim)`).
    pub embedding_dim: usize,
}

impl EmbeddingBag {
    /// The bag options and table size the checks use.
    pub fn spec(&self) -> BagSpec {
        BagSpec {
            mode: self.mode,
            include_last_offset: self.include_last_offset,
            num_embeddings: self.num_embeddings(),
            embedding_dim: self.embedding_dim(),
        }
    }

    /// Number of bags for ids of `shape` and `offsets_len` offsets ([`BagSpec::num_bags`]).
    pub fn num_bags(&self, shape: &[usize], offsets_len: Option<usize>) -> Result<usize> {
        self.spec().num_bags(shape, offsets_len)
    }

    /// The checked bags of a call ([`BagSpec::bags`]).
    pub fn bags<'a, I: Id, O: Id>(
        &self,
        ids: &'a [I],
        shape: &[usize],
        offsets: Option<&[O]>,
    ) -> Result<Bags<'a, I>> {
        self.spec().bags(ids, shape, offsets)
    }

    pub(super) fn check_weights<I, W>(
        &self,
        bags: &Bags<'_, I>,
        weights: Option<&[W]>,
    ) -> Result<()> {
        self.spec().check_weights(bags, weights)
    }

    pub(super) fn check_output<I>(&self, bags: &Bags<'_, I>, len: usize, what: &str) -> Result<()> {
        self.spec().check_output(bags, len, what)
    }
}

impl BagSpec {
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
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(n) {
            return Err(Error::shape(format!("{n} ids do not fill shape {shape:?}")));
        }
        let bounds = match offsets {
            None => {
                let per = shape[1];
                // B + 1 bounds even when the bags are empty (B from the shape, not from ids).
                try_collect((0..=num_bags).map(|b| b * per))?
            }
            Some(off) => self.offsets_to_bounds(off, n, num_bags)?,
        };
        ids::validate(ids, self.num_embeddings, "index", "an embedding table")?;
        Ok(Bags { ids, bounds })
    }

    /// 1-D offsets: `offsets[0] == 0`, non-decreasing, each `<= n`; with `include_last_offset`
    /// the last equals `n`, otherwise `n` is appended.
    fn offsets_to_bounds<O: Id>(&self, off: &[O], n: usize, num_bags: usize) -> Result<Vec<usize>> {
        let mut bounds = try_with_capacity(num_bags + 1)?;
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
        Ok(bounds)
    }

    /// `per_sample_weights` exist only in sum mode and hold one weight per id.
    pub fn check_weights<I, W>(&self, bags: &Bags<'_, I>, weights: Option<&[W]>) -> Result<()> {
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

    /// An output (or upstream gradient) of `B * D` elements.
    pub fn check_output<I>(&self, bags: &Bags<'_, I>, len: usize, what: &str) -> Result<()> {
        let (dim, nb) = (self.embedding_dim, bags.num_bags());
        if Some(len) != nb.checked_mul(dim) {
            return Err(Error::shape(format!(
                "{what} has {len} elements, expected ({nb}, {dim}) = {} ({nb} bags x {dim})",
                nb.saturating_mul(dim)
            )));
        }
        Ok(())
    }
}
