//! Character n-grams of a word and the bag of table rows that makes its vector.
//!
//! fastText (`Dictionary::computeSubwords`) works on the UTF-8 bytes of `"<" + word + ">"`. A
//! *character* is a leading byte plus the continuation bytes (`0b10xx_xxxx`) after it. The
//! n-grams are every run of `n` consecutive characters with `min_n <= n <= max_n`, listed by
//! start position, then by length, duplicates kept, except the two one-character n-grams `"<"`
//! and `">"`. Example (`min_n = 3`, `max_n = 5`): `"test"` gives `<te <tes <test tes test test>
//! est est> st>`.
//!
//! Layout (fastText's input matrix, `nwords + bucket` rows): row `i < nwords` is word `i`'s
//! own vector; an n-gram `g` uses row `nwords + hash(g) % bucket` ([`super::fasttext_hash`]). A word's
//! *bag* is its own row (in-vocabulary words only) followed by its n-gram rows; its vector is
//! the mean of the bag's rows ([`super::vectors`]).

use super::hash::{step, OFFSET_BASIS};
use crate::alloc::try_with_capacity;
use crate::{bail_invalid, Error, Result};

/// The largest bucket count or vocabulary size a `.bin` file can hold (fastText stores them as
/// `int32`).
pub const MAX_I32: usize = i32::MAX as usize;

/// The longest n-gram, in characters. fastText's default is 6 and nobody uses more than a few
/// dozen; the bound keeps the work per word linear in its length (a word of `c` characters has
/// at most `c * max_n` n-grams), so a forged file cannot ask for quadratic work.
pub const MAX_NGRAM_CHARS: usize = 256;

/// fastText's subword settings: n-grams of `min_n..=max_n` characters hashed into `bucket` rows.
/// `max_n < min_n`, `max_n == 0` or `bucket == 0` means no n-grams (word rows only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subwords {
    /// Shortest n-gram, in characters.
    pub min_n: usize,
    /// Longest n-gram, in characters.
    pub max_n: usize,
    /// Number of hash buckets (n-gram rows).
    pub bucket: usize,
}

/// Bags of table rows, one per word, in CSR form: bag `k` is `ids[bounds[k]..bounds[k + 1]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WordBags {
    /// Row ids, bag after bag.
    pub ids: Vec<u32>,
    /// `len + 1` non-decreasing offsets into `ids`.
    pub bounds: Vec<usize>,
}

impl WordBags {
    /// The number of bags.
    pub fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    /// True when there is no bag.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bag `k`'s row ids.
    pub fn bag(&self, k: usize) -> &[u32] {
        &self.ids[self.bounds[k]..self.bounds[k + 1]]
    }
}

#[inline(always)]
fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

impl Subwords {
    /// Settings with `min_n, max_n <= MAX_NGRAM_CHARS` and `bucket <= i32::MAX` (what a `.bin`
    /// file can store).
    pub fn new(min_n: usize, max_n: usize, bucket: usize) -> Result<Self> {
        for (name, v) in [("min_n", min_n), ("max_n", max_n)] {
            if v > MAX_NGRAM_CHARS {
                bail_invalid!("{name} must be <= {MAX_NGRAM_CHARS} characters, got {v}");
            }
        }
        if bucket > MAX_I32 {
            bail_invalid!(
                "bucket must be <= {MAX_I32} (fastText stores it as int32), got {bucket}"
            );
        }
        Ok(Subwords {
            min_n,
            max_n,
            bucket,
        })
    }

    /// True when words have n-grams at all.
    pub fn has_ngrams(&self) -> bool {
        self.bucket > 0 && self.max_n >= self.min_n.max(1)
    }

    /// Call `f` on every n-gram of `word` (bytes without the `<` `>` markers) in fastText's
    /// order; `buf` is scratch space for `"<" + word + ">"`.
    pub fn for_each_ngram(&self, word: &[u8], buf: &mut Vec<u8>, mut f: impl FnMut(&[u8])) {
        self.walk(word, buf, |gram, _| f(gram));
    }

    /// [`Self::for_each_ngram`], with each n-gram's [`super::fasttext_hash`] computed incrementally
    /// (one step per byte: the n-grams that share a start share their prefix's hash).
    fn walk(&self, word: &[u8], buf: &mut Vec<u8>, mut f: impl FnMut(&[u8], u32)) {
        if !self.has_ngrams() {
            return;
        }
        marked(word, buf);
        let w = buf.as_slice();
        let len = w.len();
        for i in (0..len).filter(|&i| !is_continuation(w[i])) {
            let (mut j, mut n, mut h) = (i, 1usize, OFFSET_BASIS);
            while j < len && n <= self.max_n {
                h = step(h, w[j]);
                j += 1;
                while j < len && is_continuation(w[j]) {
                    h = step(h, w[j]);
                    j += 1;
                }
                if n >= self.min_n && !(n == 1 && (i == 0 || j == len)) {
                    f(&w[i..j], h);
                }
                n += 1;
            }
        }
    }

    /// How many n-grams [`Self::for_each_ngram`] yields for `word` (computed without hashing,
    /// so buffers can be reserved fallibly first).
    pub fn ngram_count(&self, word: &[u8]) -> usize {
        if !self.has_ngrams() {
            return 0;
        }
        // Characters of "<" + word + ">": every non-continuation byte starts one.
        let chars = 2 + word.iter().filter(|&&b| !is_continuation(b)).count();
        let lo = self.min_n.max(1);
        (0..chars)
            .map(|p| {
                let hi = self.max_n.min(chars - p);
                let lengths = (hi + 1).saturating_sub(lo);
                // The lone "<" (p == 0) and ">" (last character) are skipped.
                let edge = usize::from(lo == 1 && (p == 0 || p == chars - 1));
                lengths - edge
            })
            .sum()
    }

    /// Append the bucket (`hash % bucket`, without the `nwords` offset) of every n-gram of
    /// `word` to `out`, reserving fallibly.
    pub fn push_buckets(&self, word: &[u8], buf: &mut Vec<u8>, out: &mut Vec<u32>) -> Result<()> {
        let n = self.ngram_count(word);
        out.try_reserve(n)
            .map_err(|_| Error::Memory(format!("cannot hold the {n} n-grams of a word")))?;
        let bucket = self.bucket as u32;
        self.walk(word, buf, |_, h| out.push(h % bucket));
        Ok(())
    }

    /// The bags of `words` in a table of `nwords` word rows then `bucket` n-gram rows: each
    /// item is `(own row, word bytes)`, the own row given for in-vocabulary words (`< nwords`).
    pub fn bags<'a>(
        &self,
        words: impl ExactSizeIterator<Item = (Option<usize>, &'a [u8])>,
        nwords: usize,
    ) -> Result<WordBags> {
        let rows = nwords.checked_add(self.bucket).filter(|&r| r <= 1 << 32);
        if rows.is_none() {
            bail_invalid!(
                "{nwords} words + {} buckets exceed 2**32 table rows",
                self.bucket
            );
        }
        let mut bounds = try_with_capacity(words.len() + 1)?;
        bounds.push(0);
        let (mut ids, mut buf, mut grams) = (Vec::new(), Vec::new(), Vec::new());
        for (own, word) in words {
            if let Some(r) = own {
                if r >= nwords {
                    return Err(Error::IndexOutOfRange {
                        what: "word row",
                        index: r as i128,
                        container: "the vocabulary",
                        size: nwords,
                    });
                }
                reserve(&mut ids, 1)?;
                ids.push(r as u32);
            }
            grams.clear();
            self.push_buckets(word, &mut buf, &mut grams)?;
            reserve(&mut ids, grams.len())?;
            // `nwords + bucket <= 2**32`, so every row fits in u32.
            ids.extend(grams.iter().map(|&h| (nwords + h as usize) as u32));
            bounds.push(ids.len());
        }
        Ok(WordBags { ids, bounds })
    }
}

fn reserve(v: &mut Vec<u32>, n: usize) -> Result<()> {
    v.try_reserve(n)
        .map_err(|_| Error::Memory(format!("cannot grow a bag list of {} ids", v.len())))
}

/// `"<" + word + ">"` into `buf`.
fn marked(word: &[u8], buf: &mut Vec<u8>) {
    buf.clear();
    buf.push(b'<');
    buf.extend_from_slice(word);
    buf.push(b'>');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fasttext::hash::fasttext_hash;

    fn ngrams(word: &str, min_n: usize, max_n: usize) -> Vec<Vec<u8>> {
        let s = Subwords::new(min_n, max_n, 10).unwrap();
        let mut out = Vec::new();
        s.walk(word.as_bytes(), &mut Vec::new(), |g, h| {
            assert_eq!(h, fasttext_hash(g), "incremental hash of {g:?}");
            out.push(g.to_vec())
        });
        assert_eq!(out.len(), s.ngram_count(word.as_bytes()), "{word}");
        out
    }

    /// Ported from gensim's `test/test_fasttext.py::NgramsTest::test_bytes_cy` (expected
    /// n-grams of `compute_ngrams_bytes(word, 3, 5)`, in order).
    #[test]
    fn matches_gensim_compute_ngrams_bytes() {
        let cases: &[(&str, &[&str])] = &[
            (
                "test",
                &[
                    "<te", "<tes", "<test", "tes", "test", "test>", "est", "est>", "st>",
                ],
            ),
            (
                "at the",
                &[
                    "<at", "<at ", "<at t", "at ", "at t", "at th", "t t", "t th", "t the", " th",
                    " the", " the>", "the", "the>", "he>",
                ],
            ),
            (
                "тест",
                &[
                    "<те",
                    "<тес",
                    "<тест",
                    "тес",
                    "тест",
                    "тест>",
                    "ест",
                    "ест>",
                    "ст>",
                ],
            ),
            (
                "テスト",
                &["<テス", "<テスト", "<テスト>", "テスト", "テスト>", "スト>"],
            ),
            ("試し", &["<試し", "<試し>", "試し>"]),
            (
                "🚑🚒🚓🚕",
                &[
                    "<🚑🚒",
                    "<🚑🚒🚓",
                    "<🚑🚒🚓🚕",
                    "🚑🚒🚓",
                    "🚑🚒🚓🚕",
                    "🚑🚒🚓🚕>",
                    "🚒🚓🚕",
                    "🚒🚓🚕>",
                    "🚓🚕>",
                ],
            ),
        ];
        for (word, want) in cases {
            let want: Vec<Vec<u8>> = want.iter().map(|s| s.as_bytes().to_vec()).collect();
            assert_eq!(ngrams(word, 3, 5), want, "{word}");
        }
    }

    #[test]
    fn one_character_markers_are_skipped_and_counts_agree() {
        let got: Vec<String> = ngrams("ab", 1, 2)
            .into_iter()
            .map(|g| String::from_utf8(g).unwrap())
            .collect();
        assert_eq!(got, ["<a", "a", "ab", "b", "b>"]);
        for w in ["", "a", "héllo", "\u{80}", "x\u{1F600}y", "abcdefghij"] {
            for (lo, hi) in [(0, 0), (0, 3), (1, 1), (2, 9), (3, 6), (5, 3), (7, 40)] {
                ngrams(w, lo, hi);
            }
        }
        // A stray continuation byte joins the character before it, as in fastText.
        assert_eq!(ngrams_raw(&[0x80, b'a'], 1, 1), vec![b"a".to_vec()]);
    }

    fn ngrams_raw(word: &[u8], min_n: usize, max_n: usize) -> Vec<Vec<u8>> {
        let s = Subwords::new(min_n, max_n, 10).unwrap();
        let mut out = Vec::new();
        s.for_each_ngram(word, &mut Vec::new(), |g| out.push(g.to_vec()));
        assert_eq!(out.len(), s.ngram_count(word));
        out
    }

    #[test]
    fn bags_put_the_own_row_first_and_offset_ngrams_by_nwords() {
        let s = Subwords::new(3, 4, 7).unwrap();
        let words: [(Option<usize>, &[u8]); 3] = [(Some(1), b"ab"), (None, b"ab"), (None, b"")];
        let bags = s.bags(words.into_iter(), 5).unwrap();
        assert_eq!(bags.len(), 3);
        let expect: Vec<u32> = ["<ab", "<ab>", "ab>"]
            .iter()
            .map(|g| 5 + fasttext_hash(g.as_bytes()) % 7)
            .collect();
        assert_eq!(bags.bag(0)[0], 1);
        assert_eq!(&bags.bag(0)[1..], expect.as_slice());
        assert_eq!(bags.bag(1), expect.as_slice());
        assert!(bags.bag(2).is_empty(), "'<>' has no 3-gram");
        let err = s.bags([(Some(5), &b"x"[..])].into_iter(), 5).unwrap_err();
        assert!(matches!(err, Error::IndexOutOfRange { .. }));
        let none = Subwords::new(3, 6, 0).unwrap();
        assert!(!none.has_ngrams());
        assert!(none
            .bags([(None, &b"abc"[..])].into_iter(), 2)
            .unwrap()
            .ids
            .is_empty());
        assert!(Subwords::new(3, 6, 1 << 31).is_err());
        assert!(Subwords::new(3, MAX_NGRAM_CHARS + 1, 10).is_err());
        assert!(s.bags([(None, &b"x"[..])].into_iter(), usize::MAX).is_err());
    }
}
