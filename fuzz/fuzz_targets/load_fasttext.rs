//! Any byte string given to the fastText `.bin` reader must give a model or an `Error`, never a
//! panic, an abort (e.g. a huge allocation from a forged count or matrix size) or an
//! out-of-bounds read; a model that loads must give word vectors for its words and an unseen
//! one. The first byte picks `full_model`; the rest is the file.
#![no_main]

use candle_embed::fasttext::{bin, word_vectors_into};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let Ok(m) = bin::read_from(body, body.len() as u64, "fuzz.bin", mode & 1 == 1) else {
        return;
    };
    let Ok(sub) = m.args.subwords() else {
        return;
    };
    let dim = m.input.cols;
    let nwords = m.words.len();
    let mut items: Vec<(Option<usize>, &[u8])> =
        m.words.iter().enumerate().map(|(i, w)| (Some(i), w.as_slice())).collect();
    items.push((None, b"unseen"));
    let mut out = vec![0f32; items.len() * dim];
    // A model that loads gives vectors (or, for absurd words, a MemoryError: never a panic).
    match word_vectors_into(&m.input.data, dim, nwords, &sub, &items, &mut out) {
        Ok(()) | Err(candle_embed::Error::Memory(_)) => {}
        Err(e) => panic!("a model that loads must give vectors: {e}"),
    }
});
