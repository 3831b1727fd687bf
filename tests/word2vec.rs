//! word2vec core: vocabulary formulas (gensim's), file round trips and errors, training.

use candle_embed::io::word2vec as fmt;
use candle_embed::word2vec::{train, Corpus, TrainConfig, TrainMode, Vocab};
use candle_embed::Error;

fn corpus(lines: &[&str]) -> Corpus {
    let mut c = Corpus::new();
    for l in lines {
        c.push_sentence(l.split_whitespace()).unwrap();
    }
    c
}

#[test]
fn vocab_sorted_filtered_and_gensim_tables() {
    let c = corpus(&["a b b c c c c", "c d d"]);
    let v = Vocab::build(&c, 2, 0.1, 0.75).unwrap();
    // gensim 4.4 sorts with `lexsort((-index, -count))`: equal counts put the later word first
    assert_eq!(v.words, ["c", "d", "b"]);
    assert_eq!(v.counts, [5, 2, 2]);
    // sample_int = round(min(1, (sqrt(n/t) + 1) * t/n) * 2^32), t = sample * retained total
    let t = 0.1 * 9.0;
    for (i, &n) in v.counts.iter().enumerate() {
        let n = n as f64;
        let p = (((n / t).sqrt() + 1.0) * t / n).min(1.0);
        assert_eq!(
            v.sample_int[i],
            (p * 4294967296.0).round().min(u32::MAX as f64) as u32
        );
    }
    // cum_table: round(cumsum(n^0.75) / sum * (2^31 - 1))
    let pw: Vec<f64> = v.counts.iter().map(|&n| (n as f64).powf(0.75)).collect();
    let total: f64 = pw.iter().sum();
    let mut acc = 0.0;
    for (i, p) in pw.iter().enumerate() {
        acc += p;
        assert_eq!(v.cum_table[i], (acc / total * 2147483647.0).round() as u32);
    }
    assert_eq!(v.draw(0), 0);
    assert_eq!(v.draw(v.cum_table[0] as u64 + 1), 1);
    assert_eq!(
        v.remap(&c).unwrap()[c.words.iter().position(|w| w == "a").unwrap()],
        u32::MAX
    );
}

#[test]
fn min_count_leaving_nothing_is_an_error() {
    let c = corpus(&["a b c"]);
    let e = Vocab::build(&c, 2, 1e-3, 0.75).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument(ref m) if m.contains("min_count")),
        "{e}"
    );
}

#[test]
fn long_sentences_are_split() {
    let long = vec!["w"; 25_000].join(" ");
    let c = corpus(&[&long]);
    assert_eq!(c.num_sentences(), 3);
    assert_eq!(c.num_tokens(), 25_000);
}

#[test]
fn text_and_binary_round_trip_and_errors() {
    let dir = std::env::temp_dir().join(format!("ce-w2v-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let words = vec!["x".to_string(), "yé".to_string()];
    let vecs = vec![1.5f32, -2.0, 1e-30, 3.25, 0.1, -7e20];
    for binary in [false, true] {
        let p = dir.join(if binary { "v.bin" } else { "v.txt" });
        fmt::write(&p, &words, &vecs, 3, binary).unwrap();
        let back = fmt::read(&p, binary, false, None).unwrap();
        assert_eq!(back.words, words);
        assert_eq!(back.vectors, vecs);
        assert_eq!(back.dim, 3);
        let one = fmt::read(&p, binary, false, Some(1)).unwrap();
        assert_eq!(one.words, ["x"]);
    }
    let bad = dir.join("bad.txt");
    std::fs::write(&bad, "2 2\na 1 2\nb 1 oops\n").unwrap();
    let e = fmt::read(&bad, false, false, None).unwrap_err();
    assert!(
        matches!(e, Error::Format(ref m) if m.contains("line 3")),
        "{e}"
    );
    std::fs::write(&bad, "a 1 2\nb 3 4\n").unwrap();
    let g = fmt::read(&bad, false, true, None).unwrap();
    assert_eq!((g.words.len(), g.dim), (2, 2));
    let e = fmt::write(&dir.join("w.txt"), &["a b".to_string()], &[1.0], 1, false).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)));
    assert!(!dir.join("w.txt").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two topics that never share a sentence: `a0..a5` and `b0..b5`, 400 sentences of 8 words.
fn two_topics() -> (Corpus, Vocab) {
    let mut lines = Vec::new();
    for i in 0..400 {
        let t = if i % 2 == 0 { "a" } else { "b" };
        let s: Vec<String> = (0..8)
            .map(|k| format!("{t}{}", (i * 7 + k * 5) % 6))
            .collect();
        lines.push(s.join(" "));
    }
    let refs: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
    let c = corpus(&refs);
    // no subsampling: with 12 words, every word is "frequent" and would mostly be dropped
    let v = Vocab::build(&c, 1, 0.0, 0.75).unwrap();
    (c, v)
}

/// Mean cosine within a topic minus mean cosine across topics, over all word pairs.
fn topic_gap(vectors: &[f32], v: &Vocab, dim: usize) -> f32 {
    let row = |w: &str| {
        let i = v.words.iter().position(|x| x == w).unwrap();
        let r = &vectors[i * dim..(i + 1) * dim];
        let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        r.iter().map(|x| x / n).collect::<Vec<f32>>()
    };
    let cos = |p: &str, q: &str| row(p).iter().zip(row(q)).map(|(x, y)| x * y).sum::<f32>();
    let (mut same, mut other) = (0f32, 0f32);
    for i in 0..6 {
        for j in 0..6 {
            if i != j {
                same += cos(&format!("a{i}"), &format!("a{j}"))
                    + cos(&format!("b{i}"), &format!("b{j}"));
            }
            other += 2.0 * cos(&format!("a{i}"), &format!("b{j}"));
        }
    }
    same / 60.0 - other / 72.0
}

#[test]
fn training_is_seeded_with_one_worker_and_learns() {
    let (c, v) = two_topics();
    let cfg = TrainConfig {
        vector_size: 12,
        workers: 1,
        epochs: 40,
        ..Default::default()
    };
    let a = train(&c, &v, &cfg, &mut |_, _| true).unwrap();
    let b = train(&c, &v, &cfg, &mut |_, _| true).unwrap();
    assert_eq!(a.vectors, b.vectors);
    assert_eq!(a.raw_words, 40 * 3200);
    let gap = topic_gap(&a.vectors, &v, 12);
    assert!(gap > 0.15, "same-topic minus other-topic cosine {gap}");
    let bad = TrainConfig { window: 0, ..cfg };
    assert!(train(&c, &v, &bad, &mut |_, _| true).is_err());
}

#[test]
fn deterministic_training_is_identical_for_any_worker_count_and_learns() {
    let (c, v) = two_topics();
    let cfg = |workers| TrainConfig {
        vector_size: 12,
        workers,
        epochs: 40,
        mode: TrainMode::Deterministic,
        ..Default::default()
    };
    let one = train(&c, &v, &cfg(1), &mut |_, _| true).unwrap();
    for workers in [2, 3, 5, 32] {
        let many = train(&c, &v, &cfg(workers), &mut |_, _| true).unwrap();
        assert!(
            one.vectors
                .iter()
                .zip(&many.vectors)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{workers} workers differ from one"
        );
        assert_eq!(many.effective_words, one.effective_words);
    }
    let gap = topic_gap(&one.vectors, &v, 12);
    assert!(gap > 0.15, "same-topic minus other-topic cosine {gap}");
}

/// CBOW HogBatch (`minibatch`, `word2vec::hogbatch_cbow`) on the deterministic trainer: the
/// same tables for 1 and 3 workers, and it learns the two topics (with the mean and the sum).
#[test]
fn cbow_minibatch_is_deterministic_on_request_and_learns() {
    use candle_embed::word2vec::{train_epoch, EpochPlan, Model, Params};
    let (c, v) = two_topics();
    for cbow_mean in [true, false] {
        let run = |workers: usize| {
            let params = Params {
                vector_size: 12,
                sg: false,
                cbow_mean,
                ..Params::default()
            };
            let mut m = Model::new(params, v.clone()).unwrap();
            let mut plan = EpochPlan {
                epoch: 0,
                epochs: 40,
                start_alpha: 0.05,
                end_alpha: 0.0001,
                total_examples: Some(c.num_sentences() as u64),
                total_words: None,
                batch_words: 10_000,
                compute_loss: false,
                workers,
                mode: TrainMode::Deterministic,
                minibatch: true,
            };
            for e in 0..40 {
                plan.epoch = e;
                train_epoch(&mut m, &c, &plan, &mut |_| true).unwrap();
            }
            m.syn0
        };
        let (one, three) = (run(1), run(3));
        assert!(one
            .iter()
            .zip(&three)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        let gap = topic_gap(&one, &v, 12);
        assert!(gap > 0.15, "cbow_mean {cbow_mean}: topic gap {gap}");
    }
}

/// Deterministic hierarchical softmax (issue 14): a Huffman row's sub-block changes are added
/// scaled by `1 / sqrt(c)`, `c` the sub-blocks that touched it (a row one sub-block touched
/// gets its change exactly); hs minibatches have at most 4 sub-blocks. Reference: the formula
/// in float64.
#[test]
fn deterministic_tree_rows_take_changes_over_sqrt_of_touching_sub_blocks() {
    use candle_embed::word2vec::deterministic::{sub_blocks, HS_SUB_BLOCKS, SUB_BLOCKS};
    use candle_embed::word2vec::kernels::{OutputRows, RowTable};
    use candle_embed::word2vec::staged::{RowDelta, SlotMap, StagedRows, Staging, Touches};

    assert_eq!(sub_blocks(50_000, false), SUB_BLOCKS);
    assert_eq!(sub_blocks(50_000, true), HS_SUB_BLOCKS);
    assert_eq!(sub_blocks(2_500, true), 3);
    let (dim, count) = (3, 4);
    let mut data: Vec<f32> = (0..dim * count).map(|i| i as f32 * 0.25).collect();
    let start = data.clone();
    let table = OutputRows {
        rows: data.as_mut_ptr(),
        dim,
        count,
    };
    let mut slots = SlotMap::new(count).unwrap();
    // row 0 touched by all 4 sub-blocks, row 2 by sub-block 1 alone, rows 1 and 3 by none
    let change = |j: usize, r: usize, k: usize| (j * 7 + r * 3 + k) as f32 * 0.125 - 0.5;
    let mut deltas = Vec::new();
    for j in 0..4 {
        let mut delta = RowDelta::new(Staging::Copy);
        {
            let view = StagedRows::new(table, &mut slots, &mut delta);
            let rows: &[u32] = if j == 1 { &[0, 2] } else { &[0] };
            for &r in rows {
                // SAFETY: `data` outlives the view; one row held at a time.
                let g = unsafe { view.grad(r) };
                for (k, x) in g.iter_mut().enumerate() {
                    *x += change(j, r as usize, k);
                }
            }
        }
        // SAFETY: the table is unchanged since the copies.
        unsafe { delta.finish(table, &mut slots) };
        deltas.push(delta);
    }
    for stripes in [1, 2] {
        data.copy_from_slice(&start);
        for stripe in 0..stripes {
            let mut touches = Touches::new(count).unwrap();
            deltas
                .iter()
                .for_each(|d| touches.count(d, (stripe, stripes), false));
            for d in &deltas {
                // SAFETY: one thread, `data` live.
                unsafe { d.apply(table, (stripe, stripes), Some(&touches)) };
            }
        }
        for r in 0..count {
            for k in 0..dim {
                let (c, sum) = match r {
                    0 => (4.0, (0..4).map(|j| change(j, 0, k) as f64).sum::<f64>()),
                    2 => (1.0, change(1, 2, k) as f64),
                    _ => (1.0, 0.0),
                };
                let want = start[r * dim + k] as f64 + sum / f64::sqrt(c);
                let got = data[r * dim + k] as f64;
                assert!(
                    (got - want).abs() < 1e-5,
                    "row {r} col {k}: {got} vs {want}"
                );
            }
        }
        // a row one sub-block touched gets its change exactly (no rounding by the scale)
        for k in 0..dim {
            assert_eq!(data[2 * dim + k], start[2 * dim + k] + change(1, 2, k));
        }
    }
}
