//! Row moves on CUDA, pure copies: gather `out[i, :] = table[ids[i], :]` (the lookup; portable
//! reference `table.index_select(ids, 0)`, equal bit for bit) and its inverse, scatter
//! `table[ids[i], :] = rows[i, :]` (portable reference candle's `scatter_set`).

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaDevice, CudaStorage, Shape, Tensor};

use super::launch::{
    alloc_output, check_same_device, cuda_device, dev_ptr, dims2, grid, ptr_of, tensor_ptr,
    u32_len, upload, CResult, Kernel, Mutate, Produce,
};
use super::module::GATHER;
use crate::ids::{self, Id};
use crate::{bail_invalid, bail_shape, Result};

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
                // SAFETY: ids validated against the table's rows in `new`; out holds n rows.
                unsafe { move_rows(&dev, src, dev_ptr(&self.ids), out_p, n, row_bytes, false)? };
                Ok((out, Shape::from((n, dim))))
            }))?;
        Ok(out)
    }
}

/// `table[ids[i], :] = rows[i, :]` in place: `table` `(V, D)` contiguous, `rows` `(ids.len(), D)`
/// of its dtype on its device, `ids` strictly increasing (so each row is written once) and in
/// range; checked before the launch.
pub fn scatter_rows<I: Id>(table: &Tensor, ids: &[I], rows: &Tensor) -> Result<()> {
    let (num_rows, dim) = dims2(table, "table")?;
    if dims2(rows, "rows")? != (ids.len(), dim) {
        bail_shape!(
            "rows of shape {:?} for {} ids of a ({num_rows}, {dim}) table",
            rows.dims(),
            ids.len()
        );
    }
    check_same_device(table, rows)?;
    ids::validate(ids, num_rows, "index", "an embedding table")?;
    if ids.windows(2).any(|w| w[0].wide() >= w[1].wide()) {
        bail_invalid!("scatter_rows needs strictly increasing ids (each row written once)");
    }
    if !table.is_contiguous() {
        bail_invalid!("scatter_rows needs a contiguous table");
    }
    let (n, row_bytes) = (ids.len(), dim * table.dtype().size_in_bytes());
    u32_len(n, "rows")?;
    u32_len(row_bytes, "row bytes")?;
    if n == 0 || dim == 0 {
        return Ok(());
    }
    let dev = cuda_device(table)?;
    let wide: Vec<i64> = ids.iter().map(|&i| i.wide() as i64).collect();
    let ids_d = upload(&dev, &wide)?;
    let rows = rows.contiguous()?;
    // `rows` is borrowed (and its storage unchanged) for the whole launch.
    let src = tensor_ptr(&rows)?;
    table.inplace_op1(&Mutate(|t: &mut CudaStorage, off: usize| {
        let dst = ptr_of(&t.slice, off)?;
        // SAFETY: ids unique and in range, rows holds n rows of the table's width.
        unsafe { move_rows(&dev, src, dev_ptr(&ids_d), dst, n, row_bytes, true) }
    }))?;
    Ok(())
}

/// One launch moving `n` rows of `row_bytes` (gather: `dst[i] = src[ids[i]]`; scatter:
/// `dst[ids[i]] = src[i]`).
///
/// # Safety
/// `ids` must hold `n` in-range rows (unique for a scatter); both buffers must hold the rows.
unsafe fn move_rows(
    dev: &CudaDevice,
    src: u64,
    ids: u64,
    dst: u64,
    n: usize,
    row_bytes: usize,
    scatter: bool,
) -> CResult<()> {
    let unit = unit_bytes(row_bytes, src, dst);
    let name = match unit {
        16 => "ce_move_rows_u128",
        8 => "ce_move_rows_u64",
        4 => "ce_move_rows_u32",
        2 => "ce_move_rows_u16",
        _ => candle_core::bail!("cannot move rows of {row_bytes} bytes"),
    };
    let (n32, row_units, scatter) = (n as u32, (row_bytes / unit) as u32, scatter as u32);
    let (per_row, rows_per_block) = block_shape(row_units as usize);
    let cfg = LaunchConfig {
        grid_dim: (grid(n.div_ceil(rows_per_block as usize)), 1, 1),
        block_dim: (per_row, rows_per_block, 1),
        shared_mem_bytes: 0,
    };
    let kernel = Kernel::new(dev, &GATHER, name)?;
    let mut b = kernel.builder();
    b.arg(&src)
        .arg(&ids)
        .arg(&dst)
        .arg(&n32)
        .arg(&row_units)
        .arg(&scatter);
    // SAFETY: the caller's contract; the unit divides the row length and both addresses.
    unsafe { b.launch(cfg) }.w()?;
    Ok(())
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
