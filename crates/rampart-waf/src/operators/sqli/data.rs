//! The SQL word table and the fingerprint blacklist, both built at compile time from the
//! text files next to this one (written by `scripts/sqli-data.py` from libinjection's data).
//!
//! Words: `keywords.txt` holds one `TYPE WORD` per line (upper-case words, which may hold
//! spaces: `NOT IN`, `GROUP BY`). They go into an open-addressing hash table of indexes
//! (linear probing, FNV-1a of the upper-cased bytes); a word absent from it is a bareword.
//!
//! Fingerprints: `fingerprints.txt` holds one upper-cased fingerprint per line, sorted. Each
//! is packed big-endian into a `u64` (first character in the top byte, zero padded), which
//! keeps the order, so membership is a binary search.

const KEYWORD_TEXT: &[u8] = include_bytes!("keywords.txt");
const FINGERPRINT_TEXT: &[u8] = include_bytes!("fingerprints.txt");

/// The longest word of the table; a longer word is never looked up.
pub(super) const MAX_WORD: usize = 31;

/// Number of lines of a text (each ends with `\n`).
const fn line_count(text: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\n' {
            n += 1;
        }
        i += 1;
    }
    n
}

const KEYWORD_COUNT: usize = line_count(KEYWORD_TEXT);
const FINGERPRINT_COUNT: usize = line_count(FINGERPRINT_TEXT);

/// One word of the table: where its text starts in `KEYWORD_TEXT`, its length, its type.
#[derive(Clone, Copy)]
struct Entry {
    start: u16,
    len: u8,
    ty: u8,
}

const fn parse_keywords() -> [Entry; KEYWORD_COUNT] {
    let mut out = [Entry {
        start: 0,
        len: 0,
        ty: 0,
    }; KEYWORD_COUNT];
    let text = KEYWORD_TEXT;
    let mut i = 0;
    let mut n = 0;
    while n < KEYWORD_COUNT {
        let ty = text[i];
        assert!(text[i + 1] == b' ', "keywords.txt: TYPE WORD");
        let start = i + 2;
        let mut end = start;
        while text[end] != b'\n' {
            end += 1;
        }
        assert!(
            end > start && end - start <= MAX_WORD,
            "keywords.txt: word length"
        );
        assert!(
            start <= u16::MAX as usize,
            "keywords.txt: too long for u16 offsets"
        );
        out[n] = Entry {
            start: start as u16,
            len: (end - start) as u8,
            ty,
        };
        n += 1;
        i = end + 1;
    }
    out
}

static KEYWORDS: [Entry; KEYWORD_COUNT] = parse_keywords();

const TABLE_BITS: u32 = 11;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const _: () = assert!(
    KEYWORD_COUNT * 2 <= TABLE_SIZE,
    "keep the table at most half full"
);

/// FNV-1a over bytes, then a multiplicative spread to the table's index width.
#[inline(always)]
const fn slot_of(hash: u64) -> usize {
    (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - TABLE_BITS)) as usize
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ b as u64).wrapping_mul(FNV_PRIME)
}

/// Hash table of `KEYWORDS` indexes plus one; 0 is an empty slot.
const fn build_table() -> [u16; TABLE_SIZE] {
    let entries = parse_keywords();
    let mut table = [0u16; TABLE_SIZE];
    let mut n = 0;
    while n < KEYWORD_COUNT {
        let e = entries[n];
        let mut h = FNV_OFFSET;
        let mut i = 0;
        while i < e.len as usize {
            h = fnv_step(h, KEYWORD_TEXT[e.start as usize + i]);
            i += 1;
        }
        let mut slot = slot_of(h);
        while table[slot] != 0 {
            slot = (slot + 1) & (TABLE_SIZE - 1);
        }
        table[slot] = (n + 1) as u16;
        n += 1;
    }
    table
}

static TABLE: [u16; TABLE_SIZE] = build_table();

/// Type of a word, looked up without regard to ASCII case: the type character of the table
/// (`k`, `f`, `o`, `U`, …), or `n` (bareword) for a word it does not hold.
#[inline]
pub(super) fn word_type(word: &[u8]) -> u8 {
    if word.is_empty() || word.len() > MAX_WORD {
        return b'n';
    }
    let mut upper = [0u8; MAX_WORD];
    let mut h = FNV_OFFSET;
    for (dst, &b) in upper.iter_mut().zip(word) {
        let u = b.to_ascii_uppercase();
        *dst = u;
        h = fnv_step(h, u);
    }
    let upper = &upper[..word.len()];
    let mut slot = slot_of(h);
    loop {
        let idx = TABLE[slot];
        if idx == 0 {
            return b'n';
        }
        let e = KEYWORDS[usize::from(idx) - 1];
        let start = usize::from(e.start);
        if usize::from(e.len) == upper.len()
            && KEYWORD_TEXT.get(start..start + upper.len()) == Some(upper)
        {
            return e.ty;
        }
        slot = (slot + 1) & (TABLE_SIZE - 1);
    }
}

/// Packs up to 8 bytes big-endian, zero padded (longer input: the first 8).
#[inline]
pub(super) const fn pack(bytes: &[u8]) -> u64 {
    let mut v = 0u64;
    let mut i = 0;
    while i < 8 {
        v <<= 8;
        if i < bytes.len() {
            v |= bytes[i] as u64;
        }
        i += 1;
    }
    v
}

const fn parse_fingerprints() -> [u64; FINGERPRINT_COUNT] {
    let mut out = [0u64; FINGERPRINT_COUNT];
    let text = FINGERPRINT_TEXT;
    let mut i = 0;
    let mut n = 0;
    while n < FINGERPRINT_COUNT {
        let mut v = 0u64;
        let mut len = 0;
        while text[i] != b'\n' {
            assert!(len < 8, "fingerprints.txt: at most 8 characters");
            v |= (text[i] as u64) << (56 - 8 * len);
            len += 1;
            i += 1;
        }
        assert!(len > 0, "fingerprints.txt: empty line");
        assert!(
            n == 0 || out[n - 1] < v,
            "fingerprints.txt: sorted, no duplicates"
        );
        out[n] = v;
        n += 1;
        i += 1;
    }
    out
}

static FINGERPRINTS: [u64; FINGERPRINT_COUNT] = parse_fingerprints();

/// Whether the fingerprint (upper-cased, packed by `pack`) is on the blacklist.
#[inline]
pub(super) fn blacklisted(packed_upper: u64) -> bool {
    FINGERPRINTS.binary_search(&packed_upper).is_ok()
}

#[cfg(test)]
pub(super) fn keyword_count() -> usize {
    KEYWORD_COUNT
}

#[cfg(test)]
pub(super) fn fingerprint_count() -> usize {
    FINGERPRINT_COUNT
}
