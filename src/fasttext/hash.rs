//! fastText's n-gram hash: 32-bit FNV-1a over the n-gram's bytes, with the byte read as a
//! *signed* char (`Dictionary::hash` in fastText's `src/dictionary.cc`):
//!
//! ```text
//! h = 2166136261
//! for each byte b:  h = (h XOR u32(i8(b))) * 16777619   (mod 2^32)
//! ```
//!
//! `u32(i8(b))` sign-extends: a byte `b >= 0x80` is XORed in as `0xFFFF_FF00 | b`, not `b`.
//! That is not textbook FNV-1a, but every released fastText model was trained with it (the C++
//! comment says so), so vectors of non-ASCII n-grams are only interchangeable with this quirk.

/// FNV-1a's 32-bit offset basis: the hash of no bytes.
pub const OFFSET_BASIS: u32 = 2_166_136_261;
/// FNV-1a's 32-bit prime.
const PRIME: u32 = 16_777_619;

/// The hash of `prefix + [b]` from the hash `h` of `prefix` (so the n-grams that share a start
/// are hashed in one pass).
#[inline(always)]
pub fn step(h: u32, b: u8) -> u32 {
    // `as i8 as i32 as u32` is C++'s `uint32_t(int8_t(c))`: sign extension.
    (h ^ (b as i8 as i32 as u32)).wrapping_mul(PRIME)
}

/// fastText's hash of `bytes` (see the module docs for the signed-char rule).
#[inline]
pub fn fasttext_hash(bytes: &[u8]) -> u32 {
    bytes.iter().fold(OFFSET_BASIS, |h, &b| step(h, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ported from gensim's `test/test_fasttext.py::FTHashFunctionsTest::test_cython` (values
    /// gensim computed with its Cython `ft_hash_bytes`, itself checked against fastText).
    #[test]
    fn matches_gensim_ft_hash_bytes() {
        let expected: &[(&str, u32)] = &[
            ("команда", 1725507386),
            ("маленьких", 3011324125),
            ("друзей", 737001801),
            ("возит", 4225261911),
            ("грузы", 1301826944),
            ("всех", 706328732),
            ("быстрей", 1379730754),
            ("mysterious", 1903186891),
            ("asteroid", 1988297200),
            ("odyssey", 310195777),
            ("introduction", 2848265721),
            ("北海道", 4096045468),
            ("札幌", 3909947444),
            ("西区", 3653372632),
        ];
        for &(word, h) in expected {
            assert_eq!(fasttext_hash(word.as_bytes()), h, "{word}");
        }
    }

    #[test]
    fn signed_char_quirk_differs_from_textbook_fnv1a_only_above_0x7f() {
        let textbook = |bytes: &[u8]| {
            bytes
                .iter()
                .fold(OFFSET_BASIS, |h, &b| (h ^ u32::from(b)).wrapping_mul(PRIME))
        };
        assert_eq!(fasttext_hash(b"<abc>"), textbook(b"<abc>"));
        assert_ne!(fasttext_hash("é".as_bytes()), textbook("é".as_bytes()));
        assert_eq!(fasttext_hash(b""), OFFSET_BASIS);
    }
}
