//! word2vec training: `_native._W2VModel` (vocabulary + tables, trained one epoch per call) on
//! a `_native._W2VCorpus` (`word2vec_corpus`). Translation only; the work is in
//! `candle_embed::word2vec`. `candle_embed.word2vec` is the Python face.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use candle_embed::word2vec::{
    persist, scan, Corpus, EpochPlan, Model, Params, RawVocab, Rule, TrainMode, Vocab, VocabReport,
    VocabSettings,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args;
use crate::arrays::{vec_output, Floats};
use crate::errors::{runtime_error, value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::word2vec_corpus::{_w2v_split, PyW2VCorpus};

/// The model: vocabulary and tables behind a lock held by one call at a time.
#[pyclass(frozen, name = "_W2VModel", module = "candle_embed._native")]
pub struct PyW2VModel {
    inner: Mutex<Model>,
    /// Thread holding `inner` (0: none), to refuse a call from the model's own callback.
    owner: AtomicU64,
}

fn thread_key() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::thread::current().id().hash(&mut h);
    h.finish() | 1
}

impl PyW2VModel {
    /// Run `f` on the locked model without the GIL (callbacks inside may take it back).
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Model) -> candle_embed::Result<T> + Send,
    ) -> PyResult<T> {
        let me = thread_key();
        if self.owner.load(Ordering::Acquire) == me {
            return Err(runtime_error(
                "the Word2Vec model is busy in this thread (called from its own callback)",
            ));
        }
        without_gil(py, || {
            let mut guard: MutexGuard<'_, Model> =
                self.inner.lock().unwrap_or_else(|e| e.into_inner());
            self.owner.store(me, Ordering::Release);
            let r = f(&mut guard);
            self.owner.store(0, Ordering::Release);
            r
        })
    }
}

/// gensim's vocabulary settings, as both vocabulary builders take them: `update`,
/// `min_count`, `sample`, `max_final_vocab`, `sorted_vocab`.
struct VocabArgs(bool, u64, f64, Option<u64>, bool);

impl PyW2VModel {
    /// The body of both vocabulary builders: scan `corpus` (at most `max_vocab_size` distinct
    /// words, pruned with `trim_rule` as gensim does), then `prepare`; gensim's report.
    fn scan_and_prepare<'py>(
        &self,
        py: Python<'py>,
        corpus: &Corpus,
        max_vocab_size: Option<usize>,
        v: VocabArgs,
        trim_rule: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let r = self.with(py, |m| {
            let mut rule = |w: &str, c: u64, mc: u64| match &trim_rule {
                Some(f) => call_rule(f, w, c, mc),
                None => Ok(Rule::Default),
            };
            let raw = scan::scan(corpus, max_vocab_size, Some(&mut rule))?;
            prepare(m, corpus, &raw, &v, &mut rule)
        });
        report(py, &pending(r)?)
    }
}

fn report<'py>(py: Python<'py>, r: &VocabReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("drop_unique", r.drop_unique)?;
    d.set_item("retain_total", r.retain_total)?;
    d.set_item("downsample_unique", r.downsample_unique)?;
    d.set_item("downsample_total", r.downsample_total as u64)?;
    d.set_item("num_retained_words", r.num_retained_words)?;
    d.set_item("effective_min_count", r.effective_min_count)?;
    d.set_item("new_words", r.new_words)?;
    Ok(d)
}

/// A `trim_rule(word, count, min_count)` as a core rule: gensim's `RULE_DISCARD` (1) drops,
/// `RULE_KEEP` (2) keeps, anything else applies `min_count`.
fn call_rule(
    rule: &Py<PyAny>,
    word: &str,
    count: u64,
    min_count: u64,
) -> candle_embed::Result<Rule> {
    Python::attach(|py| match rule.call1(py, (word, count, min_count)) {
        Ok(v) => Ok(match v.extract::<i64>(py) {
            Ok(1) => Rule::Discard,
            Ok(2) => Rule::Keep,
            _ => Rule::Default,
        }),
        Err(e) => {
            let msg = e.to_string();
            PENDING.with(|p| *p.borrow_mut() = Some(e));
            Err(candle_embed::Error::InvalidArgument(format!(
                "trim_rule raised {msg}"
            )))
        }
    })
}

thread_local! {
    /// A Python exception raised inside a callback, re-raised as itself by the caller.
    static PENDING: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// The Python exception a callback raised during `r`'s call, if any, else `r`.
fn pending<T>(r: PyResult<T>) -> PyResult<T> {
    match PENDING.with(|p| p.borrow_mut().take()) {
        Some(e) if r.is_err() => Err(e),
        _ => r,
    }
}

#[pymethods]
impl PyW2VModel {
    /// An empty model with these hyper-parameters (gensim's names).
    #[new]
    #[pyo3(signature = (vector_size, sg, hs, negative, cbow_mean, window, shrink_windows,
        ns_exponent, seed))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        #[pyo3(from_py_with = args::size)] vector_size: usize,
        #[pyo3(from_py_with = args::flag)] sg: bool,
        #[pyo3(from_py_with = args::flag)] hs: bool,
        #[pyo3(from_py_with = args::size)] negative: usize,
        #[pyo3(from_py_with = args::flag)] cbow_mean: bool,
        #[pyo3(from_py_with = args::size)] window: usize,
        #[pyo3(from_py_with = args::flag)] shrink_windows: bool,
        #[pyo3(from_py_with = args::real)] ns_exponent: f64,
        #[pyo3(from_py_with = args::unsigned)] seed: u64,
    ) -> PyResult<Self> {
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
        let model = Model::new(params, Vocab::default()).py()?;
        Ok(PyW2VModel {
            inner: Mutex::new(model),
            owner: AtomicU64::new(0),
        })
    }

    /// gensim's `scan_vocab` + `prepare_vocab` + `prepare_weights` on `corpus`: a fresh
    /// vocabulary and tables, or (`update`) new words added. Returns gensim's report values.
    #[pyo3(signature = (corpus, update, min_count, sample, max_final_vocab, sorted_vocab,
        max_vocab_size, trim_rule=None))]
    #[allow(clippy::too_many_arguments)]
    fn build_vocab<'py>(
        &self,
        py: Python<'py>,
        corpus: &Bound<'py, PyW2VCorpus>,
        #[pyo3(from_py_with = args::flag)] update: bool,
        #[pyo3(from_py_with = args::unsigned)] min_count: u64,
        #[pyo3(from_py_with = args::real)] sample: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] max_final_vocab: Option<u64>,
        #[pyo3(from_py_with = args::flag)] sorted_vocab: bool,
        #[pyo3(from_py_with = args::opt_size)] max_vocab_size: Option<usize>,
        trim_rule: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let v = VocabArgs(update, min_count, sample, max_final_vocab, sorted_vocab);
        self.scan_and_prepare(py, &corpus.get().inner, max_vocab_size, v, trim_rule)
    }

    /// gensim's `build_vocab_from_freq`: the raw vocabulary given as `(words, counts)`.
    #[pyo3(signature = (words, counts, corpus_count, update, min_count, sample, max_final_vocab,
        sorted_vocab, trim_rule=None))]
    #[allow(clippy::too_many_arguments)]
    fn build_vocab_from_freq<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::texts)] words: Vec<String>,
        counts: Vec<u64>,
        #[pyo3(from_py_with = args::unsigned)] corpus_count: u64,
        #[pyo3(from_py_with = args::flag)] update: bool,
        #[pyo3(from_py_with = args::unsigned)] min_count: u64,
        #[pyo3(from_py_with = args::real)] sample: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] max_final_vocab: Option<u64>,
        #[pyo3(from_py_with = args::flag)] sorted_vocab: bool,
        trim_rule: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        if words.len() != counts.len() {
            return Err(value_error("words and counts differ in length"));
        }
        let corpus = Corpus::from_counts(
            words.iter().map(|w| w.as_str()).zip(counts.iter().copied()),
            corpus_count,
        )
        .py()?;
        let v = VocabArgs(update, min_count, sample, max_final_vocab, sorted_vocab);
        self.scan_and_prepare(py, &corpus, None, v, trim_rule)
    }

    /// Train one epoch (`epoch` of `epochs`) on `corpus`; `progress(raw_words_done)` is
    /// called about ten times a second. Returns the epoch's statistics.
    #[pyo3(signature = (corpus, epoch, epochs, start_alpha, end_alpha, total_examples,
        total_words, batch_words, compute_loss, workers, progress=None, deterministic=false, minibatch=false))]
    #[allow(clippy::too_many_arguments)]
    fn train_epoch<'py>(
        &self,
        py: Python<'py>,
        corpus: &Bound<'py, PyW2VCorpus>,
        #[pyo3(from_py_with = args::unsigned)] epoch: u64,
        #[pyo3(from_py_with = args::unsigned)] epochs: u64,
        #[pyo3(from_py_with = args::real)] start_alpha: f64,
        #[pyo3(from_py_with = args::real)] end_alpha: f64,
        #[pyo3(from_py_with = args::opt_unsigned)] total_examples: Option<u64>,
        #[pyo3(from_py_with = args::opt_unsigned)] total_words: Option<u64>,
        #[pyo3(from_py_with = args::size)] batch_words: usize,
        #[pyo3(from_py_with = args::flag)] compute_loss: bool,
        #[pyo3(from_py_with = args::size)] workers: usize,
        progress: Option<Py<PyAny>>,
        deterministic: bool,
        minibatch: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let corpus = &corpus.get().inner;
        let plan = EpochPlan {
            epoch,
            epochs,
            start_alpha,
            end_alpha,
            total_examples,
            total_words,
            batch_words,
            compute_loss,
            workers,
            mode: train_mode(deterministic),
            minibatch,
        };
        let mut err: Option<PyErr> = None;
        let r = self.with(py, |m| {
            let mut cb = |done: u64| -> bool {
                Python::attach(|py| {
                    if let Err(e) = py.check_signals() {
                        err = Some(e);
                        return false;
                    }
                    if let Some(f) = &progress {
                        if let Err(e) = f.call1(py, (done,)) {
                            err = Some(e);
                            return false;
                        }
                    }
                    true
                })
            };
            candle_embed::word2vec::train_epoch(m, corpus, &plan, &mut cb)
        });
        if let Some(e) = err {
            return Err(e);
        }
        let s = r?;
        let d = PyDict::new(py);
        d.set_item("examples", s.examples)?;
        d.set_item("effective_words", s.effective_words)?;
        d.set_item("raw_words", s.raw_words)?;
        d.set_item("loss", s.loss)?;
        d.set_item("jobs", s.jobs)?;
        Ok(d)
    }

    /// The words, by index.
    fn words(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with(py, |m| Ok(m.vocab.words.clone()))
    }

    /// `(counts, sample_int, cum_table)` as arrays.
    fn vocab_arrays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (c, s, t) = self.with(py, |m| {
            Ok((
                m.vocab.counts.clone(),
                m.vocab.sample_int.clone(),
                m.vocab.cum_table.clone(),
            ))
        })?;
        let (nc, ns, nt) = (c.len(), s.len(), t.len());
        let out = (
            vec_output(py, c, &[nc])?,
            vec_output(py, s, &[ns])?,
            vec_output(py, t, &[nt])?,
        );
        Ok(out.into_pyobject(py)?.into_any())
    }

    /// A copy of a table: "vectors" (syn0), "syn1neg" or "syn1", `(V, vector_size)`;
    /// `None` when the model has no such table.
    fn table<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let name = name.to_string();
        let (v, d, t) = self.with(py, move |m| {
            let t = match name.as_str() {
                "vectors" => Some(&m.syn0),
                "syn1neg" => (m.params.negative > 0).then_some(&m.syn1neg),
                "syn1" => m.params.hs.then_some(&m.syn1),
                _ => {
                    return Err(candle_embed::Error::InvalidArgument(format!(
                        "no table {name:?}"
                    )))
                }
            };
            Ok((m.len(), m.params.vector_size, t.cloned()))
        })?;
        t.map(|t| vec_output(py, t, &[v, d])).transpose()
    }

    /// Replace the input vectors (`(V, vector_size)` floats) and the lock factors (1 or V).
    fn set_inputs(
        &self,
        py: Python<'_>,
        vectors: &Bound<'_, PyAny>,
        lockf: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let v = Floats::<f32>::read(vectors, "vectors")?;
        let l = Floats::<f32>::read(lockf, "vectors_lockf")?;
        let (vals, lvals) = (v.values().to_vec(), l.values().to_vec());
        self.with(py, move |m| m.set_inputs(&vals, &lvals))
    }

    /// Word `index`'s Huffman `(code, points)` (empty without `hs`).
    fn huffman_path(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::size)] index: usize,
    ) -> PyResult<(Vec<u8>, Vec<u32>)> {
        self.with(py, move |m| {
            if !m.params.hs {
                return Ok((Vec::new(), Vec::new()));
            }
            let i = u32::try_from(index)
                .ok()
                .filter(|&i| (i as usize) < m.len())
                .ok_or_else(|| candle_embed::Error::InvalidArgument(format!("no word {index}")))?;
            let (c, p) = m.huffman.path(i);
            Ok((c.to_vec(), p.to_vec()))
        })
    }

    /// The hyper-parameters, as a dict (gensim's names).
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = self.with(py, |m| Ok(m.params.clone()))?;
        let d = PyDict::new(py);
        d.set_item("vector_size", p.vector_size)?;
        d.set_item("sg", p.sg)?;
        d.set_item("hs", p.hs)?;
        d.set_item("negative", p.negative)?;
        d.set_item("cbow_mean", p.cbow_mean)?;
        d.set_item("window", p.window)?;
        d.set_item("shrink_windows", p.shrink_windows)?;
        d.set_item("ns_exponent", p.ns_exponent)?;
        d.set_item("seed", p.seed)?;
        Ok(d)
    }

    /// Jobs trained so far (the position of the random stream).
    #[getter]
    fn jobs_done(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |m| Ok(m.jobs_done))
    }

    /// Save the model and the caller's JSON `state` to `path` (safetensors), atomically.
    fn save(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::path)] path: PathBuf,
        #[pyo3(from_py_with = args::text)] state: String,
    ) -> PyResult<()> {
        let state: serde_json::Value = serde_json::from_str(&state)
            .map_err(|e| value_error(format!("state is not JSON: {e}")))?;
        self.with(py, |m| persist::save(m, &state, &path))
    }

    /// Load a file written by `save`: `(model, state JSON)`.
    #[staticmethod]
    fn load(
        py: Python<'_>,
        #[pyo3(from_py_with = args::path)] path: PathBuf,
    ) -> PyResult<(Self, String)> {
        let (model, state) = without_gil(py, || persist::load(&path))?;
        Ok((
            PyW2VModel {
                inner: Mutex::new(model),
                owner: AtomicU64::new(0),
            },
            state.to_string(),
        ))
    }
}

/// The trainer's mode for the `deterministic` keyword.
pub fn train_mode(deterministic: bool) -> TrainMode {
    match deterministic {
        true => TrainMode::Deterministic,
        false => TrainMode::Hogwild,
    }
}

fn prepare(
    m: &mut Model,
    corpus: &Corpus,
    raw: &RawVocab,
    v: &VocabArgs,
    rule: &mut dyn FnMut(&str, u64, u64) -> candle_embed::Result<Rule>,
) -> candle_embed::Result<VocabReport> {
    let VocabArgs(update, min_count, sample, max_final_vocab, sorted_vocab) = *v;
    if update && m.is_empty() {
        return Err(candle_embed::Error::InvalidArgument(
            "cannot update the vocabulary of a model that has none: build it first".into(),
        ));
    }
    let settings = VocabSettings {
        min_count,
        sample,
        max_final_vocab,
        sorted_vocab,
        ns_exponent: m.params.ns_exponent,
    };
    let (vocab, rep) = m
        .vocab
        .prepare(corpus, raw, &settings, update, Some(rule))?;
    if update {
        m.grow(vocab)?;
    } else {
        *m = Model::new(m.params.clone(), vocab)?;
    }
    Ok(rep)
}

/// Register the classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyW2VCorpus>()?;
    m.add_class::<PyW2VModel>()?;
    m.add_function(wrap_pyfunction!(_w2v_split, m)?)
}
