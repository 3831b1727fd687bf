//! Writing a `.bin` file: the new format, version 12, unpruned and unquantized, as fastText's
//! `FastText::saveModel` and gensim's `save_facebook_model` write it.

use std::io::Write;
use std::path::Path;

use super::{Args, MatrixView, ModelRef, MAGIC, VERSION};
use crate::io::atomic::write_atomic;
use crate::{bail_invalid, Error, Result};

/// Floats converted per write.
const CHUNK_FLOATS: usize = 1 << 14;

/// Write `m` to `path` atomically. Everything is checked first (nothing is created on error):
/// `dim >= 1`, `input` is `(words + bucket, dim)`, `output` is `(words, dim)`, one count
/// (`>= 0`) per word, no NUL byte in a word, at most `i32::MAX` words, non-negative
/// `ntokens`, and arguments without a [`Args::problem`].
pub fn write(path: &Path, m: ModelRef<'_>) -> Result<()> {
    check(&m)?;
    write_atomic(path, |w| {
        let io = |e| Error::io(format!("cannot write {}", path.display()), e);
        let mut head = Vec::with_capacity(64);
        for v in [MAGIC, VERSION] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        args_bytes(m.args, &mut head);
        let n = m.words.len() as i32;
        for v in [n, n, 0] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        head.extend_from_slice(&m.ntokens.to_le_bytes());
        head.extend_from_slice(&(-1i64).to_le_bytes()); // pruneidx_size: not pruned
        w.write_all(&head).map_err(io)?;
        for (word, count) in m.words.iter().zip(m.counts) {
            w.write_all(word).map_err(io)?;
            w.write_all(&[0]).map_err(io)?;
            w.write_all(&count.to_le_bytes()).map_err(io)?;
            w.write_all(&[0]).map_err(io)?; // entry type: word
        }
        for matrix in [m.input, m.output] {
            w.write_all(&[0]).map_err(io)?; // not quantized
            matrix_bytes(w, matrix).map_err(io)?;
        }
        Ok(())
    })
}

fn args_bytes(a: &Args, out: &mut Vec<u8>) {
    for (_, v) in a.ints() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&a.t.to_le_bytes());
}

fn matrix_bytes(w: &mut dyn Write, m: MatrixView<'_>) -> std::io::Result<()> {
    w.write_all(&(m.rows as i64).to_le_bytes())?;
    w.write_all(&(m.cols as i64).to_le_bytes())?;
    let mut raw = Vec::with_capacity(CHUNK_FLOATS * 4);
    for chunk in m.data.chunks(CHUNK_FLOATS) {
        raw.clear();
        for v in chunk {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&raw)?;
    }
    Ok(())
}

fn check(m: &ModelRef<'_>) -> Result<()> {
    let a = m.args;
    let nwords = m.words.len();
    if nwords > i32::MAX as usize {
        bail_invalid!("a .bin file holds at most {} words, got {nwords}", i32::MAX);
    }
    if m.counts.len() != nwords {
        bail_invalid!("{} counts for {nwords} words", m.counts.len());
    }
    if let Some(i) = m.counts.iter().position(|&c| c < 0) {
        bail_invalid!("word {i} has a negative count ({})", m.counts[i]);
    }
    if let Some(i) = m.words.iter().position(|w| w.contains(&0)) {
        bail_invalid!("word {i} contains a NUL byte, which the .bin format cannot store");
    }
    if m.ntokens < 0 {
        bail_invalid!("ntokens must be >= 0, got {}", m.ntokens);
    }
    if let Some(msg) = a.problem() {
        return Err(Error::InvalidArgument(msg));
    }
    let sub = a.subwords()?;
    let dim = a.dim as usize;
    let want_in = nwords + sub.bucket;
    for (what, mat, rows) in [("input", m.input, want_in), ("output", m.output, nwords)] {
        if mat.rows != rows || mat.cols != dim || Some(mat.data.len()) != rows.checked_mul(dim) {
            return Err(Error::Shape(format!(
                "the {what} matrix must be ({rows}, {dim}), got ({}, {}) holding {} values",
                mat.rows,
                mat.cols,
                mat.data.len()
            )));
        }
    }
    Ok(())
}
