//! Floating-point element types of tables (f32, f64, f16, bf16), dispatch over them, and the
//! crate's accumulation rule.
//!
//! # Accumulation
//! A sum of many table elements (a coalesced gradient row, a bag, a reduction) never runs in a
//! 16-bit type. The rule, applied by every reduction in the crate:
//! - a sum of table-dtype values accumulates in [`Float::Acc`]: f32 for f16, bf16 and f32,
//!   f64 for f64 (PyTorch's `acc_type` on CPU); [`acc_dtype`] is the same rule for candle's
//!   portable paths;
//! - a sum of products formed in f64 (a weight times a gradient, a dot product's terms)
//!   accumulates in f64;
//! - terms are added in ascending input position, each output by one thread, so every result
//!   is bit-identical for any thread count.
//!
//! Both accumulator types implement [`Accumulator`]; the grouping primitive
//! ([`crate::sparse::coalesce::sum_groups`]) is generic over it.

use candle_core::{CpuStorage, DType, WithDType};

pub mod half_rows;

/// The type a reduction accumulates in: f32 or f64 (see the module docs for which one).
pub trait Accumulator:
    num_traits::Float + Send + Sync + Copy + std::iter::Sum + std::ops::AddAssign + 'static
{
    /// `v` rounded to this type.
    fn of_f64(v: f64) -> Self;
    /// This value as f64 (exact).
    fn to_f64(self) -> f64;
    /// `dst[j] = src[j]` rounded to `D` (the same bits as `D::of_f64(src[j].to_f64())`): how a
    /// reduction writes its accumulator tile out, a whole tile per call so that 16-bit outputs
    /// convert several elements at a time ([`Float::from_f32_slice`]).
    #[inline(always)]
    fn store<D: Float>(src: &[Self], dst: &mut [D]) {
        for (d, &a) in dst.iter_mut().zip(src) {
            *d = D::of_f64(a.to_f64());
        }
    }
}

impl Accumulator for f32 {
    #[inline(always)]
    fn of_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn store<D: Float>(src: &[Self], dst: &mut [D]) {
        D::from_f32_slice(src, dst)
    }
}

impl Accumulator for f64 {
    #[inline(always)]
    fn of_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// A floating-point table element. Arithmetic-heavy kernels accumulate in `Self::Acc`
/// (f32 for the 16-bit types and f32, f64 for f64) so that f16/bf16 tables keep f32 precision
/// in sums, as PyTorch does.
pub trait Float: WithDType + num_traits::Float + Send + Sync + 'static {
    /// Accumulator type used by reductions and optimizer math.
    type Acc: Accumulator;
    /// The value widened to the accumulator type (exact).
    fn to_acc(self) -> Self::Acc;
    /// An accumulator value rounded to this type.
    fn from_acc(v: Self::Acc) -> Self;
    /// `v` rounded to the accumulator type.
    fn acc_from_f64(v: f64) -> Self::Acc;
    /// An accumulator value as f64 (exact).
    fn acc_to_f64(v: Self::Acc) -> f64;
    /// The value as f64 (exact for every table dtype).
    #[inline(always)]
    fn as_f64(self) -> f64 {
        <Self as WithDType>::to_f64(self)
    }
    /// The nearest value of this type to `v`.
    #[inline(always)]
    fn of_f64(v: f64) -> Self {
        <Self as WithDType>::from_f64(v)
    }
    /// This type's candle dtype.
    const DT: DType = <Self as WithDType>::DTYPE;
    /// Mutable access to the elements of a CPU storage of this type.
    fn storage_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
    /// `acc[j] += row[j].to_acc() (* weight)` for `j < acc.len()`: a table row added into a
    /// reduction's accumulator (the bag sum's inner loop). The product and the sum are rounded
    /// separately, as written. f16 converts eight elements at a time in registers
    /// ([`half_rows`]) with the same bits.
    #[inline(always)]
    fn add_row(acc: &mut [Self::Acc], row: &[Self], weight: Option<Self::Acc>) {
        match weight {
            None => acc.iter_mut().zip(row).for_each(|(a, &x)| *a += x.to_acc()),
            Some(w) => acc
                .iter_mut()
                .zip(row)
                .for_each(|(a, &x)| *a += x.to_acc() * w),
        }
    }
    /// `dst[j] = src[j]` rounded to this type (the bits of `of_f64(f64::from(src[j]))`, one
    /// rounding). f16 converts eight at a time ([`half_rows::narrow`]).
    #[inline(always)]
    fn from_f32_slice(src: &[f32], dst: &mut [Self]) {
        for (d, &a) in dst.iter_mut().zip(src) {
            *d = Self::of_f64(f64::from(a));
        }
    }
}

/// The accumulator dtype of a table dtype (f64 for f64, f32 otherwise): [`Float::Acc`] as a
/// candle dtype, for the portable paths.
pub fn acc_dtype(d: DType) -> DType {
    if d == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

macro_rules! impl_float {
    ($t:ty, $acc:ty, $variant:ident, $to:expr, $from:expr $(, $fast:item)*) => {
        impl Float for $t {
            $($fast)*
            type Acc = $acc;
            #[inline(always)]
            fn to_acc(self) -> $acc {
                $to(self)
            }
            #[inline(always)]
            fn from_acc(v: $acc) -> Self {
                $from(v)
            }
            #[inline(always)]
            fn acc_from_f64(v: f64) -> $acc {
                v as $acc
            }
            #[inline(always)]
            fn acc_to_f64(v: $acc) -> f64 {
                v as f64
            }
            fn storage_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
                match s {
                    CpuStorage::$variant(v) => Some(v.as_mut_slice()),
                    _ => None,
                }
            }
        }
    };
}
impl_float!(f32, f32, F32, |x| x, |x| x);
impl_float!(f64, f64, F64, |x| x, |x| x);
// half's per-element f16 conversions check the CPU's features on every call: rows and output
// tiles go through the F16C slice kernels instead.
impl_float!(
    half::f16,
    f32,
    F16,
    half::f16::to_f32,
    half::f16::from_f32,
    #[inline(always)]
    fn add_row(acc: &mut [f32], row: &[Self], weight: Option<f32>) {
        half_rows::add_row(acc, row, weight)
    },
    #[inline(always)]
    fn from_f32_slice(src: &[f32], dst: &mut [Self]) {
        half_rows::narrow(src, dst)
    }
);
impl_float!(
    half::bf16,
    f32,
    BF16,
    half::bf16::to_f32,
    half::bf16::from_f32
);

/// Parse a user-facing dtype name ("float32", "f32", "float64", "float16", "bfloat16").
pub fn parse_dtype(name: &str) -> crate::Result<DType> {
    Ok(match name {
        "float32" | "f32" => DType::F32,
        "float64" | "f64" => DType::F64,
        "float16" | "f16" | "half" => DType::F16,
        "bfloat16" | "bf16" => DType::BF16,
        other => {
            return Err(crate::Error::dtype(format!(
                "unsupported table dtype '{other}': expected float32, float64, float16 or bfloat16"
            )))
        }
    })
}

/// The user-facing name of a table dtype.
pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::F64 => "float64",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        _ => "unsupported",
    }
}

/// Check that `d` is a floating table dtype.
pub fn check_float(d: DType) -> crate::Result<()> {
    match d {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => Ok(()),
        other => Err(crate::Error::dtype(format!(
            "tables must be float32, float64, float16 or bfloat16, got {other:?}"
        ))),
    }
}

/// Call a generic body with `$T` bound to the Rust type of a float `DType` (crate-internal).
macro_rules! with_float {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $T = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $T = f64;
                $body
            }
            candle_core::DType::F16 => {
                type $T = half::f16;
                $body
            }
            candle_core::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            other => Err($crate::Error::DType(format!(
                "unsupported table dtype {other:?}"
            ))),
        }
    };
}
pub(crate) use with_float;
