//! word2vec: training (`_w2v_train`) and word-vector files. Translation only; the work is in
//! `candle_embed::word2vec` and `candle_embed::io::word2vec`.

use std::path::PathBuf;

use candle_embed::io::word2vec as fmt;
use candle_embed::word2vec::{self, Corpus, TrainConfig, Vocab};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::args;
use crate::arrays::{vec_output, Floats};
use crate::errors::{type_error, value_error};
use crate::gil::without_gil;

/// A corpus from an iterable of token lists (shared with FastText training).
pub(crate) fn corpus_from_sentences(sentences: &Bound<'_, PyAny>) -> PyResult<Corpus> {
    if sentences.is_instance_of::<PyString>() {
        return Err(type_error(
            "sentences must be an iterable of token lists, not a string \
             (use corpus_file= for a file path)",
        ));
    }
    let mut corpus = Corpus::new();
    let mut words: Vec<String> = Vec::new();
    for (i, sent) in sentences.try_iter()?.enumerate() {
        let sent = sent?;
        if sent.is_instance_of::<PyString>() {
            return Err(type_error(format!(
                "sentence {i} is a string; each sentence must be a list of tokens"
            )));
        }
        words.clear();
        for tok in sent.try_iter()? {
            let tok = tok?;
            let s = tok.cast::<PyString>().map_err(|_| {
                type_error(format!(
                    "sentence {i}: tokens must be str, got {}",
                    tok.get_type()
                ))
            })?;
            words.push(s.to_cow()?.into_owned());
        }
        corpus.push_sentence(words.iter().map(|s| s.as_str()));
    }
    if corpus.num_tokens() == 0 {
        return Err(value_error("the corpus is empty (no words in sentences)"));
    }
    Ok(corpus)
}

/// Train skip-gram vectors; returns `(words, counts, vectors, stats)`.
#[pyfunction]
#[pyo3(signature = (sentences=None, corpus_file=None, *, vector_size=100, window=5,
    min_count=5, negative=5, epochs=5, alpha=0.025, min_alpha=0.0001, sample=1e-3, seed=1,
    workers=2, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn _w2v_train<'py>(
    py: Python<'py>,
    sentences: Option<&Bound<'py, PyAny>>,
    corpus_file: Option<PathBuf>,
    #[pyo3(from_py_with = args::size)] vector_size: usize,
    #[pyo3(from_py_with = args::size)] window: usize,
    #[pyo3(from_py_with = args::unsigned)] min_count: u64,
    #[pyo3(from_py_with = args::size)] negative: usize,
    #[pyo3(from_py_with = args::size)] epochs: usize,
    alpha: f32,
    min_alpha: f32,
    sample: f64,
    #[pyo3(from_py_with = args::unsigned)] seed: u64,
    #[pyo3(from_py_with = args::size)] workers: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let cfg = TrainConfig {
        vector_size,
        window,
        negative,
        epochs,
        alpha,
        min_alpha,
        seed,
        workers,
    };
    cfg.validate().map_err(crate::errors::to_py)?;
    let corpus = match (sentences, corpus_file) {
        (Some(s), None) => corpus_from_sentences(s)?,
        (None, Some(p)) => without_gil(py, || Corpus::from_file(&p))?,
        _ => return Err(value_error("give exactly one of sentences and corpus_file")),
    };
    let vocab = without_gil(py, || Vocab::build(&corpus, min_count, sample, 0.75))?;
    let mut py_err: Option<PyErr> = None;
    let trained = {
        let mut cb = |done: u64, total: u64| -> bool {
            Python::attach(|py| {
                if let Err(e) = py.check_signals() {
                    py_err = Some(e);
                    return false;
                }
                if let Some(f) = &progress {
                    if let Err(e) = f.call1(py, (done, total)) {
                        py_err = Some(e);
                        return false;
                    }
                }
                true
            })
        };
        without_gil(py, || word2vec::train(&corpus, &vocab, &cfg, &mut cb))
    };
    if let Some(e) = py_err {
        return Err(e);
    }
    let trained = trained?;
    let n = vocab.len();
    let vectors = vec_output(py, trained.vectors, &[n, vector_size])?;
    let counts = vec_output(py, vocab.counts.clone(), &[n])?;
    let stats = PyDict::new(py);
    stats.set_item("raw_words", trained.raw_words)?;
    stats.set_item("effective_words", trained.effective_words)?;
    stats.set_item("corpus_words", corpus.num_tokens())?;
    stats.set_item("sentences", corpus.num_sentences())?;
    let out = (vocab.words, counts, vectors, stats).into_pyobject(py)?;
    Ok(out.into_any())
}

/// Read word vectors: `(words, vectors)`; `fmt`: "text", "binary", "glove" or "safetensors".
#[pyfunction]
#[pyo3(signature = (path, fmt_kind, limit=None))]
pub fn _read_word_vectors<'py>(
    py: Python<'py>,
    path: PathBuf,
    fmt_kind: &str,
    #[pyo3(from_py_with = args::opt_size)] limit: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = fmt_kind.to_string();
    let wv = without_gil(py, || match kind.as_str() {
        "text" => fmt::read(&path, false, false, limit),
        "binary" => fmt::read(&path, true, false, limit),
        "glove" => fmt::read(&path, false, true, limit),
        "safetensors" => fmt::read_safetensors(&path),
        other => Err(candle_embed::Error::InvalidArgument(format!(
            "unknown word-vector format {other:?}"
        ))),
    })?;
    let n = wv.words.len();
    let arr = vec_output(py, wv.vectors, &[n, wv.dim])?;
    Ok((wv.words, arr).into_pyobject(py)?.into_any())
}

/// Write word vectors atomically; `fmt_kind`: "text", "binary" or "safetensors".
#[pyfunction]
pub fn _write_word_vectors(
    py: Python<'_>,
    path: PathBuf,
    words: Vec<String>,
    vectors: &Bound<'_, PyAny>,
    fmt_kind: &str,
) -> PyResult<()> {
    let arr = Floats::<f32>::read(vectors, "vectors")?;
    let dim = match *arr.shape() {
        [n, dim] if n == words.len() => dim,
        _ => {
            return Err(value_error(format!(
                "vectors must have shape ({}, dim), got {:?}",
                words.len(),
                arr.shape()
            )))
        }
    };
    let data = arr.values();
    let kind = fmt_kind.to_string();
    without_gil(py, || match kind.as_str() {
        "text" => fmt::write(&path, &words, data, dim, false),
        "binary" => fmt::write(&path, &words, data, dim, true),
        "safetensors" => fmt::write_safetensors(&path, &words, data, dim),
        other => Err(candle_embed::Error::InvalidArgument(format!(
            "unknown word-vector format {other:?}"
        ))),
    })
}
