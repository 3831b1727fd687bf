//! Embedding API: constructors (seeded, VarBuilder, from_pretrained), Module forward, max_norm,
//! persistence, and every error variant a caller can trigger.

use candle_core::{DType, Device, Module, Tensor};
use candle_embed::{Embedding, EmbeddingConfig, Error};
use candle_nn::{VarBuilder, VarMap};

mod common;
use common::Host;

fn table(v: usize, d: usize) -> Embedding {
    Embedding::new(
        v,
        d,
        EmbeddingConfig::default(),
        DType::F32,
        &Device::Cpu,
        Some(1),
    )
    .unwrap()
}

#[test]
fn module_forward_matches_index_select_for_every_id_dtype() {
    let emb = table(100, 16);
    let w = emb.weight();
    let ids: Vec<u32> = (0..60).map(|i| (i * 37 % 100) as u32).collect();
    let want = w
        .index_select(&Tensor::new(ids.as_slice(), &Device::Cpu).unwrap(), 0)
        .unwrap()
        .reshape((6, 10, 16))
        .unwrap();
    for dtype in [DType::U8, DType::U32, DType::I64] {
        let t = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .reshape((6, 10))
            .unwrap();
        let t = t.to_dtype(dtype).unwrap();
        let got = emb.forward(&t).unwrap();
        assert_eq!(got.dims(), &[6, 10, 16]);
        let diff = (got - &want).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
    }
}

#[test]
fn out_of_range_and_negative_ids_are_index_errors() {
    let emb = table(10, 4);
    let mut out = vec![0f32; 8];
    match emb.lookup_into(&[3i64, 10], &mut out) {
        Err(Error::IndexOutOfRange { index, size, .. }) => assert_eq!((index, size), (10, 10)),
        other => panic!("expected IndexOutOfRange, got {other:?}"),
    }
    match emb.lookup_into(&[-1i32, 2], &mut out) {
        Err(Error::IndexOutOfRange { index, .. }) => assert_eq!(index, -1),
        other => panic!("expected IndexOutOfRange, got {other:?}"),
    }
    match emb.lookup_portable(&[u64::MAX], &[1]) {
        Err(Error::IndexOutOfRange { index, .. }) => assert_eq!(index, u64::MAX as i128),
        other => panic!("expected IndexOutOfRange, got {other:?}"),
    }
}

#[test]
fn shape_dtype_and_memory_errors() {
    let emb = table(10, 4);
    let mut short = vec![0f32; 3];
    assert!(matches!(
        emb.lookup_into(&[1u8], &mut short),
        Err(Error::Shape(_))
    ));
    let float_ids = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
    assert!(matches!(
        emb.lookup_tensor(&float_ids),
        Err(Error::DType(_))
    ));
    let int_table = Tensor::zeros((3, 2), DType::I64, &Device::Cpu).unwrap();
    assert!(matches!(
        Embedding::from_pretrained(int_table, EmbeddingConfig::default()),
        Err(Error::DType(_))
    ));
    let rank1 = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        Embedding::from_pretrained(rank1, EmbeddingConfig::default()),
        Err(Error::Shape(_))
    ));
    let huge = Embedding::new(
        usize::MAX / 2,
        4,
        EmbeddingConfig::default(),
        DType::F32,
        &Device::Cpu,
        None,
    );
    assert!(matches!(huge, Err(Error::Memory(_))));
    let cfg = EmbeddingConfig {
        padding_idx: Some(10),
        ..Default::default()
    };
    assert!(matches!(
        Embedding::new(10, 4, cfg, DType::F32, &Device::Cpu, None),
        Err(Error::IndexOutOfRange { .. })
    ));
}

#[test]
fn devices_missing_from_the_build_name_the_feature() {
    #[cfg(not(feature = "cuda"))]
    match candle_embed::device::parse_device("cuda:0") {
        Err(Error::UnsupportedDevice { reason, .. }) => assert!(reason.contains("`cuda`")),
        other => panic!("{other:?}"),
    }
    #[cfg(not(feature = "metal"))]
    assert!(candle_embed::device::parse_device("metal").is_err());
    assert!(candle_embed::device::parse_device("cpu").unwrap().is_cpu());
    assert!(candle_embed::device::parse_device("gpu").is_err());
}

#[test]
fn var_builder_constructor_creates_a_normal_table() {
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let emb =
        Embedding::from_var_builder(vb.pp("tok"), 500, 32, EmbeddingConfig::default()).unwrap();
    assert_eq!((emb.num_embeddings(), emb.embedding_dim()), (500, 32));
    let w = emb.weight().vec1::<f32>();
    let mean = w.iter().map(|&x| x as f64).sum::<f64>() / w.len() as f64;
    let var = w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / w.len() as f64;
    assert!(
        mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
        "mean {mean} var {var}"
    );
    assert!(map.data().lock().unwrap().contains_key("tok.weight"));
}

#[test]
fn seeded_tables_are_reproducible_and_padding_is_zero() {
    let cfg = EmbeddingConfig {
        padding_idx: Some(-1),
        ..Default::default()
    };
    let a = Embedding::new(64, 8, cfg.clone(), DType::F64, &Device::Cpu, Some(5)).unwrap();
    let b = Embedding::new(64, 8, cfg, DType::F64, &Device::Cpu, Some(5)).unwrap();
    let (wa, wb) = (
        a.weight().to_vec2::<f64>().unwrap(),
        b.weight().to_vec2::<f64>().unwrap(),
    );
    assert_eq!(wa, wb);
    assert_eq!(a.padding_idx(), Some(63));
    assert!(wa[63].iter().all(|&x| x == 0.0));
}

#[test]
fn max_norm_rescales_only_looked_up_rows_above_the_limit() {
    let w = Tensor::new(&[[3f32, 4.0], [0.3, 0.4], [6.0, 8.0]], &Device::Cpu).unwrap();
    let cfg = EmbeddingConfig {
        max_norm: Some(1.0),
        ..Default::default()
    };
    let emb = Embedding::from_pretrained(w, cfg).unwrap();
    let mut out = vec![0f32; 4];
    emb.lookup_into(&[0u32, 1], &mut out).unwrap();
    let s = 1.0 / (5.0 + 1e-7);
    let expect = [3.0 * s, 4.0 * s, 0.3, 0.4];
    for (o, e) in out.iter().zip(expect) {
        assert!((*o as f64 - e).abs() < 1e-6, "{out:?}");
    }
    let table = emb.weight().to_vec2::<f32>().unwrap();
    assert_eq!(table[2], vec![6.0, 8.0], "row 2 was not looked up");
}

#[test]
fn save_and_load_keep_table_and_config() {
    let dir = std::env::temp_dir().join(format!("candle-embed-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.safetensors");
    let cfg = EmbeddingConfig {
        padding_idx: Some(2),
        max_norm: Some(3.0),
        norm_type: f64::INFINITY,
        scale_grad_by_freq: true,
        freeze: true,
    };
    let emb = Embedding::new(9, 3, cfg.clone(), DType::F16, &Device::Cpu, Some(2)).unwrap();
    emb.save(&path).unwrap();
    let back = Embedding::load(&path, &Device::Cpu).unwrap();
    assert_eq!(back.config(), &cfg);
    assert_eq!(back.dtype(), DType::F16);
    let (a, b) = (emb.weight().vec2::<f32>(), back.weight().vec2::<f32>());
    assert_eq!(a, b);
    std::fs::write(
        dir.join("bad.safetensors"),
        b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}",
    )
    .unwrap();
    assert!(matches!(
        Embedding::load(dir.join("bad.safetensors"), &Device::Cpu),
        Err(Error::Format(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Placement is the core's policy: `from_pretrained` moves a CPU table of at least
/// `hugepages::MIN_BYTES` into huge-page memory (a copy: writes to the caller's tensor no longer
/// show through) and shares a smaller one; `from_var_builder` always shares the builder's
/// tensor, so optimizers on the `VarMap` update the table. Values are exact either way.
#[test]
fn from_pretrained_places_large_cpu_tables_and_shares_small_ones() {
    let large_rows = candle_embed::hugepages::MIN_BYTES / (4 * 64) + 5;
    for (rows, shared) in [(7usize, true), (large_rows, false)] {
        let v: Vec<f32> = (0..rows * 64).map(|i| (i % 1000) as f32 - 500.0).collect();
        let w = Tensor::from_vec(v.clone(), (rows, 64), &Device::Cpu).unwrap();
        let emb = Embedding::from_pretrained(w.clone(), EmbeddingConfig::default()).unwrap();
        assert_eq!(emb.weight().vec1::<f32>(), v);
        candle_embed::storage::write::<f32, ()>(&w, |s| {
            s[0] = 1234.5;
            Ok(())
        })
        .unwrap();
        let first = emb.weight().vec1::<f32>()[0];
        assert_eq!(first == 1234.5, shared, "{rows} rows");
    }
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let emb = Embedding::from_var_builder(vb, large_rows, 64, EmbeddingConfig::default()).unwrap();
    let var = map.all_vars().pop().unwrap();
    var.set(&var.zeros_like().unwrap()).unwrap();
    assert!(emb.weight().vec1::<f32>().iter().all(|&x| x == 0.0));
}
