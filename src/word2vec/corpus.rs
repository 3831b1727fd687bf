//! A tokenized corpus held as interned word ids, read once and trained on for every epoch.
//!
//! Two sources, with gensim's semantics:
//! - sentences given as lists of tokens ([`Corpus::push_sentence`]): every list is one example
//!   (an empty list too, as gensim counts it in `corpus_count`);
//! - text, one sentence per line ([`Corpus::push_line`], [`LineReader`]): gensim's
//!   `LineSentence` — lines end at `\n`, tokens are separated by whitespace (Python's
//!   `str.split()`), empty lines are no sentence, and the text must be UTF-8: a NUL byte or an
//!   invalid UTF-8 sequence means the input is not text (a binary or compressed file), which is
//!   refused with the byte offset instead of training on garbage.
//!
//! Sentences longer than `max_sentence_length` words (gensim's `MAX_WORDS_IN_BATCH`, 10 000)
//! are split into pieces of at most that many words, as `LineSentence` does; the pieces of one
//! list count as one example.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::alloc::checked_count;
use crate::{Error, Result};

/// gensim's `MAX_WORDS_IN_BATCH`: the default longest sentence, and the size of a training job.
pub const MAX_SENTENCE_LEN: usize = 10_000;

/// Interned tokens: `words[i]` has raw count `counts[i]`; stored sentence `s` is
/// `tokens[offsets[s]..offsets[s + 1]]`, and `example_ends[s]` examples (input sentences) are
/// complete once it has been read.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Distinct words, in order of first occurrence.
    pub words: Vec<String>,
    /// Raw count of each word.
    pub counts: Vec<u64>,
    /// Every sentence's word ids, one after the other.
    pub tokens: Vec<u32>,
    /// `num_sentences + 1` offsets into `tokens`.
    pub offsets: Vec<usize>,
    /// Examples (gensim's `corpus_count` unit) complete at the end of each stored sentence.
    pub example_ends: Vec<u64>,
    max_len: usize,
    index: HashMap<String, u32>,
}

impl Default for Corpus {
    fn default() -> Self {
        Corpus::new()
    }
}

/// Python's `str.split()` separators: Unicode whitespace plus the ASCII information separators
/// U+001C..U+001F, which `str.isspace` also counts.
pub fn is_separator(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

impl Corpus {
    /// An empty corpus splitting sentences at [`MAX_SENTENCE_LEN`] words.
    pub fn new() -> Self {
        Corpus {
            words: Vec::new(),
            counts: Vec::new(),
            tokens: Vec::new(),
            offsets: vec![0],
            example_ends: Vec::new(),
            max_len: MAX_SENTENCE_LEN,
            index: HashMap::new(),
        }
    }

    /// An empty corpus splitting sentences at `max_sentence_length` words (>= 1).
    pub fn with_max_sentence_length(max_sentence_length: usize) -> Result<Self> {
        if max_sentence_length == 0 {
            return Err(Error::invalid("max_sentence_length must be >= 1, got 0"));
        }
        Ok(Corpus {
            max_len: max_sentence_length,
            ..Corpus::new()
        })
    }

    fn intern(&mut self, word: &str) -> Result<u32> {
        if let Some(&id) = self.index.get(word) {
            self.counts[id as usize] += 1;
            return Ok(id);
        }
        let id = u32::try_from(self.words.len())
            .ok()
            .filter(|&id| id < u32::MAX)
            .ok_or_else(|| Error::invalid("the corpus has more than 2**32 - 2 distinct words"))?;
        self.words.push(word.to_string());
        self.counts.push(1);
        self.index.insert(word.to_string(), id);
        Ok(id)
    }

    fn end_sentence(&mut self, completes_example: bool) {
        self.offsets.push(self.tokens.len());
        let before = self.example_ends.last().copied().unwrap_or(0);
        self.example_ends
            .push(before + u64::from(completes_example));
    }

    /// Append `words`, ending a stored sentence every `max_len` words (one that completes an
    /// example when `pieces_complete`: `LineSentence` makes each piece an example); the last
    /// piece is left open. Returns the number of words.
    fn push_words<'a>(
        &mut self,
        words: impl IntoIterator<Item = &'a str>,
        pieces_complete: bool,
    ) -> Result<usize> {
        let mut n = 0;
        let mut total = 0;
        for w in words {
            if n == self.max_len {
                self.end_sentence(pieces_complete);
                n = 0;
            }
            let id = self.intern(w)?;
            self.tokens.push(id);
            n += 1;
            total += 1;
        }
        Ok(total)
    }

    /// Append one example (a list of tokens), split into pieces of at most
    /// `max_sentence_length` words; an empty list is an empty example.
    pub fn push_sentence<'a>(&mut self, words: impl IntoIterator<Item = &'a str>) -> Result<()> {
        self.push_words(words, false)?;
        self.end_sentence(true);
        Ok(())
    }

    /// Append one line of text (`LineSentence`): whitespace-separated tokens; an empty line adds
    /// nothing, a long one adds one example per piece.
    pub fn push_line(&mut self, line: &str) -> Result<()> {
        let words = line.split(is_separator).filter(|w| !w.is_empty());
        if self.push_words(words, true)? > 0 {
            self.end_sentence(true);
        }
        Ok(())
    }

    /// Read a UTF-8 text file, one sentence per line (at most `limit` lines). Compressed files
    /// are refused here (their bytes are not text): the Python layer decompresses `.gz`, `.bz2`
    /// and `.xz` and feeds a [`LineReader`].
    pub fn from_file(path: &Path, limit: Option<u64>) -> Result<Self> {
        let mut c = Corpus::new();
        c.read_file(path, limit)?;
        Ok(c)
    }

    /// Append the lines of a UTF-8 text file (see [`Corpus::from_file`]).
    pub fn read_file(&mut self, path: &Path, limit: Option<u64>) -> Result<()> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("cannot read corpus {name}"), e))?;
        if meta.is_dir() {
            return Err(Error::invalid(format!(
                "corpus {name} is a directory, not a file"
            )));
        }
        // The one opener: a FIFO, socket or device is refused instead of read (or waited on).
        let file = crate::io::open::open_regular(path)?;
        self.read_from(file, &name, limit)
    }

    /// Append the lines of any reader of UTF-8 text.
    pub fn read_from(&mut self, mut r: impl Read, name: &str, limit: Option<u64>) -> Result<()> {
        let mut lines = LineReader::new(name, limit);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(format!("cannot read corpus {name}"), e)),
            };
            if !lines.feed(self, &buf[..n])? {
                break;
            }
        }
        lines.finish(self)
    }

    /// A corpus of word counts without text (gensim's `build_vocab_from_freq`); `examples`
    /// is its `corpus_count`. A repeated word adds up.
    pub fn from_counts<'a>(
        words: impl IntoIterator<Item = (&'a str, u64)>,
        examples: u64,
    ) -> Result<Self> {
        let mut c = Corpus::new();
        for (w, n) in words {
            let id = c.intern(w)? as usize;
            // `intern` counted one occurrence; the count is `n`
            c.counts[id] = (c.counts[id] - 1)
                .checked_add(n)
                .ok_or_else(|| Error::invalid(format!("the count of {w:?} overflows 64 bits")))?;
        }
        c.example_ends.push(examples);
        c.offsets.push(0);
        Ok(c)
    }

    /// The id of `word`, if the corpus has it.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// Number of stored sentences (long ones count once per piece).
    pub fn num_sentences(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of examples: gensim's `corpus_count`.
    pub fn num_examples(&self) -> u64 {
        self.example_ends.last().copied().unwrap_or(0)
    }

    /// Total number of tokens (gensim's `corpus_total_words`).
    pub fn num_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// `num_tokens x epochs`, refused when it does not fit in 64 bits.
    pub fn words_times(&self, epochs: u64) -> Result<u64> {
        checked_count(self.num_tokens() as u64, epochs, "corpus words x epochs")
    }
}

/// Splits a byte stream into lines for [`Corpus::push_line`], across chunk boundaries, and
/// refuses input that is not UTF-8 text (naming the byte offset).
pub struct LineReader {
    name: String,
    pending: Vec<u8>,
    offset: u64,
    lines: u64,
    limit: Option<u64>,
}

impl LineReader {
    /// A reader for the stream called `name` (used in errors), keeping at most `limit` lines.
    pub fn new(name: &str, limit: Option<u64>) -> Self {
        LineReader {
            name: name.to_string(),
            pending: Vec::new(),
            offset: 0,
            lines: 0,
            limit,
        }
    }

    fn not_text(&self, at: u64, what: &str) -> Error {
        Error::invalid(format!(
            "corpus {} is not UTF-8 text ({what} at byte {at}): a binary file? \
             (.gz, .bz2 and .xz files are decompressed when their content is compressed)",
            self.name
        ))
    }

    fn line(&mut self, corpus: &mut Corpus, bytes: &[u8], start: u64) -> Result<()> {
        if let Some(p) = memchr0(bytes) {
            return Err(self.not_text(start + p as u64, "a NUL byte"));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            self.not_text(
                start + e.valid_up_to() as u64,
                &format!("invalid byte 0x{:02x}", bytes[e.valid_up_to()]),
            )
        })?;
        corpus.push_line(text)?;
        self.lines += 1;
        Ok(())
    }

    fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.lines >= l)
    }

    /// Add a chunk of the stream; returns `false` once `limit` lines have been read.
    pub fn feed(&mut self, corpus: &mut Corpus, chunk: &[u8]) -> Result<bool> {
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            if self.done() {
                return Ok(false);
            }
            let start = self.offset - self.pending.len() as u64;
            if self.pending.is_empty() {
                self.line(corpus, &rest[..nl], start)?;
            } else {
                let mut whole = std::mem::take(&mut self.pending);
                whole.extend_from_slice(&rest[..nl]);
                self.line(corpus, &whole, start)?;
            }
            self.offset += nl as u64 + 1;
            rest = &rest[nl + 1..];
        }
        self.pending.extend_from_slice(rest);
        self.offset += rest.len() as u64;
        Ok(!self.done())
    }

    /// The last line (without a final newline).
    pub fn finish(&mut self, corpus: &mut Corpus) -> Result<()> {
        if !self.pending.is_empty() && !self.done() {
            let whole = std::mem::take(&mut self.pending);
            let start = self.offset - whole.len() as u64;
            self.line(corpus, &whole, start)?;
        }
        Ok(())
    }
}

fn memchr0(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}
