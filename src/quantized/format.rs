//! FBGEMM's fused row-wise layout: each row of the packed table is its codes followed by its
//! scale and bias, so one row is one contiguous read.
//!
//! | bits | codes                                   | then                          | row bytes   |
//! |------|-----------------------------------------|-------------------------------|-------------|
//! | 8    | `D` bytes, one code each                | scale, bias: f32 little-endian | `D + 8`     |
//! | 4    | `D / 2` bytes, two codes each, low nibble first | scale, bias: f16 little-endian | `D / 2 + 4` |
//!
//! (FBGEMM's `FloatOrHalfToFused8BitRowwiseQuantizedSBFloat` and
//! `FloatOrHalfToFusedNBitRowwiseQuantizedSBHalf`; PyTorch's `embedding_bag_byte_prepack` /
//! `embedding_bag_4bit_prepack`.) Element `j` of a row is `scale * code_j + bias`.
//! 4-bit rows need an even `D`, as FBGEMM's kernels and PyTorch's prepack require: the packed
//! width then says `D` exactly.

use crate::{Error, Result};

/// The code width of a quantized table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bits {
    /// One byte per element, f32 scale and bias.
    Eight,
    /// Half a byte per element, f16 scale and bias.
    Four,
}

impl Bits {
    /// `8` or `4`; anything else is an [`Error::InvalidArgument`].
    pub fn new(bits: u64) -> Result<Bits> {
        match bits {
            8 => Ok(Bits::Eight),
            4 => Ok(Bits::Four),
            other => Err(Error::invalid(format!(
                "bits must be 8 or 4 (FBGEMM's fused row-wise formats), got {other}"
            ))),
        }
    }

    /// The number of bits per code.
    pub fn get(self) -> u32 {
        match self {
            Bits::Eight => 8,
            Bits::Four => 4,
        }
    }

    /// The largest code, `2^bits - 1`.
    pub fn max_code(self) -> u8 {
        match self {
            Bits::Eight => 255,
            Bits::Four => 15,
        }
    }

    /// Bytes of the scale and bias at the end of each row.
    pub fn scale_bias_bytes(self) -> usize {
        match self {
            Bits::Eight => 8,
            Bits::Four => 4,
        }
    }
}

/// The byte layout of one packed row of `dim` elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowLayout {
    /// Elements per row (`D`).
    pub dim: usize,
    /// Code width.
    pub bits: Bits,
}

impl RowLayout {
    /// The layout of rows of `dim` elements; an odd `dim` with 4 bits is an error.
    pub fn new(dim: usize, bits: Bits) -> Result<RowLayout> {
        if bits == Bits::Four && dim % 2 != 0 {
            return Err(Error::invalid(format!(
                "4-bit rows hold two codes a byte, so embedding_dim must be even, got {dim}"
            )));
        }
        let layout = RowLayout { dim, bits };
        layout
            .codes_bytes()
            .checked_add(bits.scale_bias_bytes())
            .ok_or_else(|| Error::Memory(format!("rows of {dim} elements do not fit in memory")))?;
        Ok(layout)
    }

    /// The layout whose rows are `width` bytes (the packed array's second dimension).
    pub fn from_row_bytes(width: usize, bits: Bits) -> Result<RowLayout> {
        let sb = bits.scale_bias_bytes();
        let codes = width.checked_sub(sb).ok_or_else(|| {
            Error::shape(format!(
                "packed {}-bit rows are at least {sb} bytes wide (scale and bias), got {width}",
                bits.get()
            ))
        })?;
        let dim = match bits {
            Bits::Eight => codes,
            Bits::Four => codes * 2,
        };
        RowLayout::new(dim, bits)
    }

    /// Bytes of codes at the start of a row.
    pub fn codes_bytes(&self) -> usize {
        match self.bits {
            Bits::Eight => self.dim,
            Bits::Four => self.dim / 2,
        }
    }

    /// Bytes of a whole row.
    pub fn row_bytes(&self) -> usize {
        self.codes_bytes() + self.bits.scale_bias_bytes()
    }

    /// A row's `(scale, bias)` as f32 (exact: f16 widens exactly).
    #[inline(always)]
    pub fn scale_bias(&self, row: &[u8]) -> (f32, f32) {
        let sb = &row[self.codes_bytes()..];
        match self.bits {
            Bits::Eight => (
                f32::from_le_bytes([sb[0], sb[1], sb[2], sb[3]]),
                f32::from_le_bytes([sb[4], sb[5], sb[6], sb[7]]),
            ),
            Bits::Four => (
                half::f16::from_le_bytes([sb[0], sb[1]]).to_f32(),
                half::f16::from_le_bytes([sb[2], sb[3]]).to_f32(),
            ),
        }
    }

    /// Code `j` of a row.
    #[inline(always)]
    pub fn code(&self, row: &[u8], j: usize) -> u8 {
        match self.bits {
            Bits::Eight => row[j],
            Bits::Four => (row[j / 2] >> ((j % 2) * 4)) & 0x0F,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_fbgemm() {
        let l8 = RowLayout::new(5, Bits::Eight).unwrap();
        assert_eq!((l8.codes_bytes(), l8.row_bytes()), (5, 13));
        let l4 = RowLayout::new(6, Bits::Four).unwrap();
        assert_eq!((l4.codes_bytes(), l4.row_bytes()), (3, 7));
        assert_eq!(RowLayout::from_row_bytes(13, Bits::Eight).unwrap(), l8);
        assert_eq!(RowLayout::from_row_bytes(7, Bits::Four).unwrap(), l4);
        assert!(matches!(
            RowLayout::new(5, Bits::Four),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            RowLayout::from_row_bytes(3, Bits::Four),
            Err(Error::Shape(_))
        ));
        assert!(matches!(Bits::new(2), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn codes_are_low_nibble_first_and_scale_bias_little_endian() {
        let l4 = RowLayout::new(4, Bits::Four).unwrap();
        let mut row = vec![0x21, 0x43];
        row.extend(half::f16::from_f32(0.5).to_le_bytes());
        row.extend(half::f16::from_f32(-2.0).to_le_bytes());
        let codes: Vec<u8> = (0..4).map(|j| l4.code(&row, j)).collect();
        assert_eq!(codes, [1, 2, 3, 4]);
        assert_eq!(l4.scale_bias(&row), (0.5, -2.0));
    }
}
