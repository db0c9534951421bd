//! The SQL word table and the fingerprint blacklist, both built at compile time from the
//! text files next to this one (written by `scripts/sqli-data.py` from libinjection's data).
//!
//! Words: `keywords.txt` holds one `TYPE WORD` per line (upper-case words, which may hold
//! spaces: `NOT IN`, `GROUP BY`). They go into an open-addressing hash table of indexes
//! (linear probing; the key is the upper-cased word as four `u64`, hashed eight bytes at a
//! time); a word absent from it is a bareword.
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

/// A word of up to 32 bytes, upper-cased, as four little-endian `u64` (zero padded).
type Key = [u64; 4];

const ONES: u64 = 0x0101_0101_0101_0101;

/// ASCII upper case of eight bytes at once (bytes 0x80-0xFF unchanged).
#[inline(always)]
const fn upper8(x: u64) -> u64 {
    let high = ONES * 0x80;
    let low7 = x & !high;
    // bit 7 of each byte: its low seven bits are at least `a`, above `z`
    let ge_a = low7 + ONES * (0x80 - b'a' as u64);
    let gt_z = low7 + ONES * (0x80 - b'z' as u64 - 1);
    let lower = ge_a & !gt_z & !x & high;
    x - (lower >> 2)
}

const HASH_K: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline(always)]
const fn hash(key: &Key, len: usize) -> u64 {
    let mut h = (len as u64).wrapping_mul(HASH_K);
    let mut i = 0;
    while i < len.div_ceil(8) {
        h = (h.rotate_left(5) ^ key[i]).wrapping_mul(HASH_K);
        i += 1;
    }
    h
}

/// One word of the table: its key, length and type.
#[derive(Clone, Copy)]
struct Entry {
    key: Key,
    len: u8,
    ty: u8,
}

const fn parse_keywords() -> [Entry; KEYWORD_COUNT] {
    let mut out = [Entry {
        key: [0; 4],
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
        let mut key = [0u64; 4];
        while text[end] != b'\n' {
            let k = end - start;
            assert!(k < MAX_WORD, "keywords.txt: word too long");
            key[k / 8] |= (text[end] as u64) << (8 * (k % 8));
            end += 1;
        }
        assert!(end > start, "keywords.txt: empty word");
        let mut c = 0;
        while c < 4 {
            key[c] = upper8(key[c]);
            c += 1;
        }
        out[n] = Entry {
            key,
            len: (end - start) as u8,
            ty,
        };
        n += 1;
        i = end + 1;
    }
    out
}

static KEYWORDS: [Entry; KEYWORD_COUNT] = parse_keywords();

const TABLE_BITS: u32 = 12;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const _: () = assert!(
    KEYWORD_COUNT * 4 <= TABLE_SIZE,
    "keep the table at most a quarter full"
);

#[inline(always)]
const fn slot_of(hash: u64) -> usize {
    (hash >> (64 - TABLE_BITS)) as usize
}

/// 16 other bits of the hash, kept in the slot to pass over most other words unread.
#[inline(always)]
const fn tag_of(hash: u64) -> u32 {
    (hash >> 16) as u32 & 0xFFFF
}

/// Hash table (linear probing) of slots `tag << 16 | index + 1` into `KEYWORDS`; 0 is empty.
const fn build_table() -> [u32; TABLE_SIZE] {
    let entries = parse_keywords();
    let mut table = [0u32; TABLE_SIZE];
    let mut n = 0;
    while n < KEYWORD_COUNT {
        let e = entries[n];
        let h = hash(&e.key, e.len as usize);
        let mut slot = slot_of(h);
        while table[slot] != 0 {
            slot = (slot + 1) & (TABLE_SIZE - 1);
        }
        table[slot] = tag_of(h) << 16 | (n + 1) as u32;
        n += 1;
    }
    table
}

static TABLE: [u32; TABLE_SIZE] = build_table();

/// For each length below 32, the first letters (bit `c - b'A'`) of the words that start a
/// phrase of the table at that length (`NATURAL` and `NATURAL LEFT` of `NATURAL LEFT JOIN`):
/// words merge only into such phrases.
const fn build_phrase_starts() -> [u32; 32] {
    let mut out = [0u32; 32];
    let text = KEYWORD_TEXT;
    let mut i = 0;
    while i < text.len() {
        let start = i + 2;
        let mut end = start;
        while text[end] != b'\n' {
            if text[end] == b' ' {
                let first = text[start];
                assert!(
                    first.is_ascii_uppercase(),
                    "keywords.txt: a phrase starts with a letter"
                );
                out[end - start] |= 1 << (first - b'A');
            }
            end += 1;
        }
        i = end + 1;
    }
    out
}

static PHRASE_STARTS: [u32; 32] = build_phrase_starts();

/// Whether a word of `len` bytes starting with `first` may begin a phrase of the table.
#[inline]
pub(super) fn may_start_phrase(first: u8, len: usize) -> bool {
    let c = first.to_ascii_uppercase();
    c.is_ascii_uppercase()
        && PHRASE_STARTS
            .get(len)
            .is_some_and(|m| m & 1 << (c - b'A') != 0)
}

/// Per length, the sets (256 bits) of first and of last bytes of the table's words: most
/// other words fail these two tests and are not hashed.
const fn build_edges() -> [[[u64; 4]; 2]; MAX_WORD + 1] {
    let mut out = [[[0u64; 4]; 2]; MAX_WORD + 1];
    let entries = parse_keywords();
    let mut n = 0;
    while n < KEYWORD_COUNT {
        let e = entries[n];
        let len = e.len as usize;
        let first = (e.key[0] & 0xFF) as usize;
        let last = ((e.key[(len - 1) / 8] >> (8 * ((len - 1) % 8))) & 0xFF) as usize;
        out[len][0][first / 64] |= 1 << (first % 64);
        out[len][1][last / 64] |= 1 << (last % 64);
        n += 1;
    }
    out
}

static EDGES: [[[u64; 4]; 2]; MAX_WORD + 1] = build_edges();

#[inline(always)]
fn has(set: &[u64; 4], b: u8) -> bool {
    set[usize::from(b >> 6)] >> (b & 63) & 1 != 0
}

/// Type of the word `s[start..start + len]`, looked up without regard to ASCII case: the
/// type character of the table (`k`, `f`, `o`, `U`, …), or `n` (bareword) for a word it
/// does not hold. (The word is read eight bytes at a time, past its end where the input
/// goes on, masked.)
#[inline(always)]
pub(super) fn word_type_at(s: &[u8], start: usize, len: usize) -> u8 {
    if len == 0 || len > MAX_WORD {
        return b'n';
    }
    let edge = |i: usize| s.get(i).map_or(0, u8::to_ascii_uppercase);
    let [firsts, lasts] = &EDGES[len];
    if !has(firsts, edge(start)) || !has(lasts, edge(start + len - 1)) {
        return b'n';
    }
    lookup(s, start, len)
}

/// The hash-table part of `word_type_at`, for a length `1..=MAX_WORD` within `s`.
#[inline(never)]
fn lookup(s: &[u8], start: usize, len: usize) -> u8 {
    let mut key: Key = [0; 4];
    for (i, k) in key.iter_mut().enumerate().take(len.div_ceil(8)) {
        let off = start + 8 * i;
        let v = match s.get(off..off + 8) {
            Some(b) => <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes),
            None => {
                let mut t = [0u8; 8];
                let tail = s.get(off..start + len).unwrap_or_default();
                t[..tail.len().min(8)].copy_from_slice(&tail[..tail.len().min(8)]);
                u64::from_le_bytes(t)
            }
        };
        let rem = len - 8 * i;
        let v = if rem < 8 {
            v & ((1u64 << (8 * rem)) - 1)
        } else {
            v
        };
        *k = upper8(v);
    }
    let h = hash(&key, len);
    let tag = tag_of(h);
    let mut slot = slot_of(h);
    loop {
        let v = TABLE[slot];
        if v == 0 {
            return b'n';
        }
        if v >> 16 == tag {
            let e = &KEYWORDS[(v & 0xFFFF) as usize - 1];
            if usize::from(e.len) == len && e.key == key {
                return e.ty;
            }
        }
        slot = (slot + 1) & (TABLE_SIZE - 1);
    }
}

/// Type of a word (see `word_type_at`).
#[cfg(test)]
pub(super) fn word_type(word: &[u8]) -> u8 {
    word_type_at(word, 0, word.len())
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
