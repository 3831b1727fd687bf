//! The trained vocabulary: retained words by descending count, subsampling thresholds and the
//! negative-sampling table, with gensim's formulas (`Word2Vec.prepare_vocab`, `make_cum_table`).

use super::corpus::Corpus;
use crate::{Error, Result};

/// gensim's `cum_table` domain.
const CUM_DOMAIN: f64 = 2_147_483_647.0; // 2^31 - 1

#[derive(Debug, Clone)]
/// The training vocabulary: retained words and the tables gensim derives from their counts.
pub struct Vocab {
    /// Retained words, most frequent first (ties: first seen first).
    pub words: Vec<String>,
    /// Raw count of each retained word.
    pub counts: Vec<u64>,
    /// Keep-probability scaled to 2^32 (gensim's `sample_int`).
    pub sample_int: Vec<u32>,
    /// Cumulative `count^0.75`, scaled to `0..2^31-1` (gensim's `cum_table`).
    pub cum_table: Vec<u32>,
    /// Raw corpus id -> vocabulary id (`u32::MAX`: dropped by `min_count`).
    pub remap: Vec<u32>,
}

impl Vocab {
    /// Build from a corpus's counts.
    pub fn build(corpus: &Corpus, min_count: u64, sample: f64, ns_exponent: f64) -> Result<Self> {
        if !(sample >= 0.0 && sample.is_finite()) {
            return Err(Error::invalid(format!("sample must be >= 0, got {sample}")));
        }
        let mut order: Vec<u32> = (0..corpus.words.len() as u32)
            .filter(|&i| corpus.counts[i as usize] >= min_count.max(1))
            .collect();
        if order.is_empty() {
            return Err(Error::invalid(format!(
                "min_count={min_count} leaves no vocabulary: the corpus has {} distinct words, \
                 the most frequent seen {} times",
                corpus.words.len(),
                corpus.counts.iter().max().copied().unwrap_or(0)
            )));
        }
        order.sort_by_key(|&i| std::cmp::Reverse(corpus.counts[i as usize]));
        let mut remap = vec![u32::MAX; corpus.words.len()];
        for (v, &raw) in order.iter().enumerate() {
            remap[raw as usize] = v as u32;
        }
        let words: Vec<String> = order
            .iter()
            .map(|&i| corpus.words[i as usize].clone())
            .collect();
        let counts: Vec<u64> = order.iter().map(|&i| corpus.counts[i as usize]).collect();

        let retain_total: f64 = counts.iter().map(|&c| c as f64).sum();
        let threshold = if sample == 0.0 {
            retain_total
        } else if sample < 1.0 {
            sample * retain_total
        } else {
            (sample * (3.0 + 5f64.sqrt()) / 2.0).floor()
        };
        let sample_int = counts
            .iter()
            .map(|&c| {
                let v = c as f64;
                let p = ((v / threshold).sqrt() + 1.0) * (threshold / v);
                let p = if sample == 0.0 { 1.0 } else { p.min(1.0) };
                (p * 4_294_967_296.0).round().min(u32::MAX as f64) as u32
            })
            .collect();

        let pow_total: f64 = counts.iter().map(|&c| (c as f64).powf(ns_exponent)).sum();
        let mut cum = 0.0;
        let cum_table = counts
            .iter()
            .map(|&c| {
                cum += (c as f64).powf(ns_exponent);
                (cum / pow_total * CUM_DOMAIN).round() as u32
            })
            .collect();
        Ok(Vocab {
            words,
            counts,
            sample_int,
            cum_table,
            remap,
        })
    }

    /// Number of retained words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when no word passed `min_count`.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Draw a noise word: `bisect_left(cum_table, r % cum_table[-1])`.
    #[inline(always)]
    pub fn draw(&self, r: u64) -> u32 {
        let last = *self.cum_table.last().unwrap_or(&1) as u64;
        let x = (r % last.max(1)) as u32;
        self.cum_table.partition_point(|&c| c < x) as u32
    }
}
