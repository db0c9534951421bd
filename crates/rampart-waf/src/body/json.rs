//! JSON bodies: every scalar becomes an argument named like ModSecurity v3 names it
//! (`json.a.b`, array members `json.c.array_0` …). `null` is an empty value.
use serde_json::Value;

use super::BodyError;
use crate::state::Kv;

pub(crate) fn parse(data: &[u8], max_depth: usize, out: &mut Vec<Kv>) -> Result<(), BodyError> {
    let v: Value =
        serde_json::from_slice(data).map_err(|e| BodyError(format!("JSON parsing error: {e}")))?;
    let mut path = b"json".to_vec();
    walk(&v, &mut path, 0, max_depth, out)
}

/// Adds the arguments under `v`, named from `path` (one buffer for the whole walk: each
/// level appends its segment and takes it off again).
fn walk(
    v: &Value,
    path: &mut Vec<u8>,
    depth: usize,
    max: usize,
    out: &mut Vec<Kv>,
) -> Result<(), BodyError> {
    if depth > max {
        return Err(BodyError(
            "JSON parsing error: maximum nesting depth exceeded".into(),
        ));
    }
    let len = path.len();
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                path.push(b'.');
                path.extend_from_slice(k.as_bytes());
                walk(v, path, depth + 1, max, out)?;
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.extend_from_slice(b".array_");
                path.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
                walk(v, path, depth + 1, max, out)?;
                path.truncate(len);
            }
        }
        Value::String(s) => out.push((path.clone(), s.as_bytes().to_vec())),
        Value::Number(n) => out.push((path.clone(), n.to_string().into_bytes())),
        Value::Bool(b) => out.push((path.clone(), b.to_string().into_bytes())),
        Value::Null => out.push((path.clone(), Vec::new())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names() {
        let mut out = Vec::new();
        parse(br#"{"a":{"b":"x"},"c":[1,true,null]}"#, 512, &mut out).unwrap();
        let names: Vec<String> = out
            .iter()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "json.a.b",
                "json.c.array_0",
                "json.c.array_1",
                "json.c.array_2"
            ]
        );
        assert!(parse(b"{bad", 512, &mut Vec::new()).is_err());
        assert!(parse(b"[[[1]]]", 2, &mut Vec::new()).is_err());
    }
}
