//! `application/x-www-form-urlencoded` (also the query string) and the `Cookie` header.
use crate::state::Kv;
use crate::transforms::url_decode::decode;

/// Splits on `sep`, then `name=value`; both are URL-decoded (invalid escapes kept). Returns the
/// pairs and whether an invalid `%` escape was seen (`URLENCODED_ERROR`).
pub(crate) fn parse(data: &[u8], sep: u8) -> (Vec<Kv>, bool) {
    let mut out = Vec::new();
    let mut invalid = false;
    for piece in data.split(|&c| c == sep) {
        if piece.is_empty() {
            continue;
        }
        let (k, v) = match piece.iter().position(|&c| c == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &b""[..]),
        };
        invalid |= bad_escape(k) || bad_escape(v);
        out.push((decode(k), decode(v)));
    }
    (out, invalid)
}

fn bad_escape(v: &[u8]) -> bool {
    v.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && !(v.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && v.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// `Cookie: a=1; b=2` (version 0 cookies: values are not decoded).
pub(crate) fn parse_cookies(header: &[u8], out: &mut Vec<Kv>) {
    for piece in header.split(|&c| c == b';') {
        let piece = piece.trim_ascii();
        if piece.is_empty() {
            continue;
        }
        match piece.iter().position(|&c| c == b'=') {
            Some(i) => out.push((piece[..i].trim_ascii().to_vec(), piece[i + 1..].to_vec())),
            None => out.push((piece.to_vec(), Vec::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses() {
        let (kv, bad) = parse(b"a=1&b=%41+c&&flag&d=%zz", b'&');
        assert_eq!(kv[0], (b"a".to_vec(), b"1".to_vec()));
        assert_eq!(kv[1], (b"b".to_vec(), b"A c".to_vec()));
        assert_eq!(kv[2], (b"flag".to_vec(), b"".to_vec()));
        assert_eq!(kv[3].1, b"%zz");
        assert!(bad);
        let mut c = Vec::new();
        parse_cookies(b"a=1; b = x=y ;c", &mut c);
        assert_eq!(
            c,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b" x=y".to_vec()),
                (b"c".to_vec(), vec![])
            ]
        );
    }
}
