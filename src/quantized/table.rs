//! [`QuantizedTable`]: `rows` packed rows in FBGEMM's fused layout, held in memory or read in
//! place from a memory-mapped safetensors file. Read-only once made.

use std::sync::Arc;

use super::format::{Bits, RowLayout};
use super::quantize::{quantize, quantize_reference};
use crate::alloc::{checked_elems, try_alloc, try_alloc_uninit, try_with_capacity};
use crate::dtype::Float;
use crate::hugepages;
use crate::mmap::{MapMode, MappedTensor};
use crate::{Error, Result};

/// Where the packed bytes live.
#[derive(Debug)]
enum Packed {
    Owned(Vec<u8>),
    Mapped(Arc<MappedTensor>),
}

/// A quantized `(rows, dim)` table: `rows * layout.row_bytes()` bytes.
#[derive(Debug)]
pub struct QuantizedTable {
    layout: RowLayout,
    rows: usize,
    data: Packed,
}

impl QuantizedTable {
    /// Quantize `values` (`rows x dim`, row-major) with FBGEMM's rounding (the fast kernel).
    pub fn quantize<T: Float>(values: &[T], rows: usize, dim: usize, bits: Bits) -> Result<Self> {
        Self::quantize_with(values, rows, dim, bits, quantize)
    }

    /// [`QuantizedTable::quantize`] through the scalar reference (tests compare the two).
    pub fn quantize_reference<T: Float>(
        values: &[T],
        rows: usize,
        dim: usize,
        bits: Bits,
    ) -> Result<Self> {
        Self::quantize_with(values, rows, dim, bits, quantize_reference)
    }

    fn quantize_with<T: Float>(
        values: &[T],
        rows: usize,
        dim: usize,
        bits: Bits,
        kernel: fn(&[T], usize, RowLayout) -> Result<Vec<u8>>,
    ) -> Result<Self> {
        let layout = RowLayout::new(dim, bits)?;
        if Some(values.len()) != rows.checked_mul(dim) {
            return Err(Error::shape(format!(
                "{} values do not fill a {rows} x {dim} table",
                values.len()
            )));
        }
        Ok(QuantizedTable {
            layout,
            rows,
            data: Packed::Owned(kernel(values, rows, layout)?),
        })
    }

    /// A table from packed rows (`rows x width` bytes, e.g. FBGEMM's prepack output). Every
    /// row's scale and bias must be finite ([`Error::InvalidArgument`] naming the row).
    pub fn from_packed(bytes: Vec<u8>, rows: usize, width: usize, bits: Bits) -> Result<Self> {
        let layout = RowLayout::from_row_bytes(width, bits)?;
        if Some(bytes.len()) != rows.checked_mul(width) {
            return Err(Error::shape(format!(
                "{} packed bytes do not fill {rows} rows of {width}",
                bytes.len()
            )));
        }
        check_scale_bias(&bytes, layout).map_err(Error::InvalidArgument)?;
        Ok(QuantizedTable {
            layout,
            rows,
            data: Packed::Owned(huge_paged(bytes)?),
        })
    }

    /// A table read in place from the mapped 2-D uint8 tensor `tensor` (read-only maps only).
    /// Nothing is read now, so rows' scales and biases are not checked: a file whose rows were
    /// corrupted after it was written dequantizes them to whatever their bytes say.
    pub fn from_mapped(tensor: MappedTensor, bits: Bits) -> Result<Self> {
        if tensor.mode() != MapMode::ReadOnly {
            return Err(Error::invalid(
                "quantized tables are read-only: map them with mmap=True or mmap='r'",
            ));
        }
        let (rows, width) = packed_shape(tensor.st_dtype(), tensor.shape())?;
        Ok(QuantizedTable {
            layout: RowLayout::from_row_bytes(width, bits)?,
            rows,
            data: Packed::Mapped(Arc::new(tensor)),
        })
    }

    /// The row layout.
    pub fn layout(&self) -> RowLayout {
        self.layout
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Elements per row.
    pub fn dim(&self) -> usize {
        self.layout.dim
    }
    /// Code width.
    pub fn bits(&self) -> Bits {
        self.layout.bits
    }
    /// How the table's file is mapped, for a mapped table.
    pub fn map_mode(&self) -> Option<MapMode> {
        match &self.data {
            Packed::Mapped(m) => Some(m.mode()),
            Packed::Owned(_) => None,
        }
    }

    /// Run `f` on the packed bytes, in place.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match &self.data {
            Packed::Owned(v) => f(v),
            Packed::Mapped(m) => m.read_bytes(f),
        }
    }

    /// A copy of the packed bytes (fallibly allocated).
    pub fn to_packed(&self) -> Result<Vec<u8>> {
        self.with_bytes(|b| {
            let mut v = try_with_capacity(b.len())?;
            v.extend_from_slice(b);
            Ok(v)
        })
    }

    /// Every row dequantized, `rows x dim` f32 (`fma(scale, code, bias)`, as a lookup gives).
    pub fn dequantize(&self) -> Result<Vec<f32>> {
        let n = checked_elems(&[self.rows, self.layout.dim], 4)?;
        let mut out = try_alloc_uninit::<f32>(n)?;
        let all = crate::alloc::try_collect(0..self.rows)?;
        self.lookup_rows(&all, &mut out);
        Ok(out)
    }

    /// Rows `ids` (validated) dequantized into `out` (`ids.len() * dim`), the fast kernel.
    pub(crate) fn lookup_rows<I: crate::ids::Id, D: Float>(&self, ids: &[I], out: &mut [D]) {
        use super::kernel::{pool, Bounds, PoolArgs};
        use crate::kernels::cpu::bag::Reduce;
        self.with_bytes(|packed| {
            let args = PoolArgs {
                packed,
                layout: self.layout,
                ids,
                bounds: Bounds::Singles,
                weights: None,
                padding: None,
                mode: Reduce::Sum,
            };
            pool(&args, out)
        })
    }
}

/// `bytes`, moved into memory advised for huge pages when large (one copy; below
/// [`hugepages::MIN_BYTES`] as they are): random rows of a table far past the TLB's reach cost a
/// page walk each on 4 KiB pages (see [`crate::hugepages`]; the float tables do the same).
fn huge_paged(bytes: Vec<u8>) -> Result<Vec<u8>> {
    if bytes.len() < hugepages::MIN_BYTES || !cfg!(target_os = "linux") {
        return Ok(bytes);
    }
    let mut moved = try_alloc::<u8>(bytes.len())?;
    hugepages::advise(moved.as_ptr(), moved.len());
    moved.copy_from_slice(&bytes);
    Ok(moved)
}

/// `(rows, width)` of a packed tensor: 2-D uint8, or an [`Error::Format`].
pub(crate) fn packed_shape(dtype: safetensors::Dtype, shape: &[usize]) -> Result<(usize, usize)> {
    match (dtype, shape) {
        (safetensors::Dtype::U8, &[rows, width]) => Ok((rows, width)),
        _ => Err(Error::Format(format!(
            "packed rows must be a 2-D uint8 tensor, got {dtype:?} of shape {shape:?}"
        ))),
    }
}

/// Every row's scale and bias must be finite: the first row where they are not, as a message.
pub(crate) fn check_scale_bias(bytes: &[u8], layout: RowLayout) -> std::result::Result<(), String> {
    let width = layout.row_bytes();
    if width == 0 {
        return Ok(());
    }
    match bytes.chunks_exact(width).position(|row| {
        let (s, b) = layout.scale_bias(row);
        !(s.is_finite() && b.is_finite())
    }) {
        None => Ok(()),
        Some(r) => {
            let (s, b) = layout.scale_bias(&bytes[r * width..(r + 1) * width]);
            Err(format!(
                "packed row {r} has scale {s} and bias {b}: both must be finite (a corrupted \
                 table, or not {}-bit rows)",
                layout.bits.get()
            ))
        }
    }
}
