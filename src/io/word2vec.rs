//! Word-vector files: word2vec text (also fastText `.vec`), word2vec binary, and header-less
//! text (GloVe). Reading follows gensim's `KeyedVectors.load_word2vec_format`: a header
//! `"<count> <dim>"` (absent with `no_header`), then one word and `dim` numbers per line (text:
//! separated by single spaces, trailing whitespace ignored; binary: the word, a space, `dim`
//! little-endian float32, an optional newline). Duplicate words keep their first vector.
//! Any malformed line is an [`Error::Format`] naming the file and the line.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use crate::io::atomic::write_atomic;
use crate::{Error, Result};

/// Words and their vectors, `vectors` row-major `(words.len(), dim)`.
#[derive(Debug, Clone, Default)]
pub struct WordVectors {
    /// The words, in file order.
    pub words: Vec<String>,
    /// One row of `dim` per word, row-major.
    pub vectors: Vec<f32>,
    /// The vector size.
    pub dim: usize,
}

fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::Format(format!("{}: line {line}: {msg}", path.display()))
}

fn parse_header(path: &Path, line: &str) -> Result<(usize, usize)> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let nums: Option<Vec<usize>> = if parts.len() == 2 {
        parts.iter().map(|p| p.parse().ok()).collect()
    } else {
        None
    };
    match nums.as_deref() {
        Some(&[n, d]) if d > 0 => Ok((n, d)),
        _ => Err(bad(
            path,
            1,
            format!(
                "expected a header '<count> <dim>', got {:?}",
                truncate(line)
            ),
        )),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

struct Builder {
    out: WordVectors,
    seen: HashSet<String>,
}

impl Builder {
    /// `cap` comes from the file's header: callers bound it by the file size, so a forged
    /// count cannot make the reservation abort the process.
    fn new(dim: usize, cap: usize) -> Self {
        Builder {
            out: WordVectors {
                words: Vec::with_capacity(cap),
                vectors: Vec::with_capacity(cap.saturating_mul(dim).min(1 << 28)),
                dim,
            },
            seen: HashSet::with_capacity(cap),
        }
    }
    fn push(&mut self, word: &str, vec: impl IntoIterator<Item = f32>) {
        if self.seen.insert(word.to_string()) {
            self.out.words.push(word.to_string());
            self.out.vectors.extend(vec);
        }
    }
}

/// Read a text file (`no_header`: GloVe, the dimension taken from the first line).
fn read_text(
    path: &Path,
    bytes: &[u8],
    no_header: bool,
    limit: Option<usize>,
) -> Result<WordVectors> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        bad(path, line, "invalid UTF-8")
    })?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (count, dim, first_data) = if no_header {
        let n = text.lines().filter(|l| !l.trim().is_empty()).count();
        let first = text.lines().next().unwrap_or("");
        let d = first.trim_end().split(' ').count().saturating_sub(1);
        if d == 0 {
            return Err(bad(path, 1, "expected '<word> <number> ...'"));
        }
        (n, d, 1)
    } else {
        let (_, header) = lines
            .next()
            .ok_or_else(|| bad(path, 1, "empty file, expected a header '<count> <dim>'"))?;
        let (n, d) = parse_header(path, header)?;
        (n, d, 2)
    };
    let count = limit.map_or(count, |l| l.min(count));
    // every entry takes at least one byte of the file: bound the header's count and dim by it
    let mut b = Builder::new(dim, count.min(bytes.len()));
    let mut vals = Vec::with_capacity(dim.min(bytes.len()));
    let mut read = 0;
    for (lineno, line) in lines {
        if read == count {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() && no_header {
            continue;
        }
        let mut parts = line.split(' ');
        let word = parts.next().unwrap_or("");
        vals.clear();
        for p in parts {
            // via f64, as gensim (`np.float32(str)` rounds the double), for identical values
            let v: f64 = p.parse().map_err(|_| {
                bad(
                    path,
                    lineno,
                    format!("cannot parse {:?} as a number", truncate(p)),
                )
            })?;
            vals.push(v as f32);
        }
        if vals.len() != dim || word.is_empty() {
            return Err(bad(
                path,
                lineno,
                format!(
                    "expected a word and {dim} numbers, got {} fields",
                    vals.len() + 1
                ),
            ));
        }
        b.push(word, vals.iter().copied());
        read += 1;
    }
    if read < count {
        return Err(bad(
            path,
            read + first_data,
            format!("unexpected end of file: the header promises {count} vectors, found {read}"),
        ));
    }
    Ok(b.out)
}

fn read_binary(path: &Path, bytes: &[u8], limit: Option<usize>) -> Result<WordVectors> {
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad(path, 1, "no header line"))?;
    let header =
        std::str::from_utf8(&bytes[..nl]).map_err(|_| bad(path, 1, "invalid UTF-8 header"))?;
    let (count, dim) = parse_header(path, header)?;
    let count = limit.map_or(count, |l| l.min(count));
    let mut b = Builder::new(dim, count.min(bytes.len()));
    let mut pos = nl + 1;
    let vec_bytes = dim
        .checked_mul(4)
        .ok_or_else(|| bad(path, 1, format!("dimension {dim} is too large")))?;
    for k in 0..count {
        let entry = k + 2; // report the entry as a "line" (1 = header)
        while pos < bytes.len() && bytes[pos] == b'\n' {
            pos += 1;
        }
        let sp = bytes[pos.min(bytes.len())..]
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| {
                bad(
                    path,
                    entry,
                    format!("unexpected end of file after {k} of {count} vectors"),
                )
            })?;
        let word = std::str::from_utf8(&bytes[pos..pos + sp])
            .map_err(|_| bad(path, entry, "word is not valid UTF-8"))?;
        if word.is_empty() {
            return Err(bad(path, entry, "empty word"));
        }
        pos += sp + 1;
        if vec_bytes > bytes.len() - pos {
            return Err(bad(
                path,
                entry,
                format!(
                    "truncated vector for {:?} (entry {} of {count})",
                    truncate(word),
                    k + 1
                ),
            ));
        }
        let raw = &bytes[pos..pos + vec_bytes];
        b.push(
            word,
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        pos += vec_bytes;
    }
    Ok(b.out)
}

/// Read a word-vector file. `binary`: word2vec's binary format; `no_header`: GloVe text.
pub fn read(
    path: &Path,
    binary: bool,
    no_header: bool,
    limit: Option<usize>,
) -> Result<WordVectors> {
    if binary && no_header {
        return Err(Error::invalid("no_header applies to text files only"));
    }
    let bytes = crate::io::open::read_regular(path)?;
    if binary {
        read_binary(path, &bytes, limit)
    } else {
        read_text(path, &bytes, no_header, limit)
    }
}

fn check(words: &[String], vectors: &[f32], dim: usize) -> Result<()> {
    if dim == 0 || vectors.len() != words.len() * dim {
        return Err(Error::shape(format!(
            "vectors hold {} numbers, expected {} words x {dim}",
            vectors.len(),
            words.len()
        )));
    }
    for w in words {
        if w.is_empty() || w.contains([' ', '\n']) {
            return Err(Error::invalid(format!(
                "word {w:?} cannot be written: empty, or contains a space or newline"
            )));
        }
    }
    Ok(())
}

fn write_num(w: &mut dyn Write, v: f32) -> std::io::Result<()> {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        write!(w, "{v:e}")
    } else {
        write!(w, "{v}")
    }
}

/// Write `words` and `vectors` (row-major `(n, dim)`) in word2vec text or binary format,
/// atomically (a temporary file renamed into place).
pub fn write(
    path: &Path,
    words: &[String],
    vectors: &[f32],
    dim: usize,
    binary: bool,
) -> Result<()> {
    check(words, vectors, dim)?;
    write_atomic(path, |w| {
        let io = |e| Error::io(format!("cannot write {}", path.display()), e);
        writeln!(w, "{} {dim}", words.len()).map_err(io)?;
        for (word, row) in words.iter().zip(vectors.chunks_exact(dim)) {
            if binary {
                w.write_all(word.as_bytes()).map_err(io)?;
                w.write_all(b" ").map_err(io)?;
                for v in row {
                    w.write_all(&v.to_le_bytes()).map_err(io)?;
                }
                w.write_all(b"\n").map_err(io)?;
            } else {
                w.write_all(word.as_bytes()).map_err(io)?;
                for &v in row {
                    w.write_all(b" ").map_err(io)?;
                    write_num(w, v).map_err(io)?;
                }
                w.write_all(b"\n").map_err(io)?;
            }
        }
        Ok(())
    })
}

const VOCAB_KEY: &str = "candle_embed.vocab";

/// Write the vectors as tensor `weight` `(n, dim)` float32 in a safetensors file, the words as
/// a JSON list in its metadata (`candle_embed.vocab`); `Embedding::load` reads the table.
pub fn write_safetensors(path: &Path, words: &[String], vectors: &[f32], dim: usize) -> Result<()> {
    check(words, vectors, dim)?;
    let t =
        candle_core::Tensor::from_slice(vectors, (words.len(), dim), &candle_core::Device::Cpu)?;
    let meta = std::collections::HashMap::from([(
        VOCAB_KEY.to_string(),
        serde_json::to_string(words).map_err(|e| Error::invalid(e.to_string()))?,
    )]);
    crate::io::safetensors::save(path, &[("weight", &t)], meta)
}

/// Read a file written by [`write_safetensors`].
pub fn read_safetensors(path: &Path) -> Result<WordVectors> {
    let (mut tensors, meta) = crate::io::safetensors::load(path, &candle_core::Device::Cpu)?;
    let fmt = |m: &str| Error::Format(format!("{}: {m}", path.display()));
    let w = tensors
        .remove("weight")
        .ok_or_else(|| fmt("no tensor named 'weight'"))?;
    let vocab = meta
        .get(VOCAB_KEY)
        .ok_or_else(|| fmt("no word list (metadata key candle_embed.vocab)"))?;
    let words: Vec<String> =
        serde_json::from_str(vocab).map_err(|e| fmt(&format!("bad word list: {e}")))?;
    let (n, dim) = w.dims2().map_err(|_| fmt("'weight' is not 2-D"))?;
    if n != words.len() {
        return Err(fmt(&format!("{} words for {n} vectors", words.len())));
    }
    let vectors = w
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok(WordVectors {
        words,
        vectors,
        dim,
    })
}
