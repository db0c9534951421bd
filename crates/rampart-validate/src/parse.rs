//! Request-side parsing: strict JSON (depth limit, duplicate keys), `application/x-www-form-urlencoded`
//! pairs, and string → typed JSON conversion per a schema [`Shape`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::bundle::{Shape, ty};
use crate::outcome::Reason;

const DEPTH_MARK: &str = "\u{1}rampart-depth";
const DUP_MARK: &str = "\u{1}rampart-dup";

/// Parse a JSON document, refusing nesting deeper than `max_depth` and duplicate object keys.
pub(crate) fn json(bytes: &[u8], max_depth: usize) -> Result<Value, Reason> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = ValueSeed {
        depth: 0,
        max: max_depth,
    }
    .deserialize(&mut de)
    .map_err(|e| classify(&e, max_depth))?;
    de.end().map_err(|_| Reason::MalformedJson)?;
    Ok(value)
}

fn classify(e: &serde_json::Error, max_depth: usize) -> Reason {
    let msg = e.to_string();
    if msg.starts_with(DEPTH_MARK) || msg.starts_with("recursion limit exceeded") {
        Reason::MaxDepth(max_depth)
    } else if msg.starts_with(DUP_MARK) {
        Reason::DuplicateKey
    } else {
        Reason::MalformedJson
    }
}

struct ValueSeed {
    depth: usize,
    max: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= self.max {
            return Err(de::Error::custom(DEPTH_MARK));
        }
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(ValueSeed {
            depth: self.depth + 1,
            max: self.max,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= self.max {
            return Err(de::Error::custom(DEPTH_MARK));
        }
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = map.next_value_seed(ValueSeed {
                depth: self.depth + 1,
                max: self.max,
            })?;
            if out.insert(key, v).is_some() {
                return Err(de::Error::custom(DUP_MARK));
            }
        }
        Ok(Value::Object(out))
    }
}

/// Decoded `key=value` pairs.
pub(crate) type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Split `a=1&b=2` into decoded pairs (`+` is a space).
pub(crate) fn form_pairs(raw: &str) -> Result<Pairs<'_>, Reason> {
    let mut out = Vec::new();
    for part in raw.split('&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((form_decode(k)?, form_decode(v)?));
    }
    Ok(out)
}

/// Decode one form component: `+` → space, then percent-decoding, then UTF-8.
pub(crate) fn form_decode(s: &str) -> Result<Cow<'_, str>, Reason> {
    if !s.bytes().any(|b| b == b'+' || b == b'%') {
        return Ok(Cow::Borrowed(s));
    }
    let spaced: Cow<'_, str> = if s.contains('+') {
        Cow::Owned(s.replace('+', " "))
    } else {
        Cow::Borrowed(s)
    };
    let decoded = percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map_err(|_| Reason::Encoding)?
        .into_owned();
    Ok(Cow::Owned(decoded))
}

/// Decode a path segment (percent-decoding only).
pub(crate) fn path_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains('%') {
        return Some(Cow::Borrowed(s));
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| Cow::Owned(c.into_owned()))
}

/// Turn a parameter string into the JSON value its schema expects (kept as a string when it
/// does not convert, so the schema reports the type error).
pub(crate) fn scalar(s: &str, shape: &Shape) -> Value {
    let t = shape.types;
    if t & (ty::INTEGER | ty::NUMBER) != 0
        && looks_numeric(s)
        && let Ok(n) = serde_json::from_str::<Number>(s)
    {
        let is_int = n.is_i64() || n.is_u64();
        if is_int || t & ty::NUMBER != 0 {
            return Value::Number(n);
        }
    }
    if t & ty::BOOLEAN != 0 {
        match s {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
    }
    if t & ty::NULL != 0 && t & ty::STRING == 0 && (s.is_empty() || s == "null") {
        return Value::Null;
    }
    Value::String(s.to_owned())
}

fn looks_numeric(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'e' | b'E' | b'+'))
}

/// A list of strings converted per the item shape.
pub(crate) fn array<'a>(values: impl IntoIterator<Item = &'a str>, shape: &Shape) -> Value {
    let item = shape.item();
    Value::Array(values.into_iter().map(|v| scalar(v, &item)).collect())
}

/// `k,v,k,v` (or `k=v,k=v` when `exploded`) into an object converted per the property shapes.
pub(crate) fn object_from_list(raw: &str, exploded: bool, shape: &Shape) -> Value {
    let mut out = Map::new();
    if raw.is_empty() {
        return Value::Object(out);
    }
    if exploded {
        for part in raw.split(',') {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            out.insert(k.to_owned(), scalar(v, &shape.prop(k)));
        }
    } else {
        let parts: Vec<&str> = raw.split(',').collect();
        for pair in parts.chunks(2) {
            let k = pair[0];
            let v = pair.get(1).copied().unwrap_or("");
            out.insert(k.to_owned(), scalar(v, &shape.prop(k)));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape(types: u8) -> Shape {
        Shape {
            types,
            ..Shape::default()
        }
    }

    #[test]
    fn scalars_convert_only_when_the_schema_wants_it() {
        assert_eq!(scalar("42", &shape(ty::INTEGER)), json!(42));
        assert_eq!(scalar("-7", &shape(ty::INTEGER)), json!(-7));
        assert_eq!(scalar("4.5", &shape(ty::INTEGER)), json!("4.5"));
        assert_eq!(scalar("4.5", &shape(ty::NUMBER | ty::INTEGER)), json!(4.5));
        assert_eq!(scalar("007", &shape(ty::INTEGER)), json!("007"));
        assert_eq!(scalar("+1", &shape(ty::INTEGER)), json!("+1"));
        assert_eq!(scalar("1e400", &shape(ty::NUMBER)), json!("1e400"));
        assert_eq!(scalar("NaN", &shape(ty::NUMBER)), json!("NaN"));
        assert_eq!(scalar("42", &shape(ty::STRING)), json!("42"));
        assert_eq!(scalar("true", &shape(ty::BOOLEAN)), json!(true));
        assert_eq!(scalar("True", &shape(ty::BOOLEAN)), json!("True"));
        assert_eq!(scalar("", &shape(ty::NULL | ty::INTEGER)), json!(null));
    }

    #[test]
    fn form_decoding() {
        let pairs = form_pairs("a=1+2&b=%C3%A9&&c&d=").unwrap();
        let flat: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            flat,
            [("a", "1 2"), ("b", "é"), ("c", ""), ("d", "")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(form_pairs("a=%ff"), Err(Reason::Encoding));
    }

    #[test]
    fn strict_json() {
        assert_eq!(
            json(br#"{"a": [1, {"b": null}]}"#, 3).unwrap(),
            json!({"a": [1, {"b": null}]})
        );
        assert_eq!(
            json(br#"{"a": [1, {"b": null}]}"#, 2),
            Err(Reason::MaxDepth(2))
        );
        assert_eq!(json(br#"{"a": 1, "a": 2}"#, 8), Err(Reason::DuplicateKey));
        assert_eq!(json(br#"{"a": 1} x"#, 8), Err(Reason::MalformedJson));
        assert_eq!(json(b"\"\\ud800\"", 8), Err(Reason::MalformedJson));
        assert_eq!(json(b"\xff", 8), Err(Reason::MalformedJson));
    }
}
