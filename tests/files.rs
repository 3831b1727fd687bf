//! Files (issue 19, classes 6 and 8): what a save replaces and keeps, what a load opens, and
//! forged files that parse but describe tables that cannot be used.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_embed::{Embedding, EmbeddingConfig, Error};

/// A fresh directory for one test.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ce-files-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn table() -> Embedding {
    Embedding::new(
        5,
        3,
        EmbeddingConfig::default(),
        DType::F32,
        &Device::Cpu,
        Some(0),
    )
    .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn umask() -> u32 {
    // SAFETY: umask only swaps the process mask; it is set straight back.
    unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m as u32
    }
}

#[test]
fn saving_over_a_file_keeps_its_permission_bits() {
    let dir = scratch("mode");
    let p = dir.join("t.safetensors");
    for bits in [0o600, 0o640, 0o444, 0o755] {
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(bits)).unwrap();
        table().save(&p).unwrap();
        assert_eq!(mode(&p), bits, "mode {bits:o} not kept");
        // and the file is the new table, not the old bytes
        assert_eq!(
            Embedding::load(&p, &Device::Cpu).unwrap().num_embeddings(),
            5
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // a new file: 0666 & ~umask, as open() gives
    let fresh = dir.join("fresh.safetensors");
    table().save(&fresh).unwrap();
    assert_eq!(mode(&fresh), 0o666 & !umask());
    assert_eq!(names(&dir), ["fresh.safetensors", "t.safetensors"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_name_of_240_bytes_saves_and_loads() {
    let dir = scratch("long");
    for len in [240, 255] {
        let name = format!("{}.bin", "L".repeat(len - 4));
        let p = dir.join(&name);
        table().save(&p).unwrap();
        table().save(&p).unwrap(); // over an existing file too
        assert_eq!(
            Embedding::load(&p, &Device::Cpu).unwrap().embedding_dim(),
            3
        );
    }
    assert_eq!(names(&dir).len(), 2, "{:?}", names(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn special_files_are_refused_on_save_and_load_without_blocking() {
    let dir = scratch("special");
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let sock = dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for p in [fifo.as_path(), sock.as_path(), Path::new("/dev/null")] {
        let saved = table().save(p);
        assert!(
            matches!(&saved, Err(Error::InvalidArgument(m)) if m.contains(&*p.to_string_lossy())),
            "{p:?}: {saved:?}"
        );
        let loaded = Embedding::load(p, &Device::Cpu);
        assert!(
            matches!(&loaded, Err(Error::InvalidArgument(_))),
            "{p:?}: {loaded:?}"
        );
    }
    // still what they were
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(std::fs::metadata(&sock).unwrap().file_type().is_socket());
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stale_temporary_files_of_a_killed_save_are_removed_fresh_ones_kept() {
    let dir = scratch("stale");
    let old = dir.join(".candle-embed-00000000deadbeef.tmp");
    let recent = dir.join(".candle-embed-00000000cafef00d.tmp");
    let foreign = dir.join(".other-00000000deadbeef.tmp");
    for p in [&old, &recent, &foreign] {
        std::fs::write(p, b"half a table").unwrap();
    }
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for p in [&old, &foreign] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
    }
    table().save(dir.join("t.safetensors")).unwrap();
    assert_eq!(
        names(&dir),
        [
            ".candle-embed-00000000cafef00d.tmp",
            ".other-00000000deadbeef.tmp",
            "t.safetensors"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A safetensors file written by hand: one tensor `weight` of `dtype` and `shape` with `data`,
/// and the given `__metadata__` entries.
fn forge(p: &Path, dtype: &str, shape: &[u64], data: &[u8], meta: &str) {
    let header = format!(
        "{{\"__metadata__\":{{{meta}}},\"weight\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\
         \"data_offsets\":[0,{}]}}}}",
        data.len()
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn forged_tables_are_format_errors() {
    let dir = scratch("forged");
    let p = dir.join("f.safetensors");
    let ok = vec![0u8; 4 * 3 * 4];
    // the honest file loads
    forge(&p, "F32", &[4, 3], &ok, "");
    assert_eq!(
        Embedding::load(&p, &Device::Cpu).unwrap().num_embeddings(),
        4
    );
    let config = |json: &str| format!("\"candle_embed.config\":{}", serde_json::json!(json));
    // an honest 4x3 f32 table whose stored config is out of range
    let bad_config = |json: &str| ("F32", vec![4u64, 3], ok.clone(), config(json));
    let cases = [
        // zero columns hold no bytes, but no table has 2**62 (or 2**64 - 1) rows
        ("F32", vec![1u64 << 62, 0], vec![], String::new()),
        ("F32", vec![u64::MAX, 0], vec![], String::new()),
        // an integer or 3-D weight is no table
        ("I64", vec![4, 3], ok.clone().repeat(2), String::new()),
        ("F32", vec![2, 2, 3], ok.clone(), String::new()),
        // a padding row outside the table
        bad_config(r#"{"padding_idx": 4}"#),
        bad_config(r#"{"padding_idx": -5}"#),
        // a negative max_norm, a norm_type that is no number
        bad_config(r#"{"max_norm": -1.0}"#),
        bad_config(r#"{"norm_type": "x"}"#),
    ];
    for (dtype, shape, data, meta) in cases {
        forge(&p, dtype, &shape, &data, &meta);
        let r = Embedding::load(&p, &Device::Cpu);
        assert!(
            matches!(&r, Err(Error::Format(m)) if m.contains("f.safetensors")),
            "{dtype} {shape:?} {meta}: {r:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn zero_column_tables_that_exist_are_usable() {
    let dir = scratch("zero");
    let p = dir.join("z.safetensors");
    forge(&p, "F32", &[1000, 0], &[], "");
    let t = Embedding::load(&p, &Device::Cpu).unwrap();
    assert_eq!((t.num_embeddings(), t.embedding_dim()), (1000, 0));
    assert_eq!(t.weight().dims(), [1000, 0]);
    t.save(&p).unwrap();
    assert_eq!(
        Embedding::load(&p, &Device::Cpu).unwrap().num_embeddings(),
        1000
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
