//! The packed-row kernel against the column-by-column loop (FBGEMM's per-element order).

use super::*;
use crate::quantized::QuantizedTable;

/// FBGEMM's per-element order, one column at a time (the kernel before register blocks):
/// `acc = fma(code, w * scale, acc + w * bias)`, max of `fma(code, scale, bias)`.
fn column_by_column(args: &PoolArgs<'_, u32>, bags: &[(usize, usize)]) -> Vec<f32> {
    let (dim, width) = (args.layout.dim, args.layout.row_bytes());
    let mut out = vec![0f32; bags.len() * dim];
    for (b, &(lo, hi)) in bags.iter().enumerate() {
        for j in 0..dim {
            let max = args.mode == Reduce::Max;
            let (mut acc, mut count) = (if max { f32::NEG_INFINITY } else { 0.0 }, 0);
            for pos in lo..hi {
                let id = args.ids[pos] as usize;
                if Some(id) == args.padding {
                    continue;
                }
                count += 1;
                let row = &args.packed[id * width..(id + 1) * width];
                let (s, bias) = args.layout.scale_bias(row);
                let code = f32::from(match args.layout.bits {
                    Bits::Eight => row[j],
                    Bits::Four => (row[j / 2] >> (4 * (j % 2))) & 0x0F,
                });
                if max {
                    let x = code.mul_add(s, bias);
                    acc = if x > acc { x } else { acc };
                    continue;
                }
                let w = args.weights.map_or(1.0, |ws| ws[pos]);
                acc = code.mul_add(w * s, acc + w * bias);
            }
            out[b * dim + j] = match (count, args.mode) {
                (0, _) => 0.0,
                (_, Reduce::Mean) => acc * (1.0 / count as f32),
                _ => acc,
            };
        }
    }
    out
}

/// A lookup whose output is past the streaming threshold (4 MiB by default, so these
/// outputs stream wherever their start allows) gives the column-by-column loop's bits, for
/// rows of one block and of a block plus a tail; and the f16 output (half the bytes, below
/// the threshold) the same values rounded once.
#[test]
fn large_lookups_written_with_streaming_stores_match_the_column_by_column_loop() {
    let rows = 23usize;
    let n = (5usize << 20) / (64 * 4);
    let ids: Vec<u32> = (0..n as u32).map(|k| (k * 7 + 3) % rows as u32).collect();
    let singles: Vec<(usize, usize)> = (0..n).map(|k| (k, k + 1)).collect();
    for dim in [64usize, 72] {
        let values: Vec<f32> = (0..rows * dim).map(|i| ((i as f32) * 0.61).cos()).collect();
        for bits in [Bits::Eight, Bits::Four] {
            let table = QuantizedTable::quantize(&values, rows, dim, bits).unwrap();
            table.with_bytes(|packed| {
                let args = PoolArgs {
                    packed,
                    layout: table.layout(),
                    ids: &ids,
                    bounds: Bounds::Singles,
                    weights: None,
                    padding: None,
                    mode: Reduce::Sum,
                };
                let want = column_by_column(&args, &singles);
                let mut got = vec![f32::NAN; n * dim];
                assert!(stream::width_for(got.as_ptr().cast(), dim * 4).is_some());
                pool(&args, &mut got);
                assert!(got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
                let mut got16 = vec![half::f16::NAN; n * dim];
                pool(&args, &mut got16);
                let want16 = want.iter().map(|&x| half::f16::from_f32(x));
                assert!(got16
                    .iter()
                    .zip(want16)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            });
        }
    }
}

/// The 64-column register blocks and the tail block give the column-by-column loop's bits
/// (the order FBGEMM's kernels use, which the fixture tests pin for D < 64), for row widths
/// below, at and past one block, both code widths, every mode, with weights and padding;
/// widths that are multiples of 8 take the AVX2 blocks on a CPU that has them (multiples of 16
/// the AVX-512 blocks of up to 128 columns where those are built), the others (12, and 70's
/// 6-column tail) the portable block loop.
#[test]
fn register_blocks_match_the_column_by_column_loop_bit_for_bit() {
    let rows = 23usize;
    let bags = [(0usize, 0usize), (0, 7), (7, 8), (8, 40)];
    let ids: Vec<u32> = (0..40u32).map(|k| (k * 7 + k * k) % rows as u32).collect();
    let ws: Vec<f32> = (0..40).map(|k| 0.25 + k as f32 * 0.03).collect();
    let csr = [0usize, 0, 7, 8, 40];
    for dim in [8usize, 12, 16, 48, 64, 70, 128, 136, 144, 200, 256] {
        let values: Vec<f32> = (0..rows * dim)
            .map(|i| ((i as f32) * 0.377).sin() * 4.0)
            .collect();
        for bits in [Bits::Eight, Bits::Four] {
            let table = QuantizedTable::quantize(&values, rows, dim, bits).unwrap();
            let cases = [
                (Reduce::Sum, None),
                (Reduce::Sum, Some(&ws[..])),
                (Reduce::Mean, None),
                (Reduce::Max, None),
            ];
            for (mode, weights) in cases {
                table.with_bytes(|packed| {
                    let args = PoolArgs {
                        packed,
                        layout: table.layout(),
                        ids: &ids,
                        bounds: Bounds::Csr(&csr),
                        weights,
                        padding: Some(ids[3] as usize),
                        mode,
                    };
                    let mut got = vec![f32::NAN; bags.len() * dim];
                    pool(&args, &mut got);
                    let want = column_by_column(&args, &bags);
                    let bits_of = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits_of(&got), bits_of(&want), "{dim} {bits:?} {mode:?}");
                });
            }
        }
    }
}
