//! A tokenized corpus held as interned word ids: whitespace-split lines (gensim's
//! `LineSentence`), or sentences given as lists of tokens. Sentences longer than
//! [`MAX_SENTENCE_LEN`] words are split, as gensim does.

use std::collections::HashMap;
use std::path::Path;

use crate::{Error, Result};

/// gensim's `MAX_WORDS_IN_BATCH`: the longest sentence, and the size of a training job.
pub const MAX_SENTENCE_LEN: usize = 10_000;

/// Interned tokens: `words[i]` has raw count `counts[i]`; sentence `s` is
/// `tokens[offsets[s]..offsets[s + 1]]`.
#[derive(Default, Debug, Clone)]
pub struct Corpus {
    /// Distinct words, in order of first occurrence.
    pub words: Vec<String>,
    /// Raw count of each word.
    pub counts: Vec<u64>,
    /// Every sentence's word ids, one after the other.
    pub tokens: Vec<u32>,
    /// `num_sentences + 1` offsets into `tokens`.
    pub offsets: Vec<usize>,
    index: HashMap<String, u32>,
}

impl Corpus {
    /// An empty corpus.
    pub fn new() -> Self {
        Corpus {
            offsets: vec![0],
            ..Default::default()
        }
    }

    fn intern(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.index.get(word) {
            self.counts[id as usize] += 1;
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(word.to_string());
        self.counts.push(1);
        self.index.insert(word.to_string(), id);
        id
    }

    /// Append one sentence (split into pieces of at most `MAX_SENTENCE_LEN` words).
    pub fn push_sentence<'a>(&mut self, words: impl IntoIterator<Item = &'a str>) {
        let mut n = 0;
        for w in words {
            if n == MAX_SENTENCE_LEN {
                self.offsets.push(self.tokens.len());
                n = 0;
            }
            let id = self.intern(w);
            self.tokens.push(id);
            n += 1;
        }
        if n > 0 {
            self.offsets.push(self.tokens.len());
        }
    }

    /// Read a UTF-8 text file: one sentence per line, tokens separated by whitespace.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = crate::io::open::read_regular(path)?;
        let text = String::from_utf8_lossy(&bytes);
        let mut c = Corpus::new();
        for line in text.lines() {
            c.push_sentence(line.split_whitespace());
        }
        if c.tokens.is_empty() {
            return Err(Error::invalid(format!(
                "corpus {} is empty (no words)",
                path.display()
            )));
        }
        Ok(c)
    }

    /// Number of sentences.
    pub fn num_sentences(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Total number of tokens.
    pub fn num_tokens(&self) -> usize {
        self.tokens.len()
    }
}
