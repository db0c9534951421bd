//! SecLang text → directives: line continuations, comments, quoting as Apache/ModSecurity do,
//! and `Include` with globs relative to the including file.

use std::path::{Path, PathBuf};

/// One directive: its 1-based starting line, name and arguments (quotes removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive {
    pub line: usize,
    pub name: String,
    pub args: Vec<String>,
}

/// Splits `text` into directives. Errors carry the line.
pub(crate) fn parse(text: &str) -> Vec<Result<Directive, (usize, String)>> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut start = 0;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if buf.is_empty() {
            start = n + 1;
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
        }
        if let Some(l) = line.strip_suffix('\\') {
            buf.push_str(l);
            continue;
        }
        buf.push_str(line);
        out.push(
            tokenize(&buf)
                .map(|(name, args)| Directive {
                    line: start,
                    name,
                    args,
                })
                .map_err(|e| (start, e)),
        );
        buf.clear();
    }
    if !buf.is_empty() {
        out.push(
            tokenize(&buf)
                .map(|(name, args)| Directive {
                    line: start,
                    name,
                    args,
                })
                .map_err(|e| (start, e)),
        );
    }
    out
}

fn tokenize(s: &str) -> Result<(String, Vec<String>), String> {
    let mut words = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut w = String::new();
        if b[i] == '"' || b[i] == '\'' {
            let q = b[i];
            i += 1;
            let mut closed = false;
            while i < b.len() {
                if b[i] == '\\' && i + 1 < b.len() && b[i + 1] == q {
                    w.push(q);
                    i += 2;
                } else if b[i] == q {
                    closed = true;
                    i += 1;
                    break;
                } else {
                    w.push(b[i]);
                    i += 1;
                }
            }
            if !closed {
                return Err("unterminated quoted argument".into());
            }
        } else {
            while i < b.len() && !b[i].is_whitespace() {
                w.push(b[i]);
                i += 1;
            }
        }
        words.push(w);
    }
    if words.is_empty() {
        return Err("empty directive".into());
    }
    let name = words.remove(0);
    Ok((name, words))
}

/// Expands a path that may hold `*`/`?` in any component (sorted, like ModSecurity/Apache).
pub(crate) fn glob(pattern: &Path) -> Vec<PathBuf> {
    let s = pattern.to_string_lossy();
    if !s.contains(['*', '?', '[']) {
        return vec![pattern.to_path_buf()];
    }
    let mut bases = vec![PathBuf::new()];
    for comp in pattern.components() {
        let c = comp.as_os_str().to_string_lossy().into_owned();
        let mut next = Vec::new();
        for base in &bases {
            if c.contains(['*', '?']) {
                let dir = if base.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    base.clone()
                };
                let Ok(rd) = std::fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for n in names {
                    if wildcard(c.as_bytes(), n.as_bytes()) && !n.starts_with('.') {
                        next.push(base.join(n));
                    }
                }
            } else {
                next.push(base.join(&c));
            }
        }
        bases = next;
    }
    bases
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_quotes_comments() {
        let d = parse(
            "# c\nSecRule ARGS \"@rx a\\\"b\" \\\n    \"id:1,\\\n    msg:'x'\"\n\nSecRuleEngine On\n",
        );
        let d: Vec<_> = d.into_iter().map(Result::unwrap).collect();
        assert_eq!(d[0].line, 2);
        assert_eq!(d[0].args, vec!["ARGS", "@rx a\"b", "id:1,    msg:'x'"]);
        assert_eq!(d[1].name, "SecRuleEngine");
        assert!(
            parse("SecRule ARGS \"@rx a")
                .into_iter()
                .next()
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(b"*.conf", b"a.conf"));
        assert!(!wildcard(b"*.conf", b"a.data"));
        assert!(wildcard(b"R?Q*", b"REQUEST"));
    }
}
