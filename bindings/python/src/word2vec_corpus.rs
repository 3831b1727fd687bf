//! word2vec corpora: `_native._W2VCorpus`, a corpus read once (from token lists, or from
//! files and readers chunk by chunk) as interned ids, and `_w2v_split` (LineSentence's
//! tokenizer). Translation only; the reading is `candle_embed::word2vec::corpus`.

use candle_embed::word2vec::{corpus::is_separator, Corpus, LineReader};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::args;
use crate::errors::{type_error, value_error, IntoPyResult};
use crate::gil::without_gil;
/// A token as an owned string: a `str` without lone surrogates.
fn token(tok: &Bound<'_, PyAny>, i: usize) -> PyResult<String> {
    let s = tok.cast::<PyString>().map_err(|_| {
        type_error(format!(
            "sentence {i}: tokens must be str, got {}",
            tok.get_type()
        ))
    })?;
    s.to_cow().map(|c| c.into_owned()).map_err(|_| {
        value_error(format!(
            "sentence {i}: a token is not valid Unicode (a lone surrogate)"
        ))
    })
}

/// A corpus read once and trained on for every epoch (see `candle_embed::word2vec::corpus`).
#[pyclass(frozen, name = "_W2VCorpus", module = "candle_embed._native")]
pub struct PyW2VCorpus {
    pub(crate) inner: Corpus,
}

#[pymethods]
impl PyW2VCorpus {
    /// Intern an iterable of token lists (each a list of str; one example each).
    #[staticmethod]
    #[pyo3(signature = (sentences, max_sentence_length=10000))]
    fn from_sentences(
        sentences: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::size)] max_sentence_length: usize,
    ) -> PyResult<Self> {
        if sentences.is_instance_of::<PyString>() || sentences.is_instance_of::<PyBytes>() {
            return Err(type_error(
                "sentences must be an iterable of token lists, not a string \
                 (use corpus_file= or LineSentence(path) for a file)",
            ));
        }
        let mut corpus = Corpus::with_max_sentence_length(max_sentence_length).py()?;
        let mut words: Vec<String> = Vec::new();
        let iter = sentences
            .try_iter()
            .map_err(|_| type_error("sentences must be an iterable of token lists"))?;
        for (i, sent) in iter.enumerate() {
            let sent = sent?;
            if sent.is_instance_of::<PyString>() {
                return Err(type_error(format!(
                    "sentence {i} is a string; each sentence must be a list of tokens"
                )));
            }
            words.clear();
            let toks = sent
                .try_iter()
                .map_err(|_| type_error(format!("sentence {i} is not an iterable of tokens")))?;
            for tok in toks {
                words.push(token(&tok?, i)?);
            }
            corpus
                .push_sentence(words.iter().map(|s| s.as_str()))
                .py()?;
        }
        Ok(PyW2VCorpus { inner: corpus })
    }

    /// Read text sources one after the other (`LineSentence` semantics): each is a path of a
    /// plain text file (read here) or a callable `read(n) -> bytes` (a decompressing stream);
    /// `names` are used in errors; at most `limit` lines per source.
    #[staticmethod]
    #[pyo3(signature = (sources, names, limit=None, max_sentence_length=10000))]
    fn from_sources(
        py: Python<'_>,
        sources: Vec<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = args::texts)] names: Vec<String>,
        #[pyo3(from_py_with = args::opt_unsigned)] limit: Option<u64>,
        #[pyo3(from_py_with = args::size)] max_sentence_length: usize,
    ) -> PyResult<Self> {
        let mut corpus = Corpus::with_max_sentence_length(max_sentence_length).py()?;
        for (src, name) in sources.iter().zip(&names) {
            if !src.is_callable() {
                let path = args::path(src)?;
                let mut c = std::mem::take(&mut corpus);
                let r = without_gil(py, || c.read_file(&path, limit).map(|_| c));
                corpus = r?;
                continue;
            }
            let mut lines = LineReader::new(name, limit);
            loop {
                let chunk = src.call1((1usize << 20,))?;
                let bytes = chunk
                    .cast::<PyBytes>()
                    .map_err(|_| type_error("read() must return bytes"))?;
                let data = bytes.as_bytes();
                if data.is_empty() || !lines.feed(&mut corpus, data).py()? {
                    break;
                }
            }
            lines.finish(&mut corpus).py()?;
        }
        Ok(PyW2VCorpus { inner: corpus })
    }

    /// Examples (gensim's `corpus_count`).
    #[getter]
    fn examples(&self) -> u64 {
        self.inner.num_examples()
    }

    /// Raw words (gensim's `corpus_total_words`).
    #[getter]
    fn total_words(&self) -> usize {
        self.inner.num_tokens()
    }

    /// The stored sentences as lists of words (for tests and small corpora).
    fn sentences(&self) -> Vec<Vec<String>> {
        let c = &self.inner;
        (0..c.num_sentences())
            .map(|s| {
                c.tokens[c.offsets[s]..c.offsets[s + 1]]
                    .iter()
                    .map(|&t| c.words[t as usize].clone())
                    .collect()
            })
            .collect()
    }
}

impl Default for PyW2VCorpus {
    fn default() -> Self {
        PyW2VCorpus {
            inner: Corpus::new(),
        }
    }
}

/// Python's `str.split()` of `line` (the tokenizer of `LineSentence`), for tests.
#[pyfunction]
pub fn _w2v_split(#[pyo3(from_py_with = args::text)] line: String) -> Vec<String> {
    line.split(is_separator)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}
