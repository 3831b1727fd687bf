//! Similarity queries over a table of word vectors: gensim's `KeyedVectors` queries
//! (`most_similar`, `most_similar_cosmul`, `distances`, analogies) as kernels.
//!
//! # Shapes and math
//! A [`Table`] is `n` rows `v_i` of `D` elements (row-major; f32, f64, f16 or bf16) with their
//! Euclidean norms `|v_i|` ([`row_norms`]), in the accumulation type `A` ([`Float::Acc`]: f64
//! for f64 tables, f32 otherwise). A [`Query`] is `q` vectors `t_j` of `D` elements of type `A`,
//! a row range `[start, end)` (gensim's `restrict_vocab` / `clip_start..clip_end`) and a
//! [`Scorer`]. With `c_j(i) = (t_j . v_i) / |v_i|`:
//! - [`Scorer::Cosine`]: one output per query, `s_j(i) = c_j(i)`: the cosine similarity when
//!   `t_j` is a unit vector (gensim's `most_similar` normalises its query mean first);
//! - [`Scorer::CosMul`]`{ positive: p }`: one output from all `q` terms (Levy and Goldberg's
//!   3CosMul, gensim's `most_similar_cosmul`), with `m_j(i) = (1 + c_j(i)) / 2`:
//!   `s(i) = (m_0 m_1 ... m_{p-1}) / (m_p ... m_{q-1} + 1e-6)`, products in term order.
//!
//! A zero row has norm 0, so its scores are NaN or infinite, as gensim's NumPy division gives.
//!
//! [`scores`] returns every output's scores over the range, `(outputs, end - start)`;
//! [`top_k`] returns each output's `k` best rows, best first: higher score first, equal scores
//! by lower row first, NaN after every number; rows listed in an output's exclusion list are
//! skipped (gensim drops the query words from the answer).
//!
//! # Fast path and reference
//! The fast path walks the range in tiles of rows (about 1 MiB of table each, so every row is
//! read from memory once whatever the number of queries) on the crate's pool; in a tile, the
//! products of a block of up to 64 queries with the tile's rows come from the table's
//! [`Rows::products`] on the calling thread (a float [`Table`]: a fused dot kernel, four rows
//! at a time sharing the query's loads, for one query vector, one `gemm` call for more; an
//! int8 / int4 table, `crate::quantized::QuantizedRows`: dots with the codes), and each output
//! keeps a running top-k. The tiling never depends on the number of threads, so results are
//! bit-identical for any thread count. The portable path ([`scores_portable`]) is candle's
//! `matmul` and elementwise ops on any device; [`top_k_sorted`] is the reference selection
//! (a full sort). Tests assert fast == portable within float tolerance, and the fast top-k ==
//! the sort of the fast scores exactly.

mod norms;
mod portable;
mod rows;
mod scores;
mod topk;

pub use norms::{row_norms, row_norms_portable};
pub use portable::{scores_portable, top_k_sorted};
pub use rows::{Products, Rows};
pub use scores::{scores, top_k};

use std::ops::Range;

use crate::dtype::Float;
use crate::{Error, Result};

/// The `1e-6` gensim adds to 3CosMul's denominator.
pub const COSMUL_EPSILON: f64 = 1e-6;

/// How a query's vectors score a row (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scorer {
    /// One output per query vector: `(t . v_i) / |v_i|`.
    Cosine,
    /// One output from every query vector, the first `positive` in the numerator (3CosMul).
    CosMul {
        /// How many of the query vectors (the first ones) are positive terms.
        positive: usize,
    },
}

/// A table of word vectors and its row norms, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Table<'a, T: Float> {
    rows: &'a [T],
    dim: usize,
    norms: &'a [T::Acc],
}

impl<'a, T: Float> Table<'a, T> {
    /// `rows` (`norms.len()` rows of `dim`, row-major) with `norms` (one per row).
    pub fn new(rows: &'a [T], dim: usize, norms: &'a [T::Acc]) -> Result<Self> {
        if Some(rows.len()) != norms.len().checked_mul(dim) {
            return Err(Error::Shape(format!(
                "the table holds {} numbers, expected {} rows (one per norm) of {dim}",
                rows.len(),
                norms.len()
            )));
        }
        Ok(Table { rows, dim, norms })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// The row length `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// Query vectors, the rows they score, and how.
#[derive(Clone, Debug)]
pub struct Query<'a, A> {
    /// `count` vectors of the table's `D`, row-major.
    pub vectors: &'a [A],
    /// Number of query vectors.
    pub count: usize,
    /// The rows scored.
    pub range: Range<usize>,
    /// How the vectors score a row.
    pub scorer: Scorer,
}

impl<A> Query<'_, A> {
    /// Number of outputs: one per vector (cosine) or one (3CosMul).
    pub fn outputs(&self) -> usize {
        match self.scorer {
            Scorer::Cosine => self.count,
            Scorer::CosMul { .. } => 1,
        }
    }

    /// Check the query against a table of `rows` rows of `dim`.
    fn check(&self, rows: usize, dim: usize) -> Result<()> {
        if Some(self.vectors.len()) != self.count.checked_mul(dim) {
            return Err(Error::Shape(format!(
                "the query holds {} numbers, expected {} vectors of {dim}",
                self.vectors.len(),
                self.count
            )));
        }
        if self.range.start > self.range.end || self.range.end > rows {
            return Err(Error::invalid(format!(
                "rows {}..{} are not a range of a table of {rows} rows",
                self.range.start, self.range.end
            )));
        }
        if let Scorer::CosMul { positive } = self.scorer {
            if positive == 0 || positive > self.count {
                return Err(Error::invalid(format!(
                    "3CosMul needs 1 to {} positive terms, got {positive}",
                    self.count
                )));
            }
        }
        Ok(())
    }
}

/// One output's answer: `(row, score)` pairs, best first.
pub type Ranked<A> = Vec<(usize, A)>;
