//! Request path normalization: the path routes are matched on is the path the upstream gets,
//! so `/public/../admin` cannot reach an `allow_from`-protected `/admin` route by the back door.

use std::borrow::Cow;

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (origin-form is required past the edge).
    #[error("request path must start with '/'")]
    NotAbsolute,
}

/// Decodes percent-encoded unreserved characters (so `%2e%2e` is `..`), upper-cases the hex of
/// the others, encodes stray `%` as `%25`, and removes dot segments (RFC 3986 §5.2.4). Encoded slashes stay encoded.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let needs_work = path.contains('%') || path.split('/').any(|s| s == "." || s == "..");
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path);
    Ok(Cow::Owned(remove_dot_segments(&decoded)))
}

fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            let c = h * 16 + l;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                out.push(c as char);
            } else {
                out.push('%');
                out.push(bytes[i + 1].to_ascii_uppercase() as char);
                out.push(bytes[i + 2].to_ascii_uppercase() as char);
            }
            i += 3;
            continue;
        }
        if bytes[i] == b'%' {
            // A stray '%' is encoded, so decoding here can never form a new escape
            // (`%%30a` must not become `%0a` for the upstream to decode again).
            out.push_str("%25");
            i += 1;
            continue;
        }
        // Paths reaching here are valid URI characters (hyper checked them), all ASCII.
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len());
    result.push('/');
    result.push_str(&out.join("/"));
    if trailing_slash && !result.ends_with('/') {
        result.push('/');
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_removed() {
        for (input, want) in [
            ("/a/b/c", "/a/b/c"),
            ("/public/../admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2e/admin/", "/admin/"),
            ("/a/./b/.", "/a/b/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/..", "/"),
            ("/a%2fb/../c", "/c"),
            ("/a%2Fb", "/a%2Fb"),
            ("/%7euser", "/~user"),
            ("/a%zz", "/a%25zz"),
            ("/%%30a", "/%250a"),
            ("/a%2", "/a%252"),
            ("/", "/"),
        ] {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
        assert_eq!(normalize("*"), Err(PathError::NotAbsolute));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn normalization_is_idempotent_and_leaves_no_dot_segments(path in "/[a-zA-Z0-9%./~_-]{0,60}") {
            let once = normalize(&path).unwrap().into_owned();
            prop_assert_eq!(normalize(&once).unwrap().into_owned(), once.clone());
            prop_assert!(once.split('/').all(|s| s != "." && s != ".."), "{}", once);
            prop_assert!(once.starts_with('/'));
        }
    }
}
