//! The training vocabulary with gensim's formulas (`Word2Vec.prepare_vocab`,
//! `make_cum_table`, `sort_by_descending_frequency`):
//!
//! - kept words: `keep_vocab_item(word, count, effective_min_count, trim_rule)`, where
//!   `effective_min_count = max(min_count, c + 1)` when `max_final_vocab = m` is set and the
//!   raw vocabulary has more than `m` words (`c` = count of the `m+1`-th most frequent word);
//! - order: raw-vocabulary order, then (with `sorted_vocab`, on a fresh vocabulary) by
//!   descending count, ties broken as gensim 4.4's `lexsort((-index, -count))` does (the later
//!   word first); an update appends new words and adds the new counts to every known word;
//! - subsampling: a kept word of count `c` in this scan is kept in training with probability
//!   `p = (sqrt(c / t) + 1) * t / c` (capped at 1), `t = sample * retained_total` (`sample < 1`)
//!   or `floor(sample * (3 + sqrt 5) / 2)` (`sample >= 1`), stored as `round(p * 2^32)`;
//! - noise table: `cum_table[i] = round(sum_{j <= i} count_j^ns_exponent / Z * (2^31 - 1))`
//!   (Python's round: ties to even); a draw is `bisect_left(cum_table, r % cum_table[-1])`.

use std::collections::HashMap;

use super::corpus::Corpus;
use super::scan::{keep, scan, RawVocab, TrimRule};
use crate::alloc::try_collect;
use crate::{Error, Result};

/// gensim's `cum_table` domain.
const CUM_DOMAIN: f64 = 2_147_483_647.0; // 2^31 - 1

/// Settings of [`Vocab::prepare`] (gensim's names).
#[derive(Debug, Clone)]
pub struct VocabSettings {
    /// Drop words seen fewer times.
    pub min_count: u64,
    /// Subsampling threshold (0: none).
    pub sample: f64,
    /// Raise the effective `min_count` until at most this many words remain.
    pub max_final_vocab: Option<u64>,
    /// Sort a fresh vocabulary by descending count.
    pub sorted_vocab: bool,
    /// Exponent of the noise distribution.
    pub ns_exponent: f64,
}

impl Default for VocabSettings {
    fn default() -> Self {
        VocabSettings {
            min_count: 5,
            sample: 1e-3,
            max_final_vocab: None,
            sorted_vocab: true,
            ns_exponent: 0.75,
        }
    }
}

/// What [`Vocab::prepare`] did (gensim's `report_values` and `effective_min_count`).
#[derive(Debug, Clone, Default)]
pub struct VocabReport {
    /// Distinct words dropped.
    pub drop_unique: u64,
    /// Occurrences of the kept words.
    pub retain_total: u64,
    /// Kept words whose keep-probability is below 1.
    pub downsample_unique: u64,
    /// Expected occurrences left after subsampling.
    pub downsample_total: f64,
    /// Words kept (new and known).
    pub num_retained_words: u64,
    /// The threshold applied.
    pub effective_min_count: u64,
    /// Words added by this call.
    pub new_words: u64,
}

/// The training vocabulary: words, counts, subsampling thresholds and the noise table.
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    /// Words, by index.
    pub words: Vec<String>,
    /// Count of each word.
    pub counts: Vec<u64>,
    /// Keep-probability scaled to 2^32 (gensim's `sample_int`).
    pub sample_int: Vec<u32>,
    /// Cumulative `count^ns_exponent`, scaled to `0..2^31-1` (gensim's `cum_table`).
    pub cum_table: Vec<u32>,
    index: HashMap<String, u32>,
}

fn keep_probability(count: u64, threshold: f64) -> f64 {
    let v = count as f64;
    (((v / threshold).sqrt() + 1.0) * (threshold / v)).min(1.0)
}

impl Vocab {
    /// A fresh vocabulary of `corpus` with gensim's defaults but the given `min_count`,
    /// `sample` and `ns_exponent`; an empty result is an error naming `min_count`.
    pub fn build(corpus: &Corpus, min_count: u64, sample: f64, ns_exponent: f64) -> Result<Self> {
        let settings = VocabSettings {
            min_count,
            sample,
            ns_exponent,
            ..Default::default()
        };
        let raw = scan(corpus, None, None)?;
        let (v, _) = Vocab::prepare(&Vocab::default(), corpus, &raw, &settings, false, None)?;
        if v.is_empty() {
            return Err(empty_error(corpus, min_count));
        }
        Ok(v)
    }

    /// gensim's `prepare_vocab` on the raw vocabulary `raw` of `corpus`: a fresh vocabulary, or
    /// (`update`) `self` grown by the new words. `self` is unchanged; the result replaces it.
    pub fn prepare(
        &self,
        corpus: &Corpus,
        raw: &RawVocab,
        s: &VocabSettings,
        update: bool,
        mut rule: Option<&mut TrimRule<'_>>,
    ) -> Result<(Vocab, VocabReport)> {
        if !(s.sample >= 0.0 && s.sample.is_finite()) {
            return Err(Error::invalid(format!(
                "sample must be >= 0, got {}",
                s.sample
            )));
        }
        if !s.ns_exponent.is_finite() {
            return Err(Error::invalid("ns_exponent must be finite"));
        }
        let mut rep = VocabReport {
            effective_min_count: s.min_count,
            ..Default::default()
        };
        if let Some(m) = s.max_final_vocab {
            let mut sorted: Vec<u64> = raw.counts.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let calc = match usize::try_from(m) {
                Ok(m) if m < sorted.len() => sorted[m] + 1,
                _ => 1,
            };
            rep.effective_min_count = calc.max(s.min_count);
        }
        let mut out = if update {
            self.clone()
        } else {
            Vocab::default()
        };
        // (index in `out`, count in this scan) of each kept word
        let mut retained: Vec<(u32, u64)> = Vec::new();
        for (&id, &count) in raw.ids.iter().zip(&raw.counts) {
            let word = &corpus.words[id as usize];
            if !keep(word, count, rep.effective_min_count, &mut rule)? {
                rep.drop_unique += 1;
                if update {
                    if let Some(&k) = out.index.get(word) {
                        out.counts[k as usize] += count;
                    }
                }
                continue;
            }
            rep.retain_total += count;
            let k = match out.index.get(word) {
                Some(&k) if update => {
                    out.counts[k as usize] += count;
                    k
                }
                _ => {
                    let k = u32::try_from(out.words.len())
                        .map_err(|_| Error::invalid("more than 2**32 words in the vocabulary"))?;
                    out.index.insert(word.clone(), k);
                    out.words.push(word.clone());
                    out.counts.push(count);
                    out.sample_int.push(u32::MAX);
                    rep.new_words += 1;
                    k
                }
            };
            retained.push((k, count));
        }
        rep.num_retained_words = retained.len() as u64;
        let total = rep.retain_total as f64;
        let threshold = if s.sample == 0.0 {
            total
        } else if s.sample < 1.0 {
            s.sample * total
        } else {
            (s.sample * (3.0 + 5f64.sqrt()) / 2.0).floor()
        };
        for &(k, count) in &retained {
            let p = if s.sample == 0.0 {
                1.0
            } else {
                keep_probability(count, threshold)
            };
            if p < 1.0 {
                rep.downsample_unique += 1;
            }
            rep.downsample_total += p * count as f64;
            out.sample_int[k as usize] = (p * 4_294_967_296.0).round().min(u32::MAX as f64) as u32;
        }
        if s.sorted_vocab && !update {
            out.sort_by_descending_count();
        }
        out.cum_table = cum_table(&out.counts, s.ns_exponent)?;
        Ok((out, rep))
    }

    /// gensim 4.4's `sort_by_descending_frequency`: `lexsort((-index, -count))`.
    fn sort_by_descending_count(&mut self) {
        let mut order: Vec<usize> = (0..self.words.len()).collect();
        order
            .sort_unstable_by(|&a, &b| self.counts[b].cmp(&self.counts[a]).then_with(|| b.cmp(&a)));
        let words = std::mem::take(&mut self.words);
        let mut words: Vec<Option<String>> = words.into_iter().map(Some).collect();
        self.words = order
            .iter()
            .map(|&i| words[i].take().unwrap_or_default())
            .collect();
        self.counts = order.iter().map(|&i| self.counts[i]).collect();
        self.sample_int = order.iter().map(|&i| self.sample_int[i]).collect();
        self.index = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
    }

    /// A vocabulary given in full (a loaded model): `sample_int` as saved, `cum_table` rebuilt.
    pub fn from_parts(
        words: Vec<String>,
        counts: Vec<u64>,
        sample_int: Vec<u32>,
        ns_exponent: f64,
    ) -> Result<Self> {
        if counts.len() != words.len() || sample_int.len() != words.len() {
            return Err(Error::Format(format!(
                "{} words but {} counts and {} sample_int values",
                words.len(),
                counts.len(),
                sample_int.len()
            )));
        }
        let mut index = HashMap::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            if index.insert(w.clone(), i as u32).is_some() {
                return Err(Error::Format(format!("word {w:?} appears twice")));
            }
        }
        let cum_table = cum_table(&counts, ns_exponent)?;
        Ok(Vocab {
            words,
            counts,
            sample_int,
            cum_table,
            index,
        })
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when no word was kept.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The index of `word`.
    pub fn get(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// Corpus id -> vocabulary index (`u32::MAX` for words outside the vocabulary).
    pub fn remap(&self, corpus: &Corpus) -> Result<Vec<u32>> {
        try_collect(corpus.words.iter().map(|w| self.get(w).unwrap_or(u32::MAX)))
    }

    /// Draw a noise word: `bisect_left(cum_table, r % cum_table[-1])`.
    #[inline(always)]
    pub fn draw(&self, r: u64) -> u32 {
        let last = *self.cum_table.last().unwrap_or(&1) as u64;
        let x = (r % last.max(1)) as u32;
        self.cum_table.partition_point(|&c| c < x) as u32
    }
}

/// gensim's `make_cum_table` (Python's `round`: ties to even).
fn cum_table(counts: &[u64], ns_exponent: f64) -> Result<Vec<u32>> {
    let pow_total: f64 = counts.iter().map(|&c| (c as f64).powf(ns_exponent)).sum();
    let mut cum = 0.0;
    try_collect(counts.iter().map(|&c| {
        cum += (c as f64).powf(ns_exponent);
        (cum / pow_total * CUM_DOMAIN).round_ties_even() as u32
    }))
}

/// The error for a vocabulary left empty by `min_count`.
pub fn empty_error(corpus: &Corpus, min_count: u64) -> Error {
    Error::invalid(format!(
        "min_count={min_count} leaves no vocabulary: the corpus has {} distinct words, \
         the most frequent seen {} times",
        corpus.words.len(),
        corpus.counts.iter().max().copied().unwrap_or(0)
    ))
}
