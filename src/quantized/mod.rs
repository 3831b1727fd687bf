//! Row-wise quantized tables in FBGEMM's fused layout: [`QuantizedEmbedding`] and
//! [`QuantizedEmbeddingBag`], read-only tables for serving at a quarter (int8) or an eighth
//! (int4) of f32's memory, plus a few bytes per row.
//!
//! Each row `r` stores codes `q_rj` (8 or 4 bits) and its own `scale_r`, `bias_r`
//! ([`mod@format`]); element `j` is `scale_r * q_rj + bias_r`. Quantization ([`quantize`]) uses
//! FBGEMM's formula and rounding exactly, so `packed` bytes equal PyTorch's
//! `embedding_bag_byte_prepack` / `embedding_bag_4bit_prepack` and tables move between the two
//! both ways; each element lands within half a step (`scale_r / 2`) of its float value (4 bits:
//! of values inside the row's f16-rounded range).
//!
//! Lookups and bags ([`kernel`]) dequantize and pool in one pass, accumulating in f32 with
//! FBGEMM's operation order (bit-identical to its `EmbeddingSpMDM` kernels for f32 output), and
//! write f32, f16, bf16 or f64. The portable path ([`portable`], candle ops) is the reference.
//!
//! [`attend`] scores queries against every row without dequantizing (similarity search).
//!
//! A quantized table lives in memory or in a memory-mapped file ([`mod@file`],
//! `load(mmap=true)`), read in place. CPU only (a portable path exists, but packed tables are host memory).

pub mod attend;
pub mod bag;
pub mod file;
pub mod format;
pub mod kernel;
pub mod lookup;
pub mod pool_args;
pub mod portable;
pub mod quantize;
#[cfg(target_arch = "x86_64")]
pub mod regs;
#[cfg(target_arch = "x86_64")]
pub mod simd;
#[cfg(all(target_arch = "x86_64", candle_embed_avx512))]
pub mod simd512;
pub mod table;

pub use attend::QuantizedRows;
pub use bag::QuantizedEmbeddingBag;
pub use format::{Bits, RowLayout};
pub use lookup::QuantizedEmbedding;
pub use table::QuantizedTable;
