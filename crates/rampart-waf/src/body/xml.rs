//! XML bodies: well-formedness is checked; `XML:/*` is the text of the root element (all its
//! text and CDATA nodes, as libxml2's `xmlNodeGetContent`); `XML://@*` the attribute values.
use quick_xml::Reader;
use quick_xml::events::Event;

use super::BodyError;

pub(crate) fn parse(data: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), BodyError> {
    let mut r = Reader::from_reader(data);
    r.config_mut().check_end_names = true;
    let mut text = Vec::new();
    let mut attrs: Vec<Vec<u8>> = Vec::new();
    let mut depth: usize = 0;
    let mut seen_root = false;
    let mut buf = Vec::new();
    loop {
        let ev = r
            .read_event_into(&mut buf)
            .map_err(|e| BodyError(format!("XML parsing error: {e}")))?;
        if let Event::Start(e) | Event::Empty(e) = &ev {
            attributes(e, &mut attrs)?;
        }
        match ev {
            Event::Start(_) => {
                if depth == 0 && seen_root {
                    return Err(BodyError(
                        "XML parsing error: extra content at the end of the document".into(),
                    ));
                }
                depth += 1;
                seen_root = true;
            }
            Event::Empty(_) => {
                if depth == 0 && seen_root {
                    return Err(BodyError(
                        "XML parsing error: extra content at the end of the document".into(),
                    ));
                }
                seen_root = true;
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) => {
                if depth > 0 {
                    let s: &str = &t;
                    text.extend_from_slice(s.as_bytes());
                } else if !t.bytes().all(|c| c.is_ascii_whitespace()) {
                    return Err(BodyError(
                        "XML parsing error: content outside the root element".into(),
                    ));
                }
            }
            Event::GeneralRef(g) if depth > 0 => {
                let name: String = (*g).to_string();
                let resolved = match name.as_str() {
                    "lt" => Some("<".to_string()),
                    "gt" => Some(">".to_string()),
                    "amp" => Some("&".to_string()),
                    "apos" => Some("'".to_string()),
                    "quot" => Some("\"".to_string()),
                    n if n.starts_with('#') => {
                        let num = if let Some(h) = n.strip_prefix("#x") {
                            u32::from_str_radix(h, 16).ok()
                        } else {
                            n[1..].parse().ok()
                        };
                        num.and_then(char::from_u32).map(String::from)
                    }
                    _ => None,
                };
                match resolved {
                    Some(s) => text.extend_from_slice(s.as_bytes()),
                    None => {
                        text.push(b'&');
                        text.extend_from_slice(name.as_bytes());
                        text.push(b';');
                    }
                }
            }
            Event::CData(c) if depth > 0 => {
                let s: &str = &c;
                text.extend_from_slice(s.as_bytes());
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(BodyError("XML parsing error: no root element".into()));
    }
    if depth != 0 {
        return Err(BodyError("XML parsing error: premature end of data".into()));
    }
    Ok((text, attrs))
}

fn attributes(
    e: &quick_xml::events::BytesStart<'_>,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), BodyError> {
    for a in e.attributes() {
        let a = a.map_err(|err| BodyError(format!("XML parsing error: {err}")))?;
        match a.normalized_value(quick_xml::XmlVersion::default()) {
            Ok(v) => out.push(v.as_bytes().to_vec()),
            Err(_) => out.push(a.value.as_bytes().to_vec()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn text_nodes() {
        let (t, a) = parse(
            b"<?xml version=\"1.0\"?><a x='1'>hi <b y=\"&quot;2\"/>there<![CDATA[<x>]]> &lt;</a>",
        )
        .unwrap();
        assert_eq!(t, b"hi there<x> <");
        assert_eq!(a, vec![b"1".to_vec(), b"\"2".to_vec()]);
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"not xml").is_err());
        assert!(parse(b"").is_err());
    }
}
