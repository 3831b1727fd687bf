//! fastText training on the word2vec trainer: the bag-of-rows input vectors ([`BagRows`])
//! against a float64 reference of fastText's rule, and a small training run (finite tables,
//! every row of a trained word's bag moved, bit-identical for a seed with one worker).

use candle_embed::fasttext::train::{train, vocab_bags, BagRows, FastTextConfig};
use candle_embed::fasttext::{Subwords, WordBags};
use candle_embed::word2vec::kernels::InputVectors;
use candle_embed::word2vec::{Corpus, Params, TrainMode, Vocab};
use candle_embed::Error;

const DIM: usize = 3;

fn bags() -> WordBags {
    // bag 0: rows {0, 2, 3}; bag 1: row {1}; bag 2: rows {2, 2} (a repeated n-gram row)
    WordBags {
        ids: vec![0, 2, 3, 1, 2, 2],
        bounds: vec![0, 3, 4, 6],
    }
}

fn table() -> Vec<f32> {
    (0..4 * DIM).map(|i| (i as f32 * 0.37).sin()).collect()
}

fn mean64(t: &[f32], rows: &[u32]) -> [f64; DIM] {
    let mut m = [0f64; DIM];
    for &r in rows {
        for (k, x) in m.iter_mut().enumerate() {
            *x += t[r as usize * DIM + k] as f64;
        }
    }
    m.map(|x| x / rows.len() as f64)
}

#[test]
fn bag_input_is_the_row_mean_and_the_gradient_reaches_every_row() {
    let b = bags();
    let mut t = table();
    let before = t.clone();
    let rows = BagRows::new(&mut t, DIM, &b).unwrap();
    let mut buf = vec![0f32; DIM];
    for w in 0..3u32 {
        // SAFETY: every bag row is < 4 (checked by BagRows::new); one thread.
        let got = unsafe { rows.input(&rows.table(), w, &mut buf) }.to_vec();
        let want = mean64(&before, b.bag(w as usize));
        for (g, e) in got.iter().zip(&want) {
            assert!((*g as f64 - e).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }
    let mut acc = vec![0f32; DIM];
    // SAFETY: as above.
    let n = unsafe { rows.add_input_to(&rows.table(), 0, &mut acc) };
    assert_eq!(n, 3.0); // CBOW counts rows, not words (gensim's fasttext_inner.pyx)
    let grad = [1.0f32, -2.0, 0.5];
    // SAFETY: as above.
    unsafe { rows.update(&rows.table(), 2, &grad) };
    let _ = rows; // the table's borrow ends here
    for k in 0..DIM {
        // row 2 is twice in bag 2: it gets the gradient twice (fastText adds per bag entry)
        assert_eq!(t[2 * DIM + k], before[2 * DIM + k] + grad[k] + grad[k]);
        assert_eq!(t[k], before[k]);
    }
    // skip-gram's input is the centre word (fastText), not the context word (word2vec)
    const { assert!(<BagRows<'static> as InputVectors>::CENTRE_INPUT) };
}

#[test]
fn rows_outside_the_table_are_refused() {
    let b = bags();
    let mut short = vec![0f32; 3 * DIM];
    assert!(matches!(
        BagRows::new(&mut short, DIM, &b),
        Err(Error::IndexOutOfRange { .. })
    ));
    let mut ragged = vec![0f32; 4 * DIM + 1];
    assert!(BagRows::new(&mut ragged, DIM, &b).is_err());
}

fn corpus() -> Corpus {
    let mut c = Corpus::new();
    let text = "the night sky was dark and the nights were long \
                the dark night fell on the long road and the sky was long";
    for _ in 0..20 {
        c.push_sentence(text.split(' ')).unwrap();
    }
    c
}

fn config(sg: bool, hs: bool, negative: usize) -> FastTextConfig {
    FastTextConfig {
        params: Params {
            vector_size: 8,
            sg,
            hs,
            negative,
            window: 3,
            seed: 7,
            ..Params::default()
        },
        subwords: Subwords::new(3, 5, 50).unwrap(),
        epochs: 3,
        alpha: 0.025,
        min_alpha: 0.0001,
        workers: 1,
        batch_words: 10_000,
        mode: TrainMode::Hogwild,
    }
}

#[test]
fn training_moves_every_row_of_a_bag_and_is_reproducible() {
    let c = corpus();
    for (sg, hs, negative) in [
        (true, false, 5),
        (false, false, 5),
        (true, true, 0),
        (false, true, 3),
    ] {
        let vocab = Vocab::build(&c, 1, 0.0, 0.75).unwrap();
        let cfg = config(sg, hs, negative);
        let bag = vocab_bags(&vocab, &cfg.subwords).unwrap();
        let a = train(&c, vocab.clone(), &cfg, &mut |_, _| true).unwrap();
        let b = train(&c, vocab.clone(), &cfg, &mut |_, _| true).unwrap();
        assert_eq!(a.input, b.input, "sg={sg} hs={hs}: one worker, one seed");
        assert_eq!(a.input.len(), (vocab.len() + 50) * 8);
        assert!(a.input.iter().all(|x| x.is_finite()));
        assert_eq!(a.syn1.is_empty(), !hs);
        assert_eq!(a.syn1neg.is_empty(), negative == 0);
        // Every row of a trained word's bag moved from its initial value (same seed).
        let start = candle_embed::word2vec::model::init_vectors(vocab.len() + 50, 8, 7).unwrap();
        let w = vocab.get("night").unwrap() as usize;
        for &r in bag.bag(w) {
            let r = r as usize;
            assert_ne!(
                a.input[r * 8..r * 8 + 8],
                start[r * 8..r * 8 + 8],
                "row {r}"
            );
        }
        assert!(a.stats.raw_words == 3 * c.num_tokens() as u64);
    }
}
