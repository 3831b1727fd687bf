//! Reading a `.bin` file with every field validated (see the parent module for the layout).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{Args, FacebookModel, Matrix, MAGIC, VERSION};
use crate::alloc::{try_alloc_uninit, try_with_capacity};
use crate::{Error, Result};

/// A word longer than this (64 KiB) is taken as a sign of corruption (a missing NUL
/// terminator): an unterminated forged word cannot make the reader buffer the whole file, and
/// the n-grams of any word stay few (at most 64 Ki x `MAX_NGRAM_CHARS`).
pub const MAX_WORD_BYTES: usize = 1 << 16;

/// The smallest dictionary entry: an empty word's NUL, an `i64` count and an `i8` type.
const MIN_ENTRY_BYTES: u64 = 1 + 8 + 1;

/// Floats converted per read while loading a matrix.
const CHUNK_FLOATS: usize = 1 << 14;

/// Read the `.bin` file at `path`. `full_model = false` skips the output matrix's values (its
/// header and size are still checked). Every malformed, truncated or unsupported file is an
/// [`Error::Format`] naming the byte offset; a path that is not a regular file (a directory, a
/// FIFO) is refused before it is opened (an [`Error::Io`]), so nothing blocks.
pub fn read(path: &Path, full_model: bool) -> Result<FacebookModel> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
    if !meta.is_file() {
        return Err(Error::io(
            format!("cannot read {shown}"),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    // Opened without blocking, and checked again on the handle (a FIFO swapped in since).
    let file = crate::io::open::open_regular(path)?;
    read_from(BufReader::new(file), meta.len(), &shown, full_model)
}

/// Read a `.bin` model of `len` bytes from `reader` (`name` labels errors).
pub fn read_from<R: BufRead>(
    reader: R,
    len: u64,
    name: &str,
    full_model: bool,
) -> Result<FacebookModel> {
    let mut r = Input {
        r: reader,
        pos: 0,
        len,
        name,
    };
    let first = r.i32("the magic number or dim")?;
    let (version, args) = if first == MAGIC {
        let version = r.i32("the version")?;
        if version > VERSION {
            return Err(r.fail(format!(
                "format version {version} is newer than this reader ({VERSION})"
            )));
        }
        (Some(version), r.args(None)?)
    } else {
        (None, r.args(Some(first))?)
    };
    r.check_args(&args)?;
    let (words, counts, ntokens, nwords) = r.dictionary(version.is_some())?;
    let dim = args.dim as usize;
    let rows = nwords + args.bucket as usize;
    r.flag(version.is_some(), "the input matrix")?;
    let input = r.matrix("input", rows, dim)?;
    r.flag(version.is_some(), "the output matrix")?;
    let output = if full_model {
        Some(r.matrix("output", nwords, dim)?)
    } else {
        r.skip_matrix("output", nwords, dim)?;
        None
    };
    if r.left() != 0 {
        return Err(r.fail(format!(
            "{} unexpected bytes after the output matrix",
            r.left()
        )));
    }
    Ok(FacebookModel {
        version,
        args,
        ntokens,
        words,
        counts,
        input,
        output,
    })
}

struct Input<'n, R> {
    r: R,
    pos: u64,
    len: u64,
    name: &'n str,
}

impl<R: BufRead> Input<'_, R> {
    fn fail(&self, msg: impl std::fmt::Display) -> Error {
        Error::Format(format!("{}: byte {}: {msg}", self.name, self.pos))
    }

    fn left(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        if self.left() < buf.len() as u64 {
            return Err(self.fail(format!("truncated file: {what} is missing")));
        }
        self.r.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                self.fail(format!("truncated file: {what} is missing"))
            }
            _ => Error::io(format!("cannot read {}", self.name), e),
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.exact(&mut b, what)?;
        Ok(b)
    }

    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// An `i32` that must be `>= 0` (a count or size).
    fn count(&mut self, what: &str) -> Result<usize> {
        let v = self.i32(what)?;
        usize::try_from(v).map_err(|_| self.fail(format!("{what} is negative ({v})")))
    }

    fn args(&mut self, old_dim: Option<i32>) -> Result<Args> {
        let (dim, ws) = match old_dim {
            Some(dim) => (dim, self.i32("ws")?),
            None => (self.i32("dim")?, self.i32("ws")?),
        };
        Ok(Args {
            dim,
            ws,
            epoch: self.i32("epoch")?,
            min_count: self.i32("min_count")?,
            neg: self.i32("neg")?,
            word_ngrams: self.i32("word_ngrams")?,
            loss: self.i32("loss")?,
            model: self.i32("model")?,
            bucket: self.i32("bucket")?,
            minn: self.i32("minn")?,
            maxn: self.i32("maxn")?,
            lr_update_rate: self.i32("lr_update_rate")?,
            t: f64::from_le_bytes(self.array("t")?),
        })
    }

    fn check_args(&self, a: &Args) -> Result<()> {
        match a.problem() {
            Some(msg) => Err(self.fail(msg)),
            None => Ok(()),
        }
    }

    /// The dictionary: `(words, counts, ntokens, nwords)`.
    #[allow(clippy::type_complexity)]
    fn dictionary(&mut self, new_format: bool) -> Result<(Vec<Vec<u8>>, Vec<i64>, i64, usize)> {
        let size = self.count("the dictionary size")?;
        let nwords = self.count("nwords")?;
        let nlabels = self.count("nlabels")?;
        if nlabels > 0 {
            return Err(self.fail(format!(
                "supervised models ({nlabels} labels) are not supported"
            )));
        }
        if size != nwords {
            return Err(self.fail(format!(
                "the dictionary holds {size} entries but nwords is {nwords}"
            )));
        }
        let ntokens = self.i64("ntokens")?;
        if ntokens < 0 {
            return Err(self.fail(format!("ntokens is negative ({ntokens})")));
        }
        if new_format {
            let pruned = self.i64("pruneidx_size")?;
            if pruned != -1 {
                return Err(self.fail(format!(
                    "pruned models (pruneidx_size {pruned}) are not supported: fastText prunes \
                     only quantized models"
                )));
            }
        }
        if (size as u64).saturating_mul(MIN_ENTRY_BYTES) > self.left() {
            return Err(self.fail(format!(
                "{size} dictionary entries cannot fit in the {} bytes left",
                self.left()
            )));
        }
        let mut words = try_with_capacity(size)?;
        let mut counts = try_with_capacity(size)?;
        for i in 0..size {
            words.push(self.word(i)?);
            let count = self.i64("a word count")?;
            if count < 0 {
                return Err(self.fail(format!("word {i} has a negative count ({count})")));
            }
            counts.push(count);
            let [kind] = self.array::<1>("an entry type")?;
            if kind != 0 {
                return Err(self.fail(format!("entry {i} has type {kind}, expected 0 (a word)")));
            }
        }
        Ok((words, counts, ntokens, nwords))
    }

    /// A NUL-terminated word of at most [`MAX_WORD_BYTES`] bytes.
    fn word(&mut self, i: usize) -> Result<Vec<u8>> {
        let cap = self.left().min(MAX_WORD_BYTES as u64 + 1);
        let mut w = Vec::new();
        let n = (&mut self.r)
            .take(cap)
            .read_until(0, &mut w)
            .map_err(|e| Error::io(format!("cannot read {}", self.name), e))?;
        self.pos += n as u64;
        if w.last() != Some(&0) {
            return Err(if n as u64 == cap && cap > MAX_WORD_BYTES as u64 {
                self.fail(format!("word {i} is longer than {MAX_WORD_BYTES} bytes"))
            } else {
                self.fail(format!("truncated file: word {i} has no terminating NUL"))
            });
        }
        w.pop();
        Ok(w)
    }

    /// The new format's `quant` / `qout` byte: 0, or a quantized matrix (refused).
    fn flag(&mut self, new_format: bool, what: &str) -> Result<()> {
        if !new_format {
            return Ok(());
        }
        match self.array::<1>("a quantization flag")? {
            [0] => Ok(()),
            [1] => Err(self.fail(format!("{what} is quantized (a .ftz model): not supported"))),
            [b] => Err(self.fail(format!("{what}'s quantization flag is {b}, not 0 or 1"))),
        }
    }

    /// A matrix header that must say `(rows, cols)`, with that many values left in the file:
    /// returns their byte size.
    fn matrix_header(&mut self, what: &str, rows: usize, cols: usize) -> Result<u64> {
        let (m, n) = (
            self.i64("a matrix's rows")?,
            self.i64("a matrix's columns")?,
        );
        if m != rows as i64 || n != cols as i64 {
            return Err(self.fail(format!(
                "the {what} matrix is ({m}, {n}), expected ({rows}, {cols}) from the header"
            )));
        }
        let bytes = (rows as u128) * (cols as u128) * 4;
        if bytes > u128::from(self.left()) {
            return Err(self.fail(format!(
                "truncated file: the {what} matrix needs {bytes} bytes, {} are left",
                self.left()
            )));
        }
        Ok(bytes as u64)
    }

    /// Skip a matrix (header checked, values not read).
    fn skip_matrix(&mut self, what: &str, rows: usize, cols: usize) -> Result<()> {
        let bytes = self.matrix_header(what, rows, cols)?;
        let skipped = std::io::copy(&mut (&mut self.r).take(bytes), &mut std::io::sink())
            .map_err(|e| Error::io(format!("cannot read {}", self.name), e))?;
        self.pos += skipped;
        if skipped != bytes {
            return Err(self.fail(format!("truncated file: the {what} matrix is cut short")));
        }
        Ok(())
    }

    /// A matrix: header, then its values, which must be finite.
    fn matrix(&mut self, what: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let bytes = self.matrix_header(what, rows, cols)?;
        // Fits in usize: `bytes` is at most the file's length.
        let mut data = try_alloc_uninit::<f32>((bytes / 4) as usize)?;
        let mut raw = vec![0u8; CHUNK_FLOATS.min(data.len()) * 4];
        for (c, dst) in data.chunks_mut(CHUNK_FLOATS).enumerate() {
            let buf = &mut raw[..dst.len() * 4];
            self.exact(buf, &format!("part of the {what} matrix"))?;
            for (v, b) in dst.iter_mut().zip(buf.chunks_exact(4)) {
                *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            if let Some(k) = dst.iter().position(|v| !v.is_finite()) {
                let at = c * CHUNK_FLOATS + k;
                return Err(self.fail(format!(
                    "the {what} matrix holds {} at row {}, column {}: fastText never saves \
                     non-finite weights",
                    dst[k],
                    at / cols,
                    at % cols
                )));
            }
        }
        Ok(Matrix { rows, cols, data })
    }
}
