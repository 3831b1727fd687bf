//! Word vectors from bags: `out[k, :] = (1 / |bag_k|) * sum_{r in bag_k} table[r, :]`, zeros for
//! an empty bag (fastText's `getWordVector`; gensim's `adjust_vectors` for in-vocabulary words
//! and `get_vector` for out-of-vocabulary ones).
//!
//! `table` is fastText's input matrix, `(nwords + bucket, dim)` row-major. Two paths, as every
//! op of the crate: [`bag_means_into`] runs the crate's CPU EmbeddingBag kernel
//! ([`bag_reduce`], mean mode) straight on a borrowed table; [`bag_means_portable`] runs
//! [`EmbeddingBag::forward_portable`] (candle ops, any device). The sum runs in the table's
//! accumulation type (f32 for f32 tables) in bag order, then is scaled by `1 / |bag|`.

use candle_core::Tensor;

use super::subwords::{Subwords, WordBags};
use crate::alloc::checked_elems;
use crate::dtype::Float;
use crate::ids;
use crate::kernels::cpu::bag::{bag_reduce, BagArgs, Reduce};
use crate::{bail_shape, EmbeddingBag, EmbeddingBagConfig, Error, Result};

/// Rows of a `(rows, dim)` table held in `len` elements.
fn table_rows(len: usize, dim: usize) -> Result<usize> {
    if dim == 0 {
        bail_shape!("a fastText table needs dim >= 1");
    }
    if len % dim != 0 {
        bail_shape!("a table of {len} elements is not a whole number of rows of {dim}");
    }
    Ok(len / dim)
}

/// Fast path: the mean of every bag's rows of `table` (`(rows, dim)` row-major) into `out`
/// (`bags.len() * dim` elements, all overwritten). Every row id is checked against `rows`
/// before anything is written.
pub fn bag_means_into<S: Float, D: Float>(
    table: &[S],
    dim: usize,
    bags: &WordBags,
    out: &mut [D],
) -> Result<()> {
    let rows = table_rows(table.len(), dim)?;
    let want = checked_elems(&[bags.len(), dim], std::mem::size_of::<D>())?;
    if out.len() != want {
        bail_shape!(
            "output has {} elements, expected {} bags x {dim}",
            out.len(),
            bags.len()
        );
    }
    ids::validate(&bags.ids, rows, "row", "a fastText input table")?;
    let args = BagArgs {
        table,
        dim,
        ids: &bags.ids,
        bounds: &bags.bounds,
        weights: None,
        padding: None,
        mode: Reduce::Mean,
    };
    bag_reduce(&args, out);
    Ok(())
}

/// Words whose bags are built at once by [`word_vectors_into`]: the bag lists of a whole
/// vocabulary never exist together, so memory stays bounded whatever the vocabulary.
const CHUNK_WORDS: usize = 4096;

/// The vectors of `words` (`(own row, bytes)` items, as [`Subwords::bags`]) from fastText's
/// input table (`nwords + sub.bucket` rows of `dim`) into `out` (`words.len() * dim`
/// elements). Shapes and own rows are checked before anything is written; only running out of
/// memory for a later chunk's bags can leave `out` partly written.
pub fn word_vectors_into<S: Float, D: Float>(
    table: &[S],
    dim: usize,
    nwords: usize,
    sub: &Subwords,
    words: &[(Option<usize>, &[u8])],
    out: &mut [D],
) -> Result<()> {
    let rows = table_rows(table.len(), dim)?;
    if Some(rows) != nwords.checked_add(sub.bucket) {
        bail_shape!(
            "a fastText table for {nwords} words and {} buckets has {} rows, got {rows}",
            sub.bucket,
            nwords.saturating_add(sub.bucket)
        );
    }
    if Some(out.len()) != words.len().checked_mul(dim) {
        bail_shape!(
            "output has {} elements, expected {} words x {dim}",
            out.len(),
            words.len()
        );
    }
    if let Some(&r) = words
        .iter()
        .filter_map(|(own, _)| own.as_ref())
        .find(|&&r| r >= nwords)
    {
        return Err(Error::IndexOutOfRange {
            what: "word row",
            index: r as i128,
            container: "the vocabulary",
            size: nwords,
        });
    }
    for (chunk, dst) in words
        .chunks(CHUNK_WORDS)
        .zip(out.chunks_mut(CHUNK_WORDS * dim))
    {
        let bags = sub.bags(chunk.iter().copied(), nwords)?;
        bag_means_into(table, dim, &bags, dst)?;
    }
    Ok(())
}

/// Portable path (any candle device): the same means through [`EmbeddingBag`]'s portable
/// forward on `table` (`(rows, dim)`); returns `(bags.len(), dim)` in the table's dtype.
pub fn bag_means_portable(table: &Tensor, bags: &WordBags) -> Result<Tensor> {
    let bag = EmbeddingBag::from_pretrained(
        table.clone(),
        EmbeddingBagConfig {
            mode: Reduce::Mean,
            include_last_offset: true,
            ..Default::default()
        },
    )?;
    bag.forward_portable::<u32, usize, f32>(
        &bags.ids,
        &[bags.ids.len()],
        Some(bags.bounds.as_slice()),
        None,
    )
}
