//! Similarity kernels for `KeyedVectors` (private functions of `candle_embed._native`).
//! Translation only; the kernels are in `candle_embed::similarity`.
//!
//! `vectors` is a float16/32/64 `(n, D)` table (borrowed, not copied, when C-contiguous:
//! memory-mapped tables are read in place); `norms` and `queries` are in its accumulation type
//! (float64 for float64 tables, float32 otherwise) and are cast to it when they are not.

use candle_embed::dtype::Float;
use candle_embed::similarity::{self, Query, Scorer, Table};
use pyo3::prelude::*;

use crate::args;
use crate::arrays::view::{view, Viewed};
use crate::arrays::{collect, float_dtype, vec_output, with_out_float, Element, Floats};
use crate::errors::value_error;
use crate::gil::without_gil;

/// `(n, D)` of a table, or the `ValueError` saying it is not 2-D.
fn table_shape(shape: &[usize], what: &str) -> PyResult<(usize, usize)> {
    match *shape {
        [n, d] => Ok((n, d)),
        _ => Err(value_error(format!(
            "{what} must be 2-D (n, dim), got shape {shape:?}"
        ))),
    }
}

fn table_view<'py>(vectors: &Bound<'py, PyAny>) -> PyResult<(Viewed<'py>, candle_core::DType)> {
    let v = view(vectors, "vectors")?;
    let dtype = float_dtype(&v, "vectors")?;
    Ok((v, dtype))
}

/// The Euclidean norm of each row of ``vectors``: ``(n,)`` float32 (float64 for a float64
/// table), the sum of squares taken in float64.
#[pyfunction]
pub fn _row_norms<'py>(
    py: Python<'py>,
    vectors: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let (v, dtype) = table_view(vectors)?;
    with_out_float!(dtype, T => {
        let rows = Floats::<T>::of_view(v, "vectors")?;
        let (n, dim) = table_shape(rows.shape(), "vectors")?;
        let data = rows.values();
        collect(py, &[n], || similarity::row_norms(data, n, dim))
    })
}

/// The inputs of a scan, read once: the table's rows, their norms and the query vectors (both
/// in the table's accumulation type).
struct Scan<'py, T: Float + Element, A: Element> {
    rows: Floats<'py, T>,
    dim: usize,
    norms: Floats<'py, A>,
    queries: Floats<'py, A>,
    count: usize,
}

impl<'py, T: Float + Element + Copy, A: Element + Copy> Scan<'py, T, A> {
    fn read(
        v: Viewed<'py>,
        norms: &Bound<'py, PyAny>,
        queries: &Bound<'py, PyAny>,
    ) -> PyResult<Self> {
        let rows = Floats::<T>::of_view(v, "vectors")?;
        let (_, dim) = table_shape(rows.shape(), "vectors")?;
        let norms = Floats::<A>::read(norms, "norms")?;
        let queries = Floats::<A>::read(queries, "queries")?;
        let (count, _) = table_shape(queries.shape(), "queries")?;
        Ok(Scan {
            rows,
            dim,
            norms,
            queries,
            count,
        })
    }

    /// The query over rows `start..end` with `positive`'s scorer.
    fn query(&self, start: usize, end: usize, positive: Option<usize>) -> Query<'_, A> {
        Query {
            vectors: self.queries.values(),
            count: self.count,
            range: start..end,
            scorer: scorer(positive),
        }
    }
}

/// The scorer of a query: cosine, or 3CosMul with the first `positive` vectors positive.
fn scorer(positive: Option<usize>) -> Scorer {
    positive.map_or(Scorer::Cosine, |positive| Scorer::CosMul { positive })
}

/// Every output's scores over rows ``start..end``: ``(outputs, end - start)`` (see
/// ``candle_embed::similarity``); ``positive=None`` scores each query by cosine, else by
/// 3CosMul with the first ``positive`` queries as positive terms (one output).
#[pyfunction]
#[pyo3(signature = (vectors, norms, queries, start, end, positive=None))]
#[allow(clippy::too_many_arguments)]
pub fn _similarity_scores<'py>(
    py: Python<'py>,
    vectors: &Bound<'py, PyAny>,
    norms: &Bound<'py, PyAny>,
    queries: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = args::size)] start: usize,
    #[pyo3(from_py_with = args::size)] end: usize,
    #[pyo3(from_py_with = args::opt_size)] positive: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let (v, dtype) = table_view(vectors)?;
    with_out_float!(dtype, T => {
        let scan = Scan::<T, <T as Float>::Acc>::read(v, norms, queries)?;
        let query = scan.query(start, end, positive);
        // the slices, not `scan` (its Python handles cannot cross into the GIL-free closure)
        let (data, dim, nv) = (scan.rows.values(), scan.dim, scan.norms.values());
        let span = end.saturating_sub(start);
        collect(py, &[query.outputs(), span], || {
            let table = Table::new(data, dim, nv)?;
            similarity::scores(&table, &query)
        })
    })
}

/// Each output's ``k`` best rows of ``start..end``, best first (ties by lower row, NaN last),
/// skipping the rows of ``exclude[output]``: ``(rows, scores, counts)``, the outputs' answers
/// one after another (``counts[o]`` of them for output ``o``).
#[pyfunction]
#[pyo3(signature = (vectors, norms, queries, start, end, k, exclude=None, positive=None))]
#[allow(clippy::too_many_arguments)]
pub fn _similarity_top_k<'py>(
    py: Python<'py>,
    vectors: &Bound<'py, PyAny>,
    norms: &Bound<'py, PyAny>,
    queries: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = args::size)] start: usize,
    #[pyo3(from_py_with = args::size)] end: usize,
    #[pyo3(from_py_with = args::size)] k: usize,
    exclude: Option<Vec<Vec<usize>>>,
    #[pyo3(from_py_with = args::opt_size)] positive: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let (v, dtype) = table_view(vectors)?;
    let exclude = exclude.unwrap_or_default();
    with_out_float!(dtype, T => {
        let scan = Scan::<T, <T as Float>::Acc>::read(v, norms, queries)?;
        let query = scan.query(start, end, positive);
        // the slices, not `scan` (its Python handles cannot cross into the GIL-free closure)
        let (data, dim, nv) = (scan.rows.values(), scan.dim, scan.norms.values());
        let ranked = without_gil(py, || {
            let table = Table::new(data, dim, nv)?;
            similarity::top_k(&table, &query, k, &exclude)
        })?;
        let counts: Vec<i64> = ranked.iter().map(|r| r.len() as i64).collect();
        let total = ranked.iter().map(Vec::len).sum::<usize>();
        let (mut idx, mut scores) = (Vec::with_capacity(total), Vec::with_capacity(total));
        for (r, s) in ranked.into_iter().flatten() {
            idx.push(r as i64);
            scores.push(s);
        }
        let n = counts.len();
        let out = (
            vec_output(py, idx, &[total])?,
            vec_output(py, scores, &[total])?,
            vec_output(py, counts, &[n])?,
        );
        Ok(out.into_pyobject(py)?.into_any())
    })
}

/// Register the functions on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_row_norms, m)?)?;
    m.add_function(wrap_pyfunction!(_similarity_scores, m)?)?;
    m.add_function(wrap_pyfunction!(_similarity_top_k, m)?)?;
    Ok(())
}
