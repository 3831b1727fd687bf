//! Any byte string given to the word-vector loaders (word2vec text, word2vec binary, GloVe
//! header-less text, and the safetensors word-vector file) must give vectors or an `Error`,
//! never a panic, an abort (e.g. a huge allocation from a header's count) or an
//! out-of-bounds read. The first byte picks the format; the rest is the file.
#![no_main]

use std::io::Write;

use candle_embed::io::word2vec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    // a per-process file in /dev/shm (tmpfs): the loaders take paths
    let path = std::env::temp_dir().join(format!("fuzz-w2v-{}.bin", std::process::id()));
    {
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(body).unwrap();
    }
    let limit = if mode & 0x10 != 0 {
        Some((mode >> 5) as usize)
    } else {
        None
    };
    let result = match mode & 0x3 {
        0 => word2vec::read(&path, false, false, limit),
        1 => word2vec::read(&path, true, false, limit),
        2 => word2vec::read(&path, false, true, limit),
        _ => word2vec::read_safetensors(&path),
    };
    if let Ok(wv) = result {
        assert_eq!(wv.vectors.len(), wv.words.len() * wv.dim);
    }
});
