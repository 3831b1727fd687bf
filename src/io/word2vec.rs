//! Word-vector files: word2vec text (also fastText `.vec`), word2vec binary, and header-less
//! text (GloVe). Reading follows gensim's `KeyedVectors.load_word2vec_format`: a header
//! `"<count> <dim>"` (absent with `no_header`), then one word and `dim` numbers per entry (text:
//! one line, fields separated by single spaces, trailing whitespace ignored; binary: the word, a
//! space, `dim` little-endian float32, an optional newline). Any malformed entry is an
//! [`Error::Format`] naming the file and the line (binary: the entry, the header being 1).
//!
//! Two levels:
//! - [`read_raw`] gives the entries as stored: the words' bytes undecoded and duplicates kept,
//!   so that a caller can decode them with any codec and error handler (gensim's `encoding` /
//!   `unicode_errors`) and then drop duplicates of the *decoded* words (two byte strings can
//!   decode to one word under `errors="ignore"`);
//! - [`read`] decodes strict UTF-8 and keeps the first vector of a duplicated word.
//!
//! Writing ([`write_with`]) takes gensim's `save_word2vec_format` options: the header's count
//! (or no header), a prefix before every word, a row order, appending. Values are written in
//! the shortest form that reads back to the same number; binary values are float32.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use candle_core::DType;

use crate::alloc::try_with_capacity;
use crate::dtype::Float;
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

/// The entries of a word-vector file as stored (see [`read_raw`]).
#[derive(Debug, Clone, Default)]
pub struct RawWordVectors {
    /// Each entry's word bytes followed by one space (no word contains a space: both formats
    /// end a word there), undecoded, duplicates kept.
    pub words: Vec<u8>,
    /// The number of entries.
    pub count: usize,
    /// One row of `dim` per entry, row-major.
    pub vectors: Vec<f32>,
    /// The vector size.
    pub dim: usize,
}

/// Which format to read and how much of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// word2vec binary (else text).
    pub binary: bool,
    /// Text without the `"<count> <dim>"` header (GloVe): every non-empty line is an entry.
    pub no_header: bool,
    /// Read at most this many entries.
    pub limit: Option<usize>,
}

fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::Format(format!("{}: line {line}: {msg}", path.display()))
}

fn parse_header(path: &Path, line: &[u8]) -> Result<(usize, usize)> {
    let text = std::str::from_utf8(line).unwrap_or("");
    let parts: Vec<&str> = text.split_whitespace().collect();
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

fn truncate(s: &[u8]) -> String {
    String::from_utf8_lossy(&s[..s.len().min(60)]).into_owned()
}

fn trim_end(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., last] = line {
        if !last.is_ascii_whitespace() {
            break;
        }
        line = rest;
    }
    line
}

/// The entries read so far. Capacities come from the file's header: callers bound them by the
/// file size (every entry takes at least one byte), and the reservation is fallible.
struct Entries {
    out: RawWordVectors,
}

impl Entries {
    fn new(dim: usize, cap: usize) -> Result<Self> {
        Ok(Entries {
            out: RawWordVectors {
                words: Vec::new(),
                count: 0,
                vectors: try_with_capacity(cap.saturating_mul(dim).min(1 << 28))?,
                dim,
            },
        })
    }
    fn push(&mut self, word: &[u8], vec: impl IntoIterator<Item = f32>) {
        self.out.words.extend_from_slice(word);
        self.out.words.push(b' ');
        self.out.vectors.extend(vec);
        self.out.count += 1;
    }
}

/// Parse `field` as a number: via f64, as gensim (`np.float32(str)` rounds the double).
fn number(path: &Path, lineno: usize, field: &[u8]) -> Result<f32> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(|v| v as f32)
        .ok_or_else(|| {
            bad(
                path,
                lineno,
                format!("cannot parse {:?} as a number", truncate(field)),
            )
        })
}

/// Read a text file (`no_header`: GloVe, the dimension taken from the first line).
fn read_text(path: &Path, bytes: &[u8], opts: ReadOptions) -> Result<RawWordVectors> {
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    let (count, dim, first_data) = if opts.no_header {
        let mut non_empty = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !trim_end(l).is_empty());
        let first = non_empty.next().unwrap_or(&[]);
        let d = trim_end(first)
            .split(|&b| b == b' ')
            .count()
            .saturating_sub(1);
        if d == 0 {
            return Err(bad(path, 1, "expected '<word> <number> ...'"));
        }
        (1 + non_empty.count(), d, 1)
    } else {
        if bytes.is_empty() {
            return Err(bad(
                path,
                1,
                "empty file, expected a header '<count> <dim>'",
            ));
        }
        let (_, header) = lines.next().unwrap_or((1, &[]));
        let (n, d) = parse_header(path, header)?;
        (n, d, 2)
    };
    let count = opts.limit.map_or(count, |l| l.min(count));
    let mut entries = Entries::new(dim, count.min(bytes.len()))?;
    let mut vals = Vec::new();
    for (lineno, line) in lines {
        if entries.out.count == count {
            break;
        }
        let line = trim_end(line);
        if line.is_empty() && opts.no_header {
            continue;
        }
        let mut parts = line.split(|&b| b == b' ');
        let word = parts.next().unwrap_or(&[]);
        vals.clear();
        for p in parts {
            if vals.len() == dim {
                vals.push(0.0); // too many fields: reported below
                break;
            }
            vals.push(number(path, lineno, p)?);
        }
        if vals.len() != dim || word.is_empty() {
            return Err(bad(
                path,
                lineno,
                format!(
                    "expected a word and {dim} numbers, got {} fields",
                    line_fields(line)
                ),
            ));
        }
        entries.push(word, vals.iter().copied());
    }
    if entries.out.count < count {
        let read = entries.out.count;
        return Err(bad(
            path,
            read + first_data,
            format!("unexpected end of file: the header promises {count} vectors, found {read}"),
        ));
    }
    Ok(entries.out)
}

fn line_fields(line: &[u8]) -> usize {
    line.split(|&b| b == b' ').count()
}

fn read_binary(path: &Path, bytes: &[u8], limit: Option<usize>) -> Result<RawWordVectors> {
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad(path, 1, "no header line"))?;
    let (count, dim) = parse_header(path, &bytes[..nl])?;
    let count = limit.map_or(count, |l| l.min(count));
    let mut entries = Entries::new(dim, count.min(bytes.len()))?;
    let mut pos = nl + 1;
    let vec_bytes = dim
        .checked_mul(4)
        .ok_or_else(|| bad(path, 1, format!("dimension {dim} is too large")))?;
    for k in 0..count {
        let entry = k + 2; // report the entry as a "line" (1 = header)
        while pos < bytes.len() && bytes[pos] == b'\n' {
            pos += 1; // gensim strips newlines in front of a word
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
        let word = &bytes[pos..pos + sp];
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
        entries.push(
            word,
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        pos += vec_bytes;
    }
    Ok(entries.out)
}

/// Read the entries of a word-vector file as stored (words undecoded, duplicates kept).
pub fn read_raw(path: &Path, opts: ReadOptions) -> Result<RawWordVectors> {
    if opts.binary && opts.no_header {
        return Err(Error::invalid("no_header applies to text files only"));
    }
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    if opts.binary {
        read_binary(path, &bytes, opts.limit)
    } else {
        read_text(path, &bytes, opts)
    }
}

/// Read a word-vector file. `binary`: word2vec's binary format; `no_header`: GloVe text.
/// Words must be UTF-8; a duplicated word keeps its first vector.
pub fn read(
    path: &Path,
    binary: bool,
    no_header: bool,
    limit: Option<usize>,
) -> Result<WordVectors> {
    let raw = read_raw(
        path,
        ReadOptions {
            binary,
            no_header,
            limit,
        },
    )?;
    let dim = raw.dim;
    let mut out = WordVectors {
        words: try_with_capacity(raw.count)?,
        vectors: try_with_capacity(raw.vectors.len())?,
        dim,
    };
    let mut seen = HashSet::new();
    let words = raw.words.split(|&b| b == b' ').take(raw.count);
    for (k, (word, row)) in words.zip(raw.vectors.chunks_exact(dim)).enumerate() {
        let word =
            std::str::from_utf8(word).map_err(|_| bad(path, k + 2, "word is not valid UTF-8"))?;
        if seen.insert(word) {
            out.words.push(word.to_string());
            out.vectors.extend_from_slice(row);
        }
    }
    Ok(out)
}

fn check_word(w: &str) -> Result<()> {
    if w.is_empty() || w.contains([' ', '\n']) {
        return Err(Error::invalid(format!(
            "word {w:?} cannot be written: empty, or contains a space or newline"
        )));
    }
    Ok(())
}

fn check<T>(words: &[String], vectors: &[T], dim: usize) -> Result<()> {
    if dim == 0 || Some(vectors.len()) != words.len().checked_mul(dim) {
        return Err(Error::shape(format!(
            "vectors hold {} numbers, expected {} words x {dim}",
            vectors.len(),
            words.len()
        )));
    }
    words.iter().try_for_each(|w| check_word(w))
}

/// A value in the shortest form that reads back to the same number of its table's type
/// (16-bit values as the float32 they widen to, exactly).
fn write_num(w: &mut dyn Write, v: f64, dtype: DType) -> std::io::Result<()> {
    let a = v.abs();
    let exp = a != 0.0 && !(1e-4..1e16).contains(&a);
    match (dtype, exp) {
        (DType::F64, true) => write!(w, "{v:e}"),
        (DType::F64, false) => write!(w, "{v}"),
        (_, true) => write!(w, "{:e}", v as f32),
        (_, false) => write!(w, "{}", v as f32),
    }
}

/// Options of [`write_with`] (gensim's `save_word2vec_format`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions<'a> {
    /// word2vec binary (values as little-endian float32), else text.
    pub binary: bool,
    /// The count written in the header (gensim's `total_vec`); `None`: no header line.
    pub header: Option<usize>,
    /// Written before every word.
    pub prefix: &'a str,
    /// The rows to write, in this order (default: all, in table order).
    pub order: Option<&'a [usize]>,
    /// Keep the file's current content and add to its end (still an atomic replace).
    pub append: bool,
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
    let opts = WriteOptions {
        binary,
        header: Some(words.len()),
        prefix: "",
        order: None,
        append: false,
    };
    write_with(path, words, vectors, dim, opts)
}

/// Write with gensim's options ([`WriteOptions`]), atomically. Words and the prefix must not
/// contain a space or a newline (the file could not be read back).
pub fn write_with<T: Float>(
    path: &Path,
    words: &[String],
    vectors: &[T],
    dim: usize,
    opts: WriteOptions<'_>,
) -> Result<()> {
    check(words, vectors, dim)?;
    if !opts.prefix.is_empty() {
        check_word(opts.prefix)?;
    }
    if let Some(&bad_row) = opts
        .order
        .and_then(|o| o.iter().find(|&&r| r >= words.len()))
    {
        return Err(Error::IndexOutOfRange {
            what: "row",
            index: bad_row as i128,
            container: "the vectors",
            size: words.len(),
        });
    }
    let before = if opts.append && path.exists() {
        std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?
    } else {
        Vec::new()
    };
    let all: Vec<usize>;
    let order = match opts.order {
        Some(o) => o,
        None => {
            all = crate::alloc::try_collect(0..words.len())?;
            &all
        }
    };
    write_atomic(path, |w| {
        let io = |e| Error::io(format!("cannot write {}", path.display()), e);
        w.write_all(&before).map_err(io)?;
        if let Some(total) = opts.header {
            writeln!(w, "{total} {dim}").map_err(io)?;
        }
        for &r in order {
            let row = &vectors[r * dim..(r + 1) * dim];
            w.write_all(opts.prefix.as_bytes()).map_err(io)?;
            w.write_all(words[r].as_bytes()).map_err(io)?;
            if opts.binary {
                w.write_all(b" ").map_err(io)?;
                for v in row {
                    w.write_all(&(v.as_f64() as f32).to_le_bytes())
                        .map_err(io)?;
                }
            } else {
                for v in row {
                    w.write_all(b" ").map_err(io)?;
                    write_num(w, v.as_f64(), T::DT).map_err(io)?;
                }
            }
            w.write_all(b"\n").map_err(io)?;
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
