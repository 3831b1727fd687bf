//! Row gather on CUDA: `out[i, :] = table[ids[i], :]`, `(ids.len(), dim)` on the table's device.
//! Portable reference: `table.index_select(ids, 0)`, which it must equal bit for bit (a copy).

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Shape, Tensor};

use super::launch::{
    alloc_output, cuda_device, dev_ptr, dims2, grid, ptr_of, u32_len, upload, Kernel, Produce,
};
use super::module::GATHER;
use crate::ids::{self, Id};
use crate::Result;

/// The widest copy unit (16, 8, 4 or 2 bytes) dividing the row's byte length and both base
/// addresses: a row of 128 f32 then moves as 32 16-byte loads, one warp instruction.
fn unit_bytes(row_bytes: usize, src: u64, dst: u64) -> usize {
    [16usize, 8, 4, 2]
        .into_iter()
        .find(|&u| row_bytes % u == 0 && src % u as u64 == 0 && dst % u as u64 == 0)
        .unwrap_or(1)
}

/// Threads per row (a power of two up to a warp, covering the row's units) and rows per block,
/// so a block is 256 threads and short rows do not leave most of a warp idle.
fn block_shape(row_units: usize) -> (u32, u32) {
    let per_row = row_units.next_power_of_two().clamp(1, 32) as u32;
    (per_row, 256 / per_row)
}

/// `table[ids]` as an `(ids.len(), dim)` tensor on the table's device (a pure copy).
pub fn gather<I: Id>(table: &Tensor, ids: &[I]) -> Result<Tensor> {
    Gather::new(table, ids)?.run()
}

/// A validated gather with its ids already on the device: [`Gather::run`] launches the kernel
/// alone, so a benchmark can time the kernel apart from the host-side validation and upload.
pub struct Gather {
    table: Tensor,
    ids: CudaSlice<i64>,
    n: usize,
    dim: usize,
}

impl Gather {
    /// Validate `ids` against `table` (2-D, on a CUDA device) and upload them.
    pub fn new<I: Id>(table: &Tensor, ids: &[I]) -> Result<Self> {
        let (rows, dim) = dims2(table, "table")?;
        ids::validate(ids, rows, "index", "an embedding table")?;
        let dev = cuda_device(table)?;
        u32_len(ids.len(), "lookups")?;
        u32_len(dim * table.dtype().size_in_bytes(), "row bytes")?;
        let wide: Vec<i64> = ids.iter().map(|&i| i.wide() as i64).collect();
        Ok(Gather {
            table: table.contiguous()?,
            ids: upload(&dev, &wide)?,
            n: ids.len(),
            dim,
        })
    }

    /// The gathered rows, a fresh `(n, dim)` tensor.
    pub fn run(&self) -> Result<Tensor> {
        let (n, dim, dtype) = (self.n, self.dim, self.table.dtype());
        if n == 0 || dim == 0 {
            return Ok(Tensor::zeros((n, dim), dtype, self.table.device())?);
        }
        let dev = cuda_device(&self.table)?;
        let row_bytes = dim * dtype.size_in_bytes();
        let out = self
            .table
            .apply_op1_no_bwd(&Produce(|s: &CudaStorage, off: usize| {
                let (out, out_p) = alloc_output(&dev, dtype, n * dim)?;
                let src = ptr_of(&s.slice, off)?;
                let unit = unit_bytes(row_bytes, src, out_p);
                let name = match unit {
                    16 => "ce_gather_u128",
                    8 => "ce_gather_u64",
                    4 => "ce_gather_u32",
                    2 => "ce_gather_u16",
                    _ => candle_core::bail!("cannot gather rows of {row_bytes} bytes"),
                };
                let (n32, row_units) = (n as u32, (row_bytes / unit) as u32);
                let (per_row, rows_per_block) = block_shape(row_units as usize);
                let cfg = LaunchConfig {
                    grid_dim: (grid(n.div_ceil(rows_per_block as usize)), 1, 1),
                    block_dim: (per_row, rows_per_block, 1),
                    shared_mem_bytes: 0,
                };
                let kernel = Kernel::new(&dev, &GATHER, name)?;
                let ids_p = dev_ptr(&self.ids);
                let mut b = kernel.builder();
                b.arg(&src)
                    .arg(&ids_p)
                    .arg(&out_p)
                    .arg(&n32)
                    .arg(&row_units);
                // SAFETY: ids validated against the table's rows in `new`; out holds n * dim
                // elements; the unit divides the row length and both addresses.
                unsafe { b.launch(cfg) }.w()?;
                Ok((out, Shape::from((n, dim))))
            }))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_the_widest_that_divides_length_and_addresses() {
        assert_eq!(unit_bytes(512, 0, 256), 16);
        assert_eq!(unit_bytes(512, 8, 256), 8);
        assert_eq!(unit_bytes(4 * 37, 0, 0), 4);
        assert_eq!(unit_bytes(2 * 37, 0, 0), 2);
        assert_eq!(unit_bytes(8 * 3, 0, 0), 8);
        assert_eq!(unit_bytes(3, 0, 0), 1);
    }

    #[test]
    fn blocks_are_256_threads_and_rows_fill_warps() {
        assert_eq!(block_shape(32), (32, 8));
        assert_eq!(block_shape(100), (32, 8));
        assert_eq!(block_shape(4), (4, 64));
        assert_eq!(block_shape(5), (8, 32));
        assert_eq!(block_shape(1), (1, 256));
    }
}
