//! The ids of one call of [`TransformerEmbeddings`]: token, position and token-type ids checked
//! against their tables and broadcast to one of each per token; and RoBERTa's position ids from
//! padding.

use super::TransformerEmbeddings;
use crate::alloc::{try_collect, try_filled, try_with_capacity};
use crate::ids::{self, Id};
use crate::{Error, Result};

impl TransformerEmbeddings {
    /// Check the ids of a call against their tables and return one token, position and
    /// token-type row per token.
    pub(super) fn resolve_ids<I: Id>(
        &self,
        ids: &[I],
        shape: &[usize],
        token_type_ids: Option<&[I]>,
        position_ids: Option<&[I]>,
    ) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
        let filled = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if shape.is_empty() || filled != Some(ids.len()) {
            return Err(Error::shape(format!(
                "ids must have shape (..., T) with at least one dimension, got {shape:?}"
            )));
        }
        let n = ids.len();
        let t = shape[shape.len() - 1];
        ids::validate(
            ids,
            self.token.num_embeddings(),
            "token id",
            "a token table",
        )?;
        let tok = try_collect(ids.iter().map(|i| i.index()))?;
        let tts = match token_type_ids {
            None => try_filled(n, 0)?,
            Some(tt) => {
                if tt.len() != n {
                    return Err(Error::shape(format!(
                        "token_type_ids has {} elements, ids has {n} (shapes must match)",
                        tt.len()
                    )));
                }
                ids::validate(
                    tt,
                    self.segment.num_embeddings(),
                    "token type id",
                    "a segment table",
                )?;
                try_collect(tt.iter().map(|i| i.index()))?
            }
        };
        let pids = match position_ids {
            None if self.position.padding_idx().is_some() => {
                let pids = self.roberta_positions(ids, t)?;
                ids::validate(
                    &pids,
                    self.position.num_embeddings(),
                    "position",
                    "a position table",
                )?;
                pids
            }
            None => {
                if t > self.position.num_embeddings() {
                    return Err(Error::IndexOutOfRange {
                        what: "position",
                        index: t as i128 - 1,
                        container: "a position table",
                        size: self.position.num_embeddings(),
                    });
                }
                try_collect((0..n).map(|k| k % t.max(1)))?
            }
            Some(p) => {
                if p.len() != n && p.len() != t {
                    return Err(Error::shape(format!(
                        "position_ids has {} elements: expected ids' shape or ({t},)",
                        p.len()
                    )));
                }
                ids::validate(
                    p,
                    self.position.num_embeddings(),
                    "position id",
                    "a position table",
                )?;
                if p.len() == n {
                    try_collect(p.iter().map(|i| i.index()))?
                } else {
                    try_collect((0..n).map(|k| p[k % t].index()))?
                }
            }
        };
        Ok((tok, pids, tts))
    }
}

impl TransformerEmbeddings {
    /// RoBERTa's default positions (`create_position_ids_from_input_ids`) along the last axis
    /// (rows of `t`): `p + cumsum(mask)` for a real token, `p` for a padding token, with `p` the
    /// position table's padding row and `mask = id != token padding_idx` (all true without one).
    /// Not yet checked against the position table.
    fn roberta_positions<I: Id>(&self, ids: &[I], t: usize) -> Result<Vec<usize>> {
        let p = self.position.padding_idx().unwrap_or(0);
        let pad = self.token.padding_idx();
        let mut out = try_with_capacity(ids.len())?;
        for row in ids.chunks(t.max(1)) {
            let mut count = 0usize;
            for &i in row {
                if Some(i.index()) == pad {
                    out.push(p);
                } else {
                    count += 1;
                    out.push(p.saturating_add(count));
                }
            }
        }
        Ok(out)
    }
}

/// RoBERTa/fairseq position ids from padding (`create_position_ids_from_input_ids`), along the
/// last axis of `ids` (rows of length `t`): `mask = id != pad`,
/// `pos = (cumsum(mask) + past_len)·mask + pad`. A position past the `i64` range is an
/// [`Error::InvalidArgument`] (never a wrapped, negative id).
pub fn position_ids_from_padding<I: Id>(
    ids: &[I],
    t: usize,
    padding_idx: i64,
    past_len: i64,
) -> Result<Vec<i64>> {
    if t == 0 {
        return Ok(Vec::new());
    }
    if ids.len() % t != 0 {
        return Err(Error::shape(
            "ids do not split into rows of the given length",
        ));
    }
    let pad = padding_idx as i128;
    let mut out = try_with_capacity(ids.len())?;
    for row in ids.chunks(t) {
        let mut count = 0i128;
        for &i in row {
            if i.wide() != pad {
                count += 1;
                // Exact in i128 (|each term| < 2^63), then checked into i64.
                let pos = count + past_len as i128 + pad;
                out.push(i64::try_from(pos).map_err(|_| {
                    Error::invalid(format!(
                        "position id {pos} = {count} + past_length {past_len} + padding_idx \
                         {padding_idx} does not fit in 64 bits"
                    ))
                })?);
            } else {
                out.push(padding_idx);
            }
        }
    }
    Ok(out)
}
