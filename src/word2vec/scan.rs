//! The raw vocabulary of a corpus (gensim's `scan_vocab`): every word and its count, in the
//! order gensim's `raw_vocab` dict holds them, with `max_vocab_size` pruning.
//!
//! With `max_vocab_size = m`, gensim counts sentence by sentence and, whenever the dict holds
//! more than `m` words after a sentence, deletes every word whose count so far fails
//! `keep_vocab_item(word, count, min_reduce, trim_rule)`, then raises `min_reduce` by one. A
//! deleted word that comes back starts again from zero, at the end of the dict order. The scan
//! here replays the stored corpus the same way, so counts and order equal gensim's.

use super::corpus::Corpus;
use crate::alloc::try_alloc;
use crate::Result;

/// What a vocabulary rule (gensim's `trim_rule`) says about a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Apply the count threshold (gensim's `RULE_DEFAULT`, 0).
    Default,
    /// Drop the word (`RULE_DISCARD`, 1).
    Discard,
    /// Keep the word (`RULE_KEEP`, 2).
    Keep,
}

/// A vocabulary rule: `(word, count, min_count) -> Rule`; its errors propagate.
pub type TrimRule<'a> = dyn FnMut(&str, u64, u64) -> Result<Rule> + 'a;

/// gensim's `keep_vocab_item`: the rule's verdict, `count >= min_count` by default.
pub fn keep(
    word: &str,
    count: u64,
    min_count: u64,
    rule: &mut Option<&mut TrimRule<'_>>,
) -> Result<bool> {
    let default = count >= min_count;
    Ok(match rule {
        None => default,
        Some(r) => match r(word, count, min_count)? {
            Rule::Default => default,
            Rule::Discard => false,
            Rule::Keep => true,
        },
    })
}

/// Words of a corpus (by corpus id) and their counts, in gensim's `raw_vocab` order.
#[derive(Debug, Clone, Default)]
pub struct RawVocab {
    /// Corpus ids of the words, in dict order.
    pub ids: Vec<u32>,
    /// Count of each word.
    pub counts: Vec<u64>,
}

impl RawVocab {
    /// A raw vocabulary given as counts for corpus words (gensim's `build_vocab_from_freq`).
    pub fn from_counts(ids: Vec<u32>, counts: Vec<u64>) -> Self {
        RawVocab { ids, counts }
    }
}

/// Scan `corpus` (gensim's `scan_vocab` + `prune_vocab`).
pub fn scan(
    corpus: &Corpus,
    max_vocab_size: Option<usize>,
    mut rule: Option<&mut TrimRule<'_>>,
) -> Result<RawVocab> {
    let Some(max) = max_vocab_size else {
        return Ok(RawVocab {
            ids: (0..corpus.words.len() as u32).collect(),
            counts: corpus.counts.clone(),
        });
    };
    let mut count = try_alloc::<u64>(corpus.words.len())?;
    // Live words in dict order; `count[id] == 0` means absent.
    let mut live: Vec<u32> = Vec::new();
    let mut min_reduce = 1u64;
    for s in 0..corpus.num_sentences() {
        for &id in &corpus.tokens[corpus.offsets[s]..corpus.offsets[s + 1]] {
            let c = &mut count[id as usize];
            if *c == 0 {
                live.push(id);
            }
            *c += 1;
        }
        if live.len() > max {
            let mut kept = Vec::with_capacity(live.len());
            for &id in &live {
                let c = count[id as usize];
                if keep(&corpus.words[id as usize], c, min_reduce, &mut rule)? {
                    kept.push(id);
                } else {
                    count[id as usize] = 0;
                }
            }
            live = kept;
            min_reduce += 1;
        }
    }
    let counts = live.iter().map(|&id| count[id as usize]).collect();
    Ok(RawVocab { ids: live, counts })
}
