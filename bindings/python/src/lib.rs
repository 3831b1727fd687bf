//! `candle_embed._native`: the compiled half of the Python package. Translation only: argument
//! conversion (`args`), the array boundary (`arrays`), the GIL release (`gil::without_gil`) and
//! the error bridge (`errors`); every computation lives in the `candle-embed` crate.

use pyo3::prelude::*;

mod args;
pub mod arrays;
mod bag;
mod docs;
mod embedding;
pub mod errors;
pub mod gil;
mod optim;
mod positional;
mod properties;
mod similarity;
mod sparse_grad;
mod sparse_ops;
mod techniques;
mod testing;
mod word2vec_corpus;
mod word2vec_train;
mod word_vectors;

use crate::errors::IntoPyResult;

/// The devices this build can use: "cpu", then "cuda:N" / "metal:N" when compiled in and
/// present.
#[pyfunction]
fn devices() -> Vec<String> {
    candle_embed::device::available_devices()
}

/// Set the number of threads the kernels use (1 to 1024; the default is the number of CPUs).
#[pyfunction]
fn set_num_threads(#[pyo3(from_py_with = args::size)] n: usize) -> PyResult<()> {
    candle_embed::threads::set_num_threads(n).py()
}

/// The number of threads the kernels use.
#[pyfunction]
fn get_num_threads() -> usize {
    candle_embed::threads::get_num_threads()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::init(m.py())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    embedding::register(m)?;
    bag::register(m)?;
    m.add_class::<sparse_grad::PySparseGrad>()?;
    m.add_function(wrap_pyfunction!(sparse_ops::index_add, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_ops::coalesce, m)?)?;
    optim::register(m)?;
    word2vec_train::register(m)?;
    word_vectors::register(m)?;
    similarity::register(m)?;
    positional::register(m)?;
    testing::register(m)
}
