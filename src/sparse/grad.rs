//! `SparseGrad`: the gradient of a `(num_rows, dim)` table that is zero except on a few rows.
//!
//! Always coalesced: `indices` are sorted, unique, in `0..num_rows`, and `values[k]` is the
//! summed gradient of row `indices[k]`. Dense equivalent: `G[indices[k], :] = values[k, :]`,
//! zero elsewhere (PyTorch's coalesced hybrid COO tensor with `sparse_dim = 1`).

use candle_core::{DType, Device, Tensor};

use crate::ids::index_tensor;
use crate::{alloc, bail_shape, Error, Result};

/// A coalesced row-sparse gradient.
#[derive(Clone, Debug)]
pub struct SparseGrad {
    indices: Vec<i64>,
    values: Tensor,
    num_rows: usize,
}

impl SparseGrad {
    /// Build from already coalesced parts, checking the invariants (sorted, unique, in range,
    /// `values` of shape `(indices.len(), dim)`).
    pub fn new(indices: Vec<i64>, values: Tensor, num_rows: usize) -> Result<Self> {
        let (n, _) = values.dims2()?;
        if n != indices.len() {
            bail_shape!(
                "values has {n} rows but there are {} indices",
                indices.len()
            );
        }
        for w in indices.windows(2) {
            if w[0] >= w[1] {
                return Err(Error::invalid(
                    "SparseGrad indices must be sorted and unique",
                ));
            }
        }
        if let Some(&bad) = indices.iter().find(|&&i| i < 0 || i as usize >= num_rows) {
            return Err(Error::IndexOutOfRange {
                what: "row",
                index: bad as i128,
                container: "a gradient of a table",
                size: num_rows,
            });
        }
        Ok(SparseGrad {
            indices,
            values,
            num_rows,
        })
    }

    /// Build without checking the invariants; callers (coalescing kernels) guarantee them.
    pub fn from_coalesced_unchecked(indices: Vec<i64>, values: Tensor, num_rows: usize) -> Self {
        debug_assert!(indices.windows(2).all(|w| w[0] < w[1]));
        SparseGrad {
            indices,
            values,
            num_rows,
        }
    }

    /// An all-zero gradient (no rows).
    pub fn empty(num_rows: usize, dim: usize, dtype: DType, device: &Device) -> Result<Self> {
        Ok(SparseGrad {
            indices: Vec::new(),
            values: alloc::zeros((0, dim), dtype, device)?,
            num_rows,
        })
    }

    /// Sorted unique row ids.
    pub fn indices(&self) -> &[i64] {
        &self.indices
    }
    /// `(nnz, dim)` summed gradient rows.
    pub fn values(&self) -> &Tensor {
        &self.values
    }
    /// Number of rows present.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    /// Rows of the full (dense) table.
    pub fn num_rows(&self) -> usize {
        self.num_rows
    }
    /// Columns of the table.
    pub fn dim(&self) -> usize {
        self.values.dims().get(1).copied().unwrap_or(0)
    }
    /// `(num_rows, dim)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.num_rows, self.dim())
    }

    /// The dense `(num_rows, dim)` gradient (zeros plus the rows). The zeros are allocated
    /// fallibly: a gradient of a table too large for memory is [`Error::Memory`].
    pub fn to_dense(&self) -> Result<Tensor> {
        let dense = alloc::zeros(self.shape(), self.values.dtype(), self.values.device())?;
        if self.indices.is_empty() {
            return Ok(dense);
        }
        let idx = index_tensor(&self.indices, self.num_rows, self.values.device())?;
        Ok(dense.index_add(&idx, &self.values, 0)?)
    }

    /// The same gradient with its values converted to `dtype` and moved to `device`.
    pub fn to(&self, dtype: DType, device: &Device) -> Result<SparseGrad> {
        Ok(SparseGrad {
            indices: self.indices.clone(),
            values: self.values.to_dtype(dtype)?.to_device(device)?,
            num_rows: self.num_rows,
        })
    }
}
