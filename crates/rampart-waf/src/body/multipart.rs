//! `multipart/form-data` (RFC 7578) with ModSecurity's strictness flags.
use super::BodyError;
use crate::state::{FileInfo, Kv, MpFlag, TxData};

/// What the parser extracted; flags are set on the transaction directly.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub args: Vec<Kv>,
    pub files: Vec<FileInfo>,
    pub part_headers: Vec<Kv>,
}

fn bchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c)
}

/// Extracts the boundary from the Content-Type value.
pub(crate) fn boundary(ct: &[u8], st: &mut TxData) -> Result<Vec<u8>, BodyError> {
    // case-sensitive, as ModSecurity's strstr
    let Some(pos) = find(ct, b"boundary") else {
        return Err(BodyError("Multipart: Boundary not found in C-T.".into()));
    };
    let mut i = pos + 8;
    while i < ct.len() && (ct[i] == b' ' || ct[i] == b'\t') {
        st.set_mp(MpFlag::BoundaryWhitespace);
        i += 1;
    }
    if ct.get(i) != Some(&b'=') {
        return Err(BodyError(
            "Multipart: Invalid boundary in C-T (malformed).".into(),
        ));
    }
    i += 1;
    while i < ct.len() && (ct[i] == b' ' || ct[i] == b'\t') {
        st.set_mp(MpFlag::BoundaryWhitespace);
        i += 1;
    }
    let b = if ct.get(i) == Some(&b'"') {
        st.set_mp(MpFlag::BoundaryQuoted);
        let rest = &ct[i + 1..];
        let Some(end) = rest.iter().position(|&c| c == b'"') else {
            return Err(BodyError(
                "Multipart: Invalid boundary in C-T (quote).".into(),
            ));
        };
        rest[..end].to_vec()
    } else {
        let rest = &ct[i..];
        let end = rest
            .iter()
            .position(|&c| c == b';' || c == b',')
            .unwrap_or(rest.len());
        let v = &rest[..end];
        let t = v.trim_ascii_end();
        if t.len() != v.len() {
            st.set_mp(MpFlag::BoundaryWhitespace);
        }
        t.to_vec()
    };
    let after = find(&ct[i..], &b).map_or(ct.len(), |p| i + p + b.len());
    if find(&ct[after.min(ct.len())..], b"boundary").is_some() {
        return Err(BodyError(
            "Multipart: Multiple boundary parameters in C-T.".into(),
        ));
    }
    if b.is_empty() || !b.iter().all(|&c| bchar(c)) {
        return Err(BodyError(
            "Multipart: Invalid boundary in C-T (characters).".into(),
        ));
    }
    Ok(b)
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    if n.is_empty() {
        return Some(0);
    }
    h.windows(n.len()).position(|w| w == n)
}

#[derive(PartialEq, Eq)]
enum State {
    Preamble,
    Headers,
    Data,
    Epilogue,
}

struct Part {
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    data: Vec<u8>,
    last_ending: usize,
}

/// Parses the body; on error the message is for `REQBODY_ERROR_MSG`.
pub(crate) fn parse(
    ct: &[u8],
    body: &[u8],
    st: &mut TxData,
    file_limit: usize,
) -> Result<Parsed, BodyError> {
    let b = boundary(ct, st)?;
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(&b);
    let mut out = Parsed::default();
    let mut state = State::Preamble;
    let mut part: Option<Part> = None;
    let (mut lf, mut crlf) = (0usize, 0usize);
    let mut seen_boundary = false;
    let mut pos = 0;
    while pos < body.len() {
        let end = body[pos..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(body.len(), |p| pos + p + 1);
        let line = &body[pos..end];
        pos = end;
        let (content, ending) = if line.ends_with(b"\r\n") {
            crlf += 1;
            (&line[..line.len() - 2], 2)
        } else if line.ends_with(b"\n") {
            lf += 1;
            (&line[..line.len() - 1], 1)
        } else {
            (line, 0)
        };
        // boundary recognition as ModSecurity v3 (`Multipart::process_chunk`)
        if state != State::Epilogue {
            if line.len() > 3 && line.starts_with(b"--") {
                if content.starts_with(&delim) {
                    let rest = &content[delim.len()..];
                    let is_final = rest == b"--";
                    if !rest.is_empty() && !is_final {
                        return Err(BodyError(format!(
                            "Multipart: Invalid boundary: {}",
                            String::from_utf8_lossy(content)
                        )));
                    }
                    if let Some(p) = part.take() {
                        finish(p, &state, st, &mut out)?;
                    }
                    seen_boundary = true;
                    if is_final {
                        state = State::Epilogue;
                    } else {
                        state = State::Headers;
                        part = Some(Part {
                            headers: Vec::new(),
                            data: Vec::new(),
                            last_ending: 0,
                        });
                    }
                    continue;
                }
                if st.mp(MpFlag::BoundaryQuoted)
                    && content.get(2) == Some(&b'"')
                    && content[3..].starts_with(&b)
                {
                    return Err(BodyError("Multipart: Invalid boundary (quotes).".into()));
                }
                let ws = content[2..]
                    .iter()
                    .take_while(|c| c.is_ascii_whitespace())
                    .count();
                if ws > 0 && content[2 + ws..].starts_with(&b) {
                    return Err(BodyError(
                        "Multipart: Invalid boundary (whitespace).".into(),
                    ));
                }
                st.set_mp(MpFlag::UnmatchedBoundary);
            } else if find(line, &delim).is_some() {
                st.set_mp(MpFlag::UnmatchedBoundary);
            }
        }
        match state {
            State::Preamble => {
                if !content.is_empty() {
                    st.set_mp(MpFlag::DataBefore);
                }
            }
            State::Epilogue => {
                if !content.is_empty() {
                    st.set_mp(MpFlag::DataAfter);
                }
            }
            State::Headers => {
                let Some(p) = part.as_mut() else { continue };
                if content.is_empty() {
                    // a part without headers is only an error once it ends (no Content-Disposition)
                    let _ = p;
                    state = State::Data;
                } else if content[0] == b' ' || content[0] == b'\t' {
                    st.set_mp(MpFlag::HeaderFolding);
                    match p.headers.last_mut() {
                        Some((_, v)) => {
                            v.push(b' ');
                            v.extend_from_slice(content.trim_ascii());
                        }
                        None => {
                            st.set_mp(MpFlag::InvalidHeaderFolding);
                            return Err(BodyError(
                                "Multipart: Invalid part header (folding error).".into(),
                            ));
                        }
                    }
                } else {
                    let Some(colon) = content.iter().position(|&c| c == b':') else {
                        return Err(BodyError(
                            "Multipart: Invalid part header (colon missing).".into(),
                        ));
                    };
                    let name = content[..colon].trim_ascii();
                    if name.is_empty() {
                        return Err(BodyError(
                            "Multipart: Invalid part header (header name missing).".into(),
                        ));
                    }
                    // as ModSecurity v3: invalid characters in names are left to CRS 922130
                    // (MULTIPART_PART_HEADERS); of duplicate headers the last one counts
                    p.headers
                        .push((name.to_vec(), content[colon + 1..].trim_ascii().to_vec()));
                }
            }
            State::Data => {
                if let Some(p) = part.as_mut() {
                    p.data.extend_from_slice(line);
                    p.last_ending = ending;
                }
            }
        }
    }
    if lf > 0 {
        st.set_mp(MpFlag::LfLine);
        if crlf > 0 {
            st.set_mp(MpFlag::CrlfLfLines);
        }
    }
    if out.files.len() > file_limit {
        st.set_mp(MpFlag::FileLimitExceeded);
    }
    if !seen_boundary {
        return Err(BodyError(
            "Multipart: No boundaries found in payload.".into(),
        ));
    }
    if state != State::Epilogue {
        if let Some(p) = part.take()
            && state == State::Data
        {
            let _ = finish(p, &state, st, &mut out);
        }
        // ModSecurity v3 fails here before it computes MULTIPART_STRICT_ERROR
        st.mp_final_boundary_missing = true;
        return Err(BodyError("Multipart: Final boundary missing.".into()));
    }
    Ok(out)
}

fn finish(mut p: Part, state: &State, st: &mut TxData, out: &mut Parsed) -> Result<(), BodyError> {
    if *state == State::Headers {
        st.set_mp(MpFlag::InvalidPart);
        return Ok(());
    }
    let n = p.data.len() - p.last_ending.min(p.data.len());
    p.data.truncate(n);
    let Some((_, cd)) = p
        .headers
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"content-disposition"))
    else {
        return Err(BodyError(
            "Multipart: Part missing Content-Disposition header.".into(),
        ));
    };
    let (name, filename) = content_disposition(cd, st)?;
    for (hn, hv) in &p.headers {
        let mut line = hn.clone();
        line.extend_from_slice(b": ");
        line.extend_from_slice(hv);
        out.part_headers.push((name.clone(), line));
    }
    match filename {
        Some(f) => out.files.push(FileInfo {
            name,
            filename: f,
            size: p.data.len(),
        }),
        None => out.args.push((name, p.data)),
    }
    Ok(())
}

/// `form-data; name="a"; filename="b"` → (name, filename).
fn content_disposition(
    cd: &[u8],
    st: &mut TxData,
) -> Result<(Vec<u8>, Option<Vec<u8>>), BodyError> {
    let invalid = || BodyError("Multipart: Invalid Content-Disposition header.".into());
    if cd.len() < 9 || !cd[..9].eq_ignore_ascii_case(b"form-data") {
        return Err(invalid());
    }
    let mut i = 9;
    let mut name = None;
    let mut filename = None;
    let mut first = true;
    loop {
        while i < cd.len() && (cd[i] == b' ' || cd[i] == b'\t') {
            i += 1;
        }
        if i >= cd.len() {
            break;
        }
        if cd[i] == b';' {
            i += 1;
        } else if first || i > 0 {
            st.set_mp(MpFlag::MissingSemicolon);
        }
        first = false;
        while i < cd.len() && (cd[i] == b' ' || cd[i] == b'\t') {
            i += 1;
        }
        if i >= cd.len() {
            break;
        }
        let ns = i;
        while i < cd.len() && cd[i] != b'=' && cd[i] != b';' {
            i += 1;
        }
        let pname = cd[ns..i].trim_ascii().to_ascii_lowercase();
        if cd.get(i) != Some(&b'=') {
            return Err(invalid());
        }
        i += 1;
        while i < cd.len() && (cd[i] == b' ' || cd[i] == b'\t') {
            i += 1;
        }
        let mut val = Vec::new();
        if cd.get(i) == Some(&b'"') {
            i += 1;
            let mut closed = false;
            while i < cd.len() {
                if cd[i] == b'\\' && matches!(cd.get(i + 1), Some(b'"' | b'\\')) {
                    val.push(cd[i + 1]);
                    i += 2;
                } else if cd[i] == b'"' {
                    closed = true;
                    i += 1;
                    break;
                } else {
                    val.push(cd[i]);
                    i += 1;
                }
            }
            if !closed {
                st.set_mp(MpFlag::InvalidQuoting);
                return Err(invalid());
            }
        } else {
            let vs = i;
            while i < cd.len() && cd[i] != b';' && cd[i] != b' ' && cd[i] != b'\t' {
                i += 1;
            }
            val.extend_from_slice(&cd[vs..i]);
            if val.contains(&b'\'') || val.contains(&b'"') {
                st.set_mp(MpFlag::InvalidQuoting);
            }
        }
        match pname.as_slice() {
            b"name" => {
                if name.replace(val).is_some() {
                    return Err(BodyError(
                        "Multipart: Duplicate Content-Disposition name.".into(),
                    ));
                }
            }
            b"filename" => {
                if filename.replace(val).is_some() {
                    return Err(BodyError(
                        "Multipart: Duplicate Content-Disposition filename.".into(),
                    ));
                }
            }
            b"filename*" => {
                if filename.is_none() {
                    filename = Some(val);
                }
            }
            _ => return Err(invalid()),
        }
    }
    match name {
        Some(n) if !n.is_empty() => Ok((n, filename)),
        _ => Err(BodyError(
            "Multipart: Content-Disposition header missing name field.".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts_and_files() {
        let mut st = TxData::default();
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--XX--\r\n";
        let p = parse(b"multipart/form-data; boundary=XX", body, &mut st, 100).unwrap();
        assert_eq!(p.args, vec![(b"a".to_vec(), b"value".to_vec())]);
        assert_eq!(p.files[0].filename, b"x.php");
        assert_eq!(p.files[0].size, 5);
        assert_eq!(p.part_headers[2].1, b"Content-Type: text/plain");
        assert!(!st.mp_flags.iter().any(|f| *f));
    }

    #[test]
    fn flags_and_errors() {
        let mut st = TxData::default();
        let body = b"junk\n--XX\nContent-Disposition: form-data; name=a\n\nv\n--XX--\nafter";
        parse(b"multipart/form-data; boundary=\"XX\"", body, &mut st, 100).unwrap();
        for f in [
            MpFlag::BoundaryQuoted,
            MpFlag::DataBefore,
            MpFlag::DataAfter,
            MpFlag::LfLine,
        ] {
            assert!(st.mp(f), "{f:?}");
        }
        let mut st = TxData::default();
        assert!(parse(b"multipart/form-data", b"", &mut st, 1).is_err());
        assert!(
            parse(
                b"multipart/form-data; boundary=XX",
                b"--XX\r\nbad header\r\n\r\n",
                &mut st,
                1
            )
            .is_err()
        );
        assert!(
            parse(
                b"multipart/form-data; boundary=XX",
                b"--XX\r\nContent-Disposition: form-data; name=a\r\n\r\nv",
                &mut st,
                1
            )
            .is_err()
        );
    }
}
