//! The lookup fast path (`kernels::cpu::gather` via `Embedding::lookup_into`) is bit-identical to
//! the portable path (candle's `index_select`) for every id dtype, every table dtype, every
//! thread count, empty and 0-d ids, and dims that exercise the serial and the parallel branch.

use candle_core::{DType, Device, Tensor};
use candle_embed::dtype::Float;
use candle_embed::ids::Id;
use candle_embed::kernels::cpu::gather;
use candle_embed::{threads, Embedding, EmbeddingConfig};
use half::{bf16, f16};

mod common;
use common::{Host, Mix};

fn table(v: usize, d: usize, dtype: DType, seed: u64) -> Embedding {
    Embedding::new(
        v,
        d,
        EmbeddingConfig::default(),
        dtype,
        &Device::Cpu,
        Some(seed),
    )
    .unwrap()
}

/// Fast path into a buffer pre-filled with NaN (so an unwritten element cannot pass) against
/// the portable path converted to `D`, compared bit for bit.
fn check<I: Id, D: Float>(emb: &Embedding, ids: &[I], shape: &[usize]) {
    let d = emb.embedding_dim();
    let mut out = vec![D::of_f64(f64::NAN); ids.len() * d];
    emb.lookup_into(ids, &mut out).unwrap();
    let want = emb.lookup_portable(ids, shape).unwrap();
    let mut want_shape = shape.to_vec();
    want_shape.push(d);
    assert_eq!(want.dims(), want_shape.as_slice());
    let want = want.to_dtype(D::DT).unwrap().vec1::<D>();
    assert_eq!(out.len(), want.len());
    for (k, (a, b)) in out.iter().zip(&want).enumerate() {
        assert!(
            a.as_f64().to_bits() == b.as_f64().to_bits(),
            "element {k} (id #{}): fast {} != portable {}",
            k / d.max(1),
            a.as_f64(),
            b.as_f64()
        );
    }
    // lookup_vec is lookup_into on a fresh buffer.
    if D::DT == emb.dtype() {
        let v = emb.lookup_vec::<I, D>(ids).unwrap();
        assert!(v
            .iter()
            .zip(&out)
            .all(|(a, b)| a.as_f64().to_bits() == b.as_f64().to_bits()));
    }
}

fn random_ids<I: Id + TryFrom<u64>>(n: usize, v: usize, rng: &mut Mix) -> Vec<I> {
    (0..n)
        .map(|_| {
            I::try_from(rng.next() % v as u64)
                .ok()
                .expect("id fits its dtype")
        })
        .collect()
}

/// Every id dtype against one table, with N large enough for the parallel branch at D=37
/// (odd D: rows that straddle cache lines) and small enough for the serial one.
fn all_id_dtypes<D: Float>(emb: &Embedding, rng: &mut Mix) {
    let v = emb.num_embeddings();
    for n in [1, 5, 100, 3000] {
        check::<i8, D>(emb, &random_ids(n, v.min(127), rng), &[n]);
        check::<u8, D>(emb, &random_ids(n, v.min(255), rng), &[n]);
        check::<i16, D>(emb, &random_ids(n, v, rng), &[n]);
        check::<u16, D>(emb, &random_ids(n, v, rng), &[n]);
        check::<i32, D>(emb, &random_ids(n, v, rng), &[n]);
        check::<u32, D>(emb, &random_ids(n, v, rng), &[n]);
        check::<i64, D>(emb, &random_ids(n, v, rng), &[n]);
        check::<u64, D>(emb, &random_ids(n, v, rng), &[n]);
    }
    // 2-D ids, 0-d ids, empty ids (1-D and with a zero-sized dimension).
    check::<i64, D>(emb, &random_ids(24, v, rng), &[4, 6]);
    check::<i64, D>(emb, &[(v - 1) as i64], &[]);
    check::<i64, D>(emb, &[], &[0]);
    check::<u32, D>(emb, &[], &[3, 0]);
}

#[test]
fn fast_equals_portable_every_table_dtype() {
    let mut rng = Mix(7);
    for (k, d) in [1usize, 37, 128].into_iter().enumerate() {
        all_id_dtypes::<f32>(&table(300, d, DType::F32, k as u64), &mut rng);
        all_id_dtypes::<f64>(&table(300, d, DType::F64, k as u64), &mut rng);
        all_id_dtypes::<f16>(&table(300, d, DType::F16, k as u64), &mut rng);
        // bf16 and f16 tables also look up into f32 (the Python binding's output for bf16).
        all_id_dtypes::<f32>(&table(300, d, DType::BF16, k as u64), &mut rng);
        all_id_dtypes::<f32>(&table(300, d, DType::F16, k as u64), &mut rng);
        all_id_dtypes::<bf16>(&table(300, d, DType::BF16, k as u64), &mut rng);
    }
}

#[test]
fn fast_equals_portable_large_batches_any_thread_count() {
    // Big enough for the parallel branch and every chunking of it; repeated ids and the last row.
    let emb = table(5000, 64, DType::F32, 11);
    let mut rng = Mix(3);
    let mut ids: Vec<i64> = random_ids(20_000, 5000, &mut rng);
    ids[0] = 4999;
    ids[19_999] = 0;
    ids[1000..1100].fill(17);
    for t in [1, 2, 3, 8] {
        threads::set_num_threads(t).unwrap();
        check::<i64, f32>(&emb, &ids, &[20_000]);
        check::<u16, f32>(&emb, &random_ids(777, 5000, &mut rng), &[777]);
    }
    threads::set_num_threads(2).unwrap();
}

#[test]
fn gather_kernel_writes_every_row_and_nothing_else() {
    // The kernel API itself: exact rows, every output element written, for both entry points.
    let mut rng = Mix(5);
    for (v, d, n) in [
        (10usize, 3usize, 1usize),
        (1000, 512, 100),
        (70, 1, 70_000),
        (3, 33, 9),
    ] {
        let t: Vec<f32> = (0..v * d).map(|x| x as f32 * 0.5 - 1.0).collect();
        let ids: Vec<u32> = random_ids(n, v, &mut rng);
        let mut out = vec![f32::NAN; n * d];
        gather::gather_rows(&t, d, &ids, &mut out);
        let mut out_map = vec![f64::NAN; n * d];
        gather::gather_rows_map(&t, d, &ids, &mut out_map, f64::from);
        for (k, &id) in ids.iter().enumerate() {
            let row = &t[id as usize * d..(id as usize + 1) * d];
            assert_eq!(&out[k * d..(k + 1) * d], row, "row {k}");
            assert!(row
                .iter()
                .zip(&out_map[k * d..(k + 1) * d])
                .all(|(&a, &b)| f64::from(a) == b));
        }
    }
}

#[test]
fn fast_path_matches_candle_nn_embedding() {
    use candle_core::Module;
    let w = Tensor::randn(0f32, 1.0, (1000, 48), &Device::Cpu).unwrap();
    let ours = Embedding::from_pretrained(w.clone(), EmbeddingConfig::default()).unwrap();
    let theirs = candle_nn::Embedding::new(w, 48);
    let ids = Tensor::from_vec(
        (0..900u32).map(|i| (i * 7919) % 1000).collect(),
        (30, 30),
        &Device::Cpu,
    )
    .unwrap();
    let a = ours.forward(&ids).unwrap();
    let b = theirs.forward(&ids).unwrap();
    assert_eq!(a.dims(), b.dims());
    assert_eq!(a.vec1::<f32>(), b.vec1::<f32>());
}
