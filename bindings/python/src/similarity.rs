//! Similarity kernels for `KeyedVectors` (private functions of `candle_embed._native`).
//! Translation only; the kernels are in `candle_embed::similarity`.
//!
//! `vectors` is a float16/32/64 `(n, D)` table (borrowed, not copied, when C-contiguous:
//! memory-mapped tables are read in place); `norms` and `queries` are in its accumulation type
//! (float64 for float64 tables, float32 otherwise) and are cast to it when they are not. Or
//! `vectors` is a `QuantizedEmbedding` (int8 / int4 rows, float32 norms and queries): the scan
//! scores its dequantized rows straight from the codes.

use candle_embed::dtype::Float;
use candle_embed::quantized::QuantizedRows;
use candle_embed::similarity::{self, Query, Rows, Scorer, Table};
use pyo3::prelude::*;

use crate::args;
use crate::arrays::view::{view, Viewed};
use crate::arrays::{collect, float_dtype, vec_output, with_out_float, Element, Floats};
use crate::errors::{value_error, IntoPyResult};
use crate::gil::without_gil;
use crate::quantized::PyQuantizedEmbedding;

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

/// What a scan computes over rows ``start..end``: every output's scores, or each output's
/// ``k`` best rows skipping ``exclude[output]``.
enum Op {
    Scores,
    TopK { k: usize, exclude: Vec<Vec<usize>> },
}

/// One scan's arguments besides the table and its norms.
struct Scan<'a, 'py> {
    queries: &'a Bound<'py, PyAny>,
    start: usize,
    end: usize,
    positive: Option<usize>,
    op: Op,
}

impl<'py> Scan<'_, 'py> {
    /// Run on ``vectors``: a float table (with ``norms`` and the queries in its accumulation
    /// type) or a ``QuantizedEmbedding`` (float32 norms and queries, scored from the codes).
    fn on(
        &self,
        py: Python<'py>,
        vectors: &Bound<'py, PyAny>,
        norms: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(q) = vectors.cast::<PyQuantizedEmbedding>() {
            let table = q.get().inner.table();
            let norms = Floats::<f32>::read(norms, "norms")?;
            let queries = Floats::<f32>::read(self.queries, "queries")?;
            let (count, _) = table_shape(queries.shape(), "queries")?;
            return table.with_bytes(|packed| {
                let rows = QuantizedRows::new(table.layout(), packed, norms.values()).py()?;
                self.run(py, &rows, queries.values(), count)
            });
        }
        let (v, dtype) = table_view(vectors)?;
        with_out_float!(dtype, T => {
            let rows = Floats::<T>::of_view(v, "vectors")?;
            let (_, dim) = table_shape(rows.shape(), "vectors")?;
            let norms = Floats::<<T as Float>::Acc>::read(norms, "norms")?;
            let queries = Floats::<<T as Float>::Acc>::read(self.queries, "queries")?;
            let (count, _) = table_shape(queries.shape(), "queries")?;
            let table = Table::new(rows.values(), dim, norms.values()).py()?;
            self.run(py, &table, queries.values(), count)
        })
    }

    /// The scan on the table as [`Rows`], without the GIL.
    fn run<R>(
        &self,
        py: Python<'py>,
        rows: &R,
        queries: &[R::Acc],
        count: usize,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        R: Rows,
        R::Acc: Element,
    {
        let query = Query {
            vectors: queries,
            count,
            range: self.start..self.end,
            scorer: self
                .positive
                .map_or(Scorer::Cosine, |positive| Scorer::CosMul { positive }),
        };
        let exclude = match &self.op {
            Op::Scores => {
                let shape = [query.outputs(), self.end.saturating_sub(self.start)];
                return collect(py, &shape, || similarity::scores(rows, &query));
            }
            Op::TopK { exclude, .. } => exclude,
        };
        let k = match self.op {
            Op::TopK { k, .. } => k,
            Op::Scores => 0,
        };
        let ranked = without_gil(py, || similarity::top_k(rows, &query, k, exclude))?;
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
    }
}

/// A scan of rows ``start..end`` (see ``candle_embed::similarity``): ``positive=None`` scores
/// each query by cosine, else by 3CosMul with the first ``positive`` queries as positive terms
/// (one output). ``vectors`` is a float table or a ``QuantizedEmbedding`` (its dequantized
/// rows, scored from the codes).
///
/// ``k=None``: every output's scores, ``(outputs, end - start)``. Else each output's ``k`` best
/// rows, best first (ties by lower row, NaN last), skipping the rows of ``exclude[output]``:
/// ``(rows, scores, counts)``, the outputs' answers one after another (``counts[o]`` of them
/// for output ``o``).
#[pyfunction]
#[pyo3(signature = (vectors, norms, queries, start, end, k=None, exclude=None, positive=None))]
#[allow(clippy::too_many_arguments)]
pub fn _similarity_scan<'py>(
    py: Python<'py>,
    vectors: &Bound<'py, PyAny>,
    norms: &Bound<'py, PyAny>,
    queries: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = args::size)] start: usize,
    #[pyo3(from_py_with = args::size)] end: usize,
    #[pyo3(from_py_with = args::opt_size)] k: Option<usize>,
    exclude: Option<Vec<Vec<usize>>>,
    #[pyo3(from_py_with = args::opt_size)] positive: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let op = match k {
        None => Op::Scores,
        Some(k) => Op::TopK {
            k,
            exclude: exclude.unwrap_or_default(),
        },
    };
    let scan = Scan {
        queries,
        start,
        end,
        positive,
        op,
    };
    scan.on(py, vectors, norms)
}

/// Register the functions on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_row_norms, m)?)?;
    m.add_function(wrap_pyfunction!(_similarity_scan, m)?)?;
    Ok(())
}
