//! Word-vector files: raw entries (undecoded words, duplicates kept), gensim's writer options,
//! and the KeyedVectors safetensors layout (streamed write, header-only index checked against
//! the file's size).

use std::collections::HashMap;
use std::path::PathBuf;

use candle_embed::io::keyed_vectors::{self, TensorBytes};
use candle_embed::io::word2vec::{self as fmt, ReadOptions, WriteOptions};
use candle_embed::Error;
use safetensors::Dtype;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ce-wvf-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn raw_entries_keep_undecodable_words_and_duplicates() {
    let d = dir("raw");
    let p = d.join("v.txt");
    // a word cut inside a multibyte character (as word2vec.c writes), and a duplicate
    std::fs::write(&p, b"3 2\nab\xe3\x81 1 2\nx 3 4\nx 5 6\r\n").unwrap();
    let raw = fmt::read_raw(&p, ReadOptions::default()).unwrap();
    assert_eq!(raw.count, 3);
    assert_eq!(raw.words, b"ab\xe3\x81 x x ");
    assert_eq!(raw.vectors, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let e = fmt::read(&p, false, false, None).unwrap_err();
    assert!(
        matches!(e, Error::Format(ref m) if m.contains("UTF-8")),
        "{e}"
    );
    // binary: newlines before a word are skipped (gensim strips them)
    let mut bin = b"2 1\n\nw\xff ".to_vec();
    bin.extend(1.5f32.to_le_bytes());
    bin.extend(b"\n\nv ");
    bin.extend(2.5f32.to_le_bytes());
    std::fs::write(&p, &bin).unwrap();
    let opts = ReadOptions {
        binary: true,
        ..Default::default()
    };
    let raw = fmt::read_raw(&p, opts).unwrap();
    assert_eq!(
        (raw.words.as_slice(), raw.vectors.as_slice()),
        (&b"w\xff v "[..], &[1.5f32, 2.5][..])
    );
    let one = fmt::read_raw(
        &p,
        ReadOptions {
            limit: Some(1),
            ..opts
        },
    )
    .unwrap();
    assert_eq!(one.count, 1);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn writer_options_header_prefix_order_append() {
    let d = dir("write");
    let p = d.join("v.txt");
    let words = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let vecs = [0.1f64, 1e-30, 2.5, -3.0, 1e300, 7.0];
    let opts = WriteOptions {
        binary: false,
        header: Some(7),
        prefix: "p_",
        order: Some(&[2, 0]),
        append: false,
    };
    fmt::write_with(&p, &words, &vecs, 2, opts).unwrap();
    // f64 values keep every digit they need to read back
    let text = std::fs::read_to_string(&p).unwrap();
    assert_eq!(text, "7 2\np_c 1e300 7\np_a 0.1 1e-30\n");
    let no_header = WriteOptions {
        header: None,
        append: true,
        prefix: "",
        order: None,
        ..opts
    };
    fmt::write_with(&p, &words, &vecs, 2, no_header).unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(
        text.ends_with("\na 0.1 1e-30\nb 2.5 -3\nc 1e300 7\n"),
        "{text}"
    );
    // binary values are float32, whatever the table's type
    let b = d.join("v.bin");
    let bin = WriteOptions {
        binary: true,
        header: Some(3),
        ..Default::default()
    };
    fmt::write_with(&b, &words, &vecs, 2, bin).unwrap();
    let back = fmt::read(&b, true, false, None).unwrap();
    let want: Vec<f32> = vecs.iter().map(|&v| v as f32).collect();
    assert_eq!(back.vectors, want);
    for bad in [
        WriteOptions {
            prefix: "a b",
            ..Default::default()
        },
        WriteOptions {
            order: Some(&[3]),
            ..Default::default()
        },
    ] {
        let e = fmt::write_with(&d.join("x.txt"), &words, &vecs, 2, bad).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument(_) | Error::IndexOutOfRange { .. }),
            "{e}"
        );
        assert!(!d.join("x.txt").exists());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn keyed_vectors_file_is_indexed_from_its_header() {
    let d = dir("kv");
    let p = d.join("kv.safetensors");
    let weight: Vec<u8> = (0..6u32).flat_map(|v| (v as f32).to_le_bytes()).collect();
    let count: Vec<u8> = [5i64, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    let meta = HashMap::from([("k".to_string(), "v".to_string())]);
    let tensors = [
        TensorBytes {
            name: "weight",
            dtype: Dtype::F32,
            shape: &[2, 3],
            data: &weight,
        },
        TensorBytes {
            name: "vecattr.count",
            dtype: Dtype::I64,
            shape: &[2],
            data: &count,
        },
    ];
    keyed_vectors::write(&p, &tensors, meta.clone()).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let (index, got_meta) = keyed_vectors::index(&p).unwrap();
    assert_eq!(got_meta, meta);
    for t in &tensors {
        let loc = &index[t.name];
        assert_eq!((loc.dtype, loc.shape.as_slice()), (t.dtype, t.shape));
        let at = loc.offset as usize;
        assert_eq!(&bytes[at..at + loc.len as usize], t.data);
        assert_eq!(at % 8, 0, "data 8-byte aligned");
    }
    // the safetensors crate reads what we wrote
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("weight").unwrap().data(), weight.as_slice());
    // a wrong byte count is refused before writing
    let bad = [TensorBytes {
        name: "w",
        dtype: Dtype::F32,
        shape: &[2, 2],
        data: &weight,
    }];
    assert!(matches!(
        keyed_vectors::write(&d.join("b"), &bad, HashMap::new()),
        Err(Error::Shape(_))
    ));
    // truncated, extended, or a header promising more than the file: Format errors
    let cut = d.join("cut.safetensors");
    for broken in [
        bytes[..bytes.len() - 1].to_vec(),
        [bytes.as_slice(), b"x"].concat(),
        bytes[..4].to_vec(),
        [&u64::MAX.to_le_bytes()[..], &bytes[8..]].concat(),
        [&(bytes.len() as u64).to_le_bytes()[..], &bytes[8..]].concat(),
        [&bytes[..8], &b"{\"w\": 1}"[..]].concat(),
    ] {
        std::fs::write(&cut, &broken).unwrap();
        let e = keyed_vectors::index(&cut).unwrap_err();
        assert!(matches!(e, Error::Format(_)), "{e}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}
