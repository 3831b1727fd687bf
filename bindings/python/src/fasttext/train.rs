//! `_ft_train`: the interim FastText trainer (`candle_embed::fasttext::train`), from sentences
//! or a corpus file, with a progress callback and Ctrl-C.

use std::path::PathBuf;

use candle_embed::fasttext::train::{self, FastTextConfig};
use candle_embed::fasttext::Subwords;
use candle_embed::word2vec::{Corpus, TrainConfig, Vocab};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args;
use crate::arrays::vec_output;
use crate::errors::{value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::word2vec::corpus_from_sentences;

/// Run `work` without the GIL, with a progress callback that reacquires the GIL about ten
/// times a second to check for Ctrl-C and call `progress(done, total)`; a signal or an
/// exception from `progress` stops the work and is what the call raises.
fn with_progress<T: Send>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    work: impl FnOnce(&mut dyn FnMut(u64, u64) -> bool) -> candle_embed::Result<T> + Send,
) -> PyResult<T> {
    let mut py_err: Option<PyErr> = None;
    let result = {
        let mut cb = |done: u64, total: u64| -> bool {
            Python::attach(|py| {
                let outcome = py.check_signals().and_then(|()| match &progress {
                    Some(f) => f.call1(py, (done, total)).map(drop),
                    None => Ok(()),
                });
                outcome.map_err(|e| py_err = Some(e)).is_ok()
            })
        };
        without_gil(py, || work(&mut cb))
    };
    match py_err {
        Some(e) => Err(e),
        None => result,
    }
}

/// Train FastText vectors; returns `(words, counts, input, output, stats)` with `input` the
/// `(len(words) + bucket, vector_size)` table and `output` the negative-sampling layer.
#[pyfunction]
#[pyo3(signature = (sentences=None, corpus_file=None, *, vector_size=100, window=5,
    min_count=5, negative=5, epochs=5, alpha=0.025, min_alpha=0.0001, sample=1e-3, seed=1,
    workers=2, sg=true, cbow_mean=true, ns_exponent=0.75, min_n=3, max_n=6, bucket=2000000,
    progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn _ft_train<'py>(
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
    sg: bool,
    cbow_mean: bool,
    ns_exponent: f64,
    #[pyo3(from_py_with = args::size)] min_n: usize,
    #[pyo3(from_py_with = args::size)] max_n: usize,
    #[pyo3(from_py_with = args::size)] bucket: usize,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let cfg = FastTextConfig {
        train: TrainConfig {
            vector_size,
            window,
            negative,
            epochs,
            alpha,
            min_alpha,
            seed,
            workers,
        },
        sg,
        cbow_mean,
    };
    cfg.train.validate().py()?;
    let sub = Subwords::new(min_n, max_n, bucket).py()?;
    if !ns_exponent.is_finite() {
        return Err(value_error(format!(
            "ns_exponent must be finite, got {ns_exponent}"
        )));
    }
    let corpus = match (sentences, corpus_file) {
        (Some(s), None) => corpus_from_sentences(s)?,
        (None, Some(p)) => without_gil(py, || Corpus::from_file(&p))?,
        _ => return Err(value_error("give exactly one of sentences and corpus_file")),
    };
    let vocab = without_gil(py, || Vocab::build(&corpus, min_count, sample, ns_exponent))?;
    let trained = with_progress(py, progress, |cb| {
        train::train(&corpus, &vocab, &sub, &cfg, cb)
    })?;
    let n = vocab.len();
    let input = vec_output(py, trained.input, &[n + sub.bucket, vector_size])?;
    let output = vec_output(py, trained.output, &[n, vector_size])?;
    let counts = vec_output(py, vocab.counts.clone(), &[n])?;
    let stats = PyDict::new(py);
    stats.set_item("raw_words", trained.raw_words)?;
    stats.set_item("effective_words", trained.effective_words)?;
    stats.set_item("corpus_words", corpus.num_tokens())?;
    stats.set_item("sentences", corpus.num_sentences())?;
    Ok((vocab.words, counts, input, output, stats)
        .into_pyobject(py)?
        .into_any())
}
