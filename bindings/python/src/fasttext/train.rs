//! `_ft_train`: FastText training (`candle_embed::fasttext::train`, on the word2vec trainer)
//! over a corpus read once (`_W2VCorpus`), with a progress callback and Ctrl-C.

use candle_embed::fasttext::train::{self, FastTextConfig};
use candle_embed::fasttext::Subwords;
use candle_embed::word2vec::{Params, Vocab};

use crate::word2vec_train::train_mode;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args;
use crate::arrays::vec_output;
use crate::errors::IntoPyResult;
use crate::gil::without_gil;
use crate::word2vec_corpus::PyW2VCorpus;

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

/// Train FastText vectors on `corpus`; returns `(words, counts, input, syn1, syn1neg, stats)`
/// with `input` the `(len(words) + bucket, vector_size)` table and `syn1` / `syn1neg` the
/// `(len(words), vector_size)` output layers (`None` when that loss is off).
#[pyfunction]
#[pyo3(signature = (corpus, *, vector_size=100, window=5, min_count=5, sg=true, hs=false,
    negative=5, cbow_mean=true, epochs=5, alpha=0.025, min_alpha=0.0001, sample=1e-3,
    seed=1, workers=2, ns_exponent=0.75, shrink_windows=true, min_n=3, max_n=6,
    bucket=2000000, batch_words=10000, progress=None, deterministic=false))]
#[allow(clippy::too_many_arguments)]
pub fn _ft_train<'py>(
    py: Python<'py>,
    corpus: &Bound<'py, PyW2VCorpus>,
    #[pyo3(from_py_with = args::size)] vector_size: usize,
    #[pyo3(from_py_with = args::size)] window: usize,
    #[pyo3(from_py_with = args::unsigned)] min_count: u64,
    #[pyo3(from_py_with = args::flag)] sg: bool,
    #[pyo3(from_py_with = args::flag)] hs: bool,
    #[pyo3(from_py_with = args::size)] negative: usize,
    #[pyo3(from_py_with = args::flag)] cbow_mean: bool,
    #[pyo3(from_py_with = args::unsigned)] epochs: u64,
    #[pyo3(from_py_with = args::real)] alpha: f64,
    #[pyo3(from_py_with = args::real)] min_alpha: f64,
    #[pyo3(from_py_with = args::real)] sample: f64,
    #[pyo3(from_py_with = args::unsigned)] seed: u64,
    #[pyo3(from_py_with = args::size)] workers: usize,
    #[pyo3(from_py_with = args::real)] ns_exponent: f64,
    #[pyo3(from_py_with = args::flag)] shrink_windows: bool,
    #[pyo3(from_py_with = args::size)] min_n: usize,
    #[pyo3(from_py_with = args::size)] max_n: usize,
    #[pyo3(from_py_with = args::size)] bucket: usize,
    #[pyo3(from_py_with = args::size)] batch_words: usize,
    progress: Option<Py<PyAny>>,
    deterministic: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let params = Params {
        vector_size,
        sg,
        hs,
        negative,
        cbow_mean,
        window,
        shrink_windows,
        ns_exponent,
        seed,
    };
    params.validate().py()?;
    let cfg = FastTextConfig {
        params,
        subwords: Subwords::new(min_n, max_n, bucket).py()?,
        epochs,
        alpha,
        min_alpha,
        workers,
        batch_words,
        mode: train_mode(deterministic),
    };
    let corpus = &corpus.get().inner;
    let vocab = without_gil(py, || Vocab::build(corpus, min_count, sample, ns_exponent))?;
    let (words, counts) = (vocab.words.clone(), vocab.counts.clone());
    let trained = with_progress(py, progress, |cb| train::train(corpus, vocab, &cfg, cb))?;
    let n = words.len();
    let layer = |t: Vec<f32>| -> PyResult<Option<Bound<'py, PyAny>>> {
        match t.is_empty() {
            true => Ok(None),
            false => vec_output(py, t, &[n, vector_size]).map(Some),
        }
    };
    let input = vec_output(py, trained.input, &[n + bucket, vector_size])?;
    let syn1 = layer(trained.syn1)?;
    let syn1neg = layer(trained.syn1neg)?;
    let counts = vec_output(py, counts, &[n])?;
    let s = trained.stats;
    let stats = PyDict::new(py);
    stats.set_item("raw_words", s.raw_words)?;
    stats.set_item("effective_words", s.effective_words)?;
    stats.set_item("examples", s.examples)?;
    stats.set_item("jobs", s.jobs)?;
    stats.set_item("corpus_words", corpus.num_tokens())?;
    stats.set_item("sentences", corpus.num_examples())?;
    Ok((words, counts, input, syn1, syn1neg, stats)
        .into_pyobject(py)?
        .into_any())
}
