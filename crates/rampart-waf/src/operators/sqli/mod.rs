//! SQL-injection detection as libinjection does it (the behaviour of the Rust port
//! `libinjectionrs` 0.1.1, which the tests hold this module to): the input is tokenized as
//! SQL, the tokens are folded to at most five, their types make a fingerprint (`s&1c`:
//! string, logic operator, number, comment), and a blacklisted fingerprint is an injection
//! unless a whitelist rule for short fingerprints says otherwise. The input is read up to
//! five ways: as is (ANSI SQL, then MySQL if a `#` or `--x` comment could read
//! differently), as if it followed a `'` (ANSI, then MySQL), and as if it followed a `"`.
//!
//! Nothing here allocates: tokens are small `Copy` values naming ranges of the input, the
//! token vector and the merge buffer are arrays on the stack, and the word table and the
//! fingerprint list are built at compile time (`data`). The module uses no type of
//! `alloc` (no `Vec`, `String`, `Box`, `format!`), so `detect` cannot allocate.

mod data;
mod fold;
mod tokenizer;

#[cfg(test)]
mod tests;

use fold::Folded;
use tokenizer::{Context, ty};

/// A fingerprint: up to eight token-type characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    len: u8,
    bytes: [u8; 8],
}

impl Fingerprint {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = std::str::from_utf8(self.as_bytes()).unwrap_or("?");
        write!(f, "{text:?}")
    }
}

/// The fingerprint of `input` when libinjection calls it SQL injection, else `None`.
pub(crate) fn detect(input: &[u8]) -> Option<Fingerprint> {
    if input.is_empty() {
        return None;
    }
    // As is, then as if after a `'`: in ANSI SQL, and again in MySQL when a `#` or `--x`
    // comment may read differently there.
    for quote in [0, b'\''] {
        if quote != 0 && memchr::memchr(quote, input).is_none() {
            continue;
        }
        let (fp, mysql_hint) = check(
            input,
            Context {
                quote,
                mysql: false,
            },
        );
        if fp.is_some() {
            return fp;
        }
        if mysql_hint && let Some(fp) = check(input, Context { quote, mysql: true }).0 {
            return Some(fp);
        }
    }
    // As if after a `"`: MySQL only.
    let quote = b'"';
    if memchr::memchr(quote, input).is_some()
        && let Some(fp) = check(input, Context { quote, mysql: true }).0
    {
        return Some(fp);
    }
    None
}

/// One reading of the input: the fingerprint if it is an injection, and whether the
/// tokenizer saw a comment that MySQL reads differently.
fn check(input: &[u8], ctx: Context) -> (Option<Fingerprint>, bool) {
    let f = fold::fold(input, ctx);
    let n = f.count.min(8);
    let mut fp = Fingerprint {
        len: n as u8,
        bytes: [0; 8],
    };
    for (b, t) in fp.bytes.iter_mut().zip(&f.tokens[..n]) {
        *b = t.ty;
    }
    if fp.as_bytes().contains(&ty::EVIL) {
        fp = Fingerprint {
            len: 1,
            bytes: [ty::EVIL, 0, 0, 0, 0, 0, 0, 0],
        };
    }
    let sqli = n > 0 && blacklisted(&fp) && !whitelisted(&f, &fp);
    (sqli.then_some(fp), f.mysql_hint)
}

fn blacklisted(fp: &Fingerprint) -> bool {
    let mut upper = fp.bytes;
    upper.make_ascii_uppercase();
    data::blacklisted(data::pack(&upper[..usize::from(fp.len)]))
}

/// Whether a blacklisted fingerprint is let through: rules for the short ones, which
/// ordinary text produces too.
fn whitelisted(f: &Folded, fp: &Fingerprint) -> bool {
    let p = fp.as_bytes();
    if p.len() > 1 && p[p.len() - 1] == ty::COMMENT && mentions_sp_password(f.input()) {
        return false;
    }
    match p.len() {
        2 => two_token_whitelist(f, p),
        3 => three_token_whitelist(f, p),
        _ => false,
    }
}

/// `sp_password` anywhere (any case; the input as UTF-8 text only): MSSQL keeps such
/// statements out of its logs.
fn mentions_sp_password(input: &[u8]) -> bool {
    std::str::from_utf8(input).is_ok()
        && input
            .windows(11)
            .any(|w| w.eq_ignore_ascii_case(b"sp_password"))
}

fn two_token_whitelist(f: &Folded, p: &[u8]) -> bool {
    let (t0, t1) = (&f.tokens[0], &f.tokens[1]);
    if p[1] == ty::UNION {
        // `foo union` alone is text; folded down to it, not
        return f.stats_tokens == 2;
    }
    let c1 = f.first(t1);
    if c1 == b'#' {
        return true;
    }
    if t1.ty == ty::COMMENT {
        if t0.ty == ty::BAREWORD && c1 != b'/' {
            // `word -- ...`: only `/*` comments count after a word
            return true;
        }
        if t0.ty == ty::NUMBER {
            if c1 == b'/' || f.stats_tokens > 2 {
                return false;
            }
            // What follows the number, at the number's length from the start of the
            // input (libinjection's offset, whatever the number's position).
            let s = f.input();
            let e = usize::from(t0.len);
            return match s.get(e) {
                None => true,
                Some(&c) if c <= 32 || c >= 0x80 => false,
                Some(b'/') => s.get(e + 1) != Some(&b'*'),
                Some(b'-') => s.get(e + 1) != Some(&b'-'),
                Some(_) => true,
            };
        }
    }
    // `1--x` scans: only a comment of just `--` is an attack
    t1.len > 2 && c1 == b'-'
}

fn three_token_whitelist(f: &Folded, p: &[u8]) -> bool {
    let (t0, t1, t2) = (&f.tokens[0], &f.tokens[1], &f.tokens[2]);
    if p == b"sos" || p == b"s&s" {
        // `…foo' + 'bar…` is an attack only when the strings close on each other
        return !(t0.open == 0 && t2.close == 0 && t0.close == t2.open);
    }
    if matches!(p, b"s&n" | b"n&1" | b"1&1" | b"1&v" | b"1&s") && f.stats_tokens == 3 {
        // `sexy and 17`
        return true;
    }
    if t1.ty == ty::KEYWORD {
        // only MySQL's `INTO OUTFILE` / `INTO DUMPFILE` (upper case, as the port compares)
        let v = f.val(t1);
        return t1.len < 5 || !v.starts_with(b"INTO");
    }
    false
}
