//! Schema preparation: OpenAPI 3.0 → 2020-12, `$ref`s gathered into one self-contained schema per
//! root, the allowlist (`unevaluatedProperties: false`) added where a schema is silent, and the
//! shapes used to convert parameter strings into typed values.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use jsonschema::{Draft, PatternOptions, Validator};
use serde_json::{Map, Value, json};

use crate::config::ExtraFields;
use crate::error::SpecError;
use crate::load::{Docs, Loc};

/// Deepest schema nesting accepted in a spec (a guard against runaway specs, not a real limit).
const MAX_SCHEMA_DEPTH: usize = 256;

/// The schema dialect of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// OpenAPI 3.0: extended subset of draft 4 (`nullable`, boolean `exclusiveMinimum`, …).
    V30,
    /// OpenAPI 3.1 / JSON Schema 2020-12.
    V31,
}

/// A `$ref` target, prepared once and shared by every root that uses it.
struct Def {
    origin: Loc,
    value: Value,
    deps: Vec<usize>,
}

/// One prepared root schema (a body, a parameter) and the defs it uses directly.
pub(crate) struct Bundled {
    pub(crate) origin: Loc,
    pub(crate) schema: Value,
    deps: Vec<usize>,
}

/// Prepares every schema of one spec.
pub(crate) struct Bundler {
    dialect: Dialect,
    extra: ExtraFields,
    keys: HashMap<Loc, usize>,
    defs: Vec<Def>,
    /// Property names declared anywhere (safe to show in pointers).
    pub(crate) names: HashSet<String>,
}

/// JSON types as a bit set.
pub(crate) mod ty {
    pub(crate) const NULL: u8 = 1;
    pub(crate) const BOOLEAN: u8 = 2;
    pub(crate) const INTEGER: u8 = 4;
    pub(crate) const NUMBER: u8 = 8;
    pub(crate) const STRING: u8 = 16;
    pub(crate) const ARRAY: u8 = 32;
    pub(crate) const OBJECT: u8 = 64;
    pub(crate) const ANY: u8 = 127;

    pub(crate) fn parse(name: &str) -> u8 {
        match name {
            "null" => NULL,
            "boolean" => BOOLEAN,
            "integer" => INTEGER,
            "number" => NUMBER | INTEGER,
            "string" => STRING,
            "array" => ARRAY,
            "object" => OBJECT,
            _ => 0,
        }
    }

    pub(crate) fn of(v: &serde_json::Value) -> u8 {
        use serde_json::Value;
        match v {
            Value::Null => NULL,
            Value::Bool(_) => BOOLEAN,
            Value::Number(n) if n.is_f64() => NUMBER,
            Value::Number(_) => INTEGER,
            Value::String(_) => STRING,
            Value::Array(_) => ARRAY,
            Value::Object(_) => OBJECT,
        }
    }
}

/// What a schema accepts, roughly: enough to turn parameter strings into typed JSON.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub(crate) types: u8,
    pub(crate) items: Option<Box<Shape>>,
    pub(crate) props: BTreeMap<String, Shape>,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            types: ty::ANY,
            items: None,
            props: BTreeMap::new(),
        }
    }
}

impl Shape {
    /// Shape of a property (any, when undeclared).
    pub(crate) fn prop(&self, name: &str) -> Shape {
        self.props.get(name).cloned().unwrap_or_default()
    }

    /// Shape of array items (any, when undeclared).
    pub(crate) fn item(&self) -> Shape {
        self.items.as_deref().cloned().unwrap_or_default()
    }

    /// Only arrays (the parameter is a list).
    pub(crate) fn is_array(&self) -> bool {
        self.types & ty::ARRAY != 0 && self.types & !(ty::ARRAY | ty::NULL) == 0
    }

    /// Only objects (the parameter is a map).
    pub(crate) fn is_object(&self) -> bool {
        self.types & ty::OBJECT != 0 && self.types & !(ty::OBJECT | ty::NULL) == 0
    }
}

fn is_schema_annotation(key: &str) -> bool {
    matches!(
        key,
        "$defs"
            | "definitions"
            | "$id"
            | "id"
            | "$schema"
            | "$anchor"
            | "$dynamicAnchor"
            | "$comment"
            | "$vocabulary"
            | "example"
            | "examples"
            | "default"
            | "description"
            | "title"
            | "discriminator"
            | "xml"
            | "externalDocs"
            | "deprecated"
            | "readOnly"
            | "writeOnly"
            | "contentSchema"
    ) || key.starts_with("x-")
}

fn may_be_object(schema: &Map<String, Value>) -> bool {
    match schema.get("type") {
        None => true,
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        Some(_) => true,
    }
}

impl Bundler {
    pub(crate) fn new(dialect: Dialect, extra: ExtraFields) -> Self {
        Self {
            dialect,
            extra,
            keys: HashMap::new(),
            defs: Vec::new(),
            names: HashSet::new(),
        }
    }

    /// Prepare the schema at `loc` as a root (a body or parameter value: allowlisted).
    pub(crate) fn root(
        &mut self,
        docs: &mut Docs,
        loc: &Loc,
        node: &Value,
    ) -> Result<Bundled, SpecError> {
        let mut deps = Vec::new();
        let schema = self.transform(docs, loc, node, true, 0, &mut deps)?;
        Ok(Bundled {
            origin: loc.clone(),
            schema,
            deps,
        })
    }

    fn def(
        &mut self,
        docs: &mut Docs,
        at: &Loc,
        reference: &str,
        depth: usize,
    ) -> Result<usize, SpecError> {
        let target = docs.resolve(at, reference)?;
        if let Some(&i) = self.keys.get(&target) {
            return Ok(i);
        }
        let i = self.defs.len();
        self.keys.insert(target.clone(), i);
        self.defs.push(Def {
            origin: target.clone(),
            value: Value::Bool(true),
            deps: Vec::new(),
        });
        let Some((_, node)) = docs.node(&target) else {
            return Err(docs.invalid(at, "missing $ref target"));
        };
        let mut deps = Vec::new();
        let value = self.transform(docs, &target, &node, false, depth + 1, &mut deps)?;
        self.defs[i].value = value;
        self.defs[i].deps = deps;
        Ok(i)
    }

    /// Whether a property schema is `readOnly` (directly or through one `$ref`).
    fn is_read_only(&self, docs: &mut Docs, loc: &Loc, node: &Value) -> bool {
        if node.get("readOnly") == Some(&Value::Bool(true)) {
            return true;
        }
        if let Some(Value::String(r)) = node.get("$ref")
            && let Ok(target) = docs.resolve(loc, r)
            && let Some((_, t)) = docs.node(&target)
        {
            return t.get("readOnly") == Some(&Value::Bool(true));
        }
        false
    }

    fn sub(
        &mut self,
        docs: &mut Docs,
        loc: &Loc,
        node: &Value,
        strict: bool,
        depth: usize,
        deps: &mut Vec<usize>,
    ) -> Result<Value, SpecError> {
        self.transform(docs, loc, node, strict, depth + 1, deps)
    }

    fn sub_array(
        &mut self,
        docs: &mut Docs,
        loc: &Loc,
        node: &Value,
        strict: bool,
        depth: usize,
        deps: &mut Vec<usize>,
    ) -> Result<Value, SpecError> {
        let Value::Array(items) = node else {
            return Err(docs.invalid(loc, "must be an array of schemas"));
        };
        if items.is_empty() {
            return Err(docs.invalid(loc, "must not be empty"));
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(self.sub(docs, &loc.join(&i.to_string()), item, strict, depth, deps)?);
        }
        Ok(Value::Array(out))
    }

    fn sub_map(
        &mut self,
        docs: &mut Docs,
        loc: &Loc,
        node: &Value,
        strict: bool,
        depth: usize,
        deps: &mut Vec<usize>,
    ) -> Result<Map<String, Value>, SpecError> {
        let Value::Object(map) = node else {
            return Err(docs.invalid(loc, "must be an object of schemas"));
        };
        let mut out = Map::new();
        for (k, v) in map {
            out.insert(
                k.clone(),
                self.sub(docs, &loc.join(k), v, strict, depth, deps)?,
            );
        }
        Ok(out)
    }

    /// Rewrite one schema node. `strict`: the node is the first schema applied to its instance
    /// location (a root, a property, an item), so it is where the allowlist goes; in-place
    /// applicators (`allOf`, `$ref`, …) stay open so their annotations reach it.
    fn transform(
        &mut self,
        docs: &mut Docs,
        loc: &Loc,
        node: &Value,
        strict: bool,
        depth: usize,
        deps: &mut Vec<usize>,
    ) -> Result<Value, SpecError> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(docs.invalid(loc, "schema nesting too deep"));
        }
        let map = match node {
            Value::Bool(_) => return Ok(node.clone()),
            Value::Object(map) => map,
            _ => return Err(docs.invalid(loc, "a schema must be an object or a boolean")),
        };
        let reject = self.extra == ExtraFields::Reject;
        // `readOnly` properties are never required in requests; with the allowlist they are refused.
        let mut read_only: HashSet<String> = HashSet::new();
        if let Some(Value::Object(props)) = map.get("properties") {
            let props_loc = loc.join("properties");
            for (name, sub) in props {
                if self.is_read_only(docs, &props_loc.join(name), sub) {
                    read_only.insert(name.clone());
                }
            }
        }
        let mut out = Map::new();
        let mut tuple_items = false;
        for (key, value) in map {
            let at = loc.join(key);
            match key.as_str() {
                "$ref" => {
                    let Value::String(r) = value else {
                        return Err(docs.invalid(&at, "$ref must be a string"));
                    };
                    let i = self.def(docs, loc, r, depth)?;
                    deps.push(i);
                    out.insert("$ref".into(), Value::String(format!("#/$defs/d{i}")));
                }
                "properties" => {
                    let Value::Object(props) = value else {
                        return Err(docs.invalid(&at, "must be an object"));
                    };
                    let mut t = Map::new();
                    for (name, sub) in props {
                        self.names.insert(name.clone());
                        let v = if reject && read_only.contains(name) {
                            Value::Bool(false)
                        } else {
                            self.sub(docs, &at.join(name), sub, true, depth, deps)?
                        };
                        t.insert(name.clone(), v);
                    }
                    out.insert(key.clone(), Value::Object(t));
                }
                "patternProperties" => {
                    let t = self.sub_map(docs, &at, value, true, depth, deps)?;
                    out.insert(key.clone(), Value::Object(t));
                }
                "dependentSchemas" => {
                    let t = self.sub_map(docs, &at, value, false, depth, deps)?;
                    out.insert(key.clone(), Value::Object(t));
                }
                "additionalProperties"
                | "unevaluatedProperties"
                | "additionalItems"
                | "unevaluatedItems" => {
                    let v = self.sub(docs, &at, value, true, depth, deps)?;
                    out.insert(key.clone(), v);
                }
                "items" => {
                    if value.is_array() {
                        // Draft 4-7 tuple form.
                        tuple_items = true;
                        let v = self.sub_array(docs, &at, value, true, depth, deps)?;
                        out.insert("prefixItems".into(), v);
                    } else {
                        let v = self.sub(docs, &at, value, true, depth, deps)?;
                        out.insert(key.clone(), v);
                    }
                }
                "prefixItems" => {
                    let v = self.sub_array(docs, &at, value, true, depth, deps)?;
                    out.insert(key.clone(), v);
                }
                "allOf" | "anyOf" | "oneOf" => {
                    let v = self.sub_array(docs, &at, value, false, depth, deps)?;
                    out.insert(key.clone(), v);
                }
                "not" | "if" | "then" | "else" | "contains" | "propertyNames" => {
                    let v = self.sub(docs, &at, value, false, depth, deps)?;
                    out.insert(key.clone(), v);
                }
                "$dynamicRef" | "$recursiveRef" | "$recursiveAnchor" => {
                    return Err(docs.invalid(&at, format!("{key} is not supported")));
                }
                "required" => {
                    let Value::Array(names) = value else {
                        return Err(docs.invalid(&at, "must be an array"));
                    };
                    let kept: Vec<Value> = names
                        .iter()
                        .filter(|n| n.as_str().is_none_or(|n| !read_only.contains(n)))
                        .cloned()
                        .collect();
                    if !kept.is_empty() {
                        out.insert(key.clone(), Value::Array(kept));
                    }
                }
                "nullable" if self.dialect == Dialect::V30 => {}
                "exclusiveMinimum" | "exclusiveMaximum" if value.is_boolean() => {}
                k if is_schema_annotation(k) => {}
                _ => {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        if tuple_items && let Some(additional) = out.remove("additionalItems") {
            out.insert("items".into(), additional);
        }
        // OpenAPI 3.0 (and draft 4) boolean exclusive bounds.
        for (flag, bound) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            if map.get(flag) == Some(&Value::Bool(true))
                && let Some(limit) = out.remove(bound)
            {
                out.insert(flag.into(), limit);
            }
        }
        if self.dialect == Dialect::V30 && map.get("nullable") == Some(&Value::Bool(true)) {
            add_null(&mut out);
        }
        add_int_format_bounds(&mut out);
        if strict
            && reject
            && !out.is_empty()
            && may_be_object(&out)
            && !out.contains_key("additionalProperties")
            && !out.contains_key("unevaluatedProperties")
        {
            out.insert("unevaluatedProperties".into(), Value::Bool(false));
        }
        Ok(Value::Object(out))
    }

    /// The root schema with every def it reaches under `$defs`, ready to compile.
    pub(crate) fn assemble(&self, bundled: &Bundled) -> Value {
        let used = self.closure(&bundled.deps);
        if used.is_empty() {
            return bundled.schema.clone();
        }
        let mut defs = Map::new();
        for i in used {
            defs.insert(format!("d{i}"), self.defs[i].value.clone());
        }
        match &bundled.schema {
            Value::Object(map) => {
                let mut map = map.clone();
                map.insert("$defs".into(), Value::Object(defs));
                Value::Object(map)
            }
            other => json!({ "$defs": defs, "allOf": [other] }),
        }
    }

    fn closure(&self, roots: &[usize]) -> Vec<usize> {
        let mut seen = HashSet::new();
        let mut queue: VecDeque<usize> = roots.iter().copied().collect();
        while let Some(i) = queue.pop_front() {
            if seen.insert(i) {
                queue.extend(self.defs[i].deps.iter().copied());
            }
        }
        let mut v: Vec<usize> = seen.into_iter().collect();
        v.sort_unstable();
        v
    }

    /// Compile a prepared root into a validator (2020-12, formats on, linear-time `regex`).
    pub(crate) fn compile(&self, docs: &Docs, bundled: &Bundled) -> Result<Validator, SpecError> {
        let schema = self.assemble(bundled);
        validator_options().build(&schema).map_err(|e| {
            // Map `/$defs/dN/rest` back to the def's origin.
            let path = e.instance_path().as_str().to_owned();
            let (origin, rest) = match path.strip_prefix("/$defs/d") {
                Some(tail) => {
                    let (num, rest) = tail.split_once('/').map_or((tail, ""), |(n, r)| (n, r));
                    match num.parse::<usize>().ok().and_then(|i| self.defs.get(i)) {
                        Some(def) => (
                            &def.origin,
                            if rest.is_empty() {
                                String::new()
                            } else {
                                format!("/{rest}")
                            },
                        ),
                        None => (&bundled.origin, path.clone()),
                    }
                }
                None => (&bundled.origin, path.clone()),
            };
            SpecError::Schema {
                file: docs.file(origin.doc).to_path_buf(),
                pointer: format!("#{}{}", origin.ptr, rest),
                message: e.to_string(),
            }
        })
    }

    /// The shape of a prepared schema (for parameter conversion).
    pub(crate) fn shape(&self, schema: &Value) -> Shape {
        self.shape_at(schema, 0)
    }

    fn shape_at(&self, schema: &Value, depth: usize) -> Shape {
        let Value::Object(map) = schema else {
            return Shape::default();
        };
        if depth > 16 {
            return Shape::default();
        }
        let mut types: Option<u8> = None;
        let mut shape = Shape::default();
        let add = |t: u8, types: &mut Option<u8>| *types = Some(types.unwrap_or(0) | t);
        match map.get("type") {
            Some(Value::String(t)) => add(ty::parse(t), &mut types),
            Some(Value::Array(ts)) => {
                for t in ts.iter().filter_map(Value::as_str) {
                    add(ty::parse(t), &mut types);
                }
            }
            _ => {}
        }
        if types.is_none() {
            if let Some(Value::Array(values)) = map.get("enum") {
                for v in values {
                    add(ty::of(v), &mut types);
                }
            }
            if let Some(v) = map.get("const") {
                add(ty::of(v), &mut types);
            }
        }
        let mut subs: Vec<Shape> = Vec::new();
        if let Some(Value::String(r)) = map.get("$ref")
            && let Some(def) = r
                .strip_prefix("#/$defs/d")
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|i| self.defs.get(i))
        {
            subs.push(self.shape_at(&def.value, depth + 1));
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = map.get(key) {
                for b in branches {
                    subs.push(self.shape_at(b, depth + 1));
                }
            }
        }
        if let Some(Value::Object(props)) = map.get("properties") {
            for (k, v) in props {
                shape.props.insert(k.clone(), self.shape_at(v, depth + 1));
            }
        }
        if let Some(items) = map.get("items") {
            shape.items = Some(Box::new(self.shape_at(items, depth + 1)));
        }
        // allOf narrows, anyOf/oneOf widen: a union is close enough for conversion.
        let mut sub_types: Option<u8> = None;
        for sub in subs {
            if sub.types != ty::ANY {
                sub_types = Some(sub_types.unwrap_or(0) | sub.types);
            }
            for (k, v) in sub.props {
                shape.props.entry(k).or_insert(v);
            }
            if shape.items.is_none() {
                shape.items = sub.items;
            }
        }
        shape.types = match (types, sub_types) {
            (Some(t), Some(s)) if t & s != 0 => t & s,
            (Some(t), _) => t,
            (None, Some(s)) => s,
            (None, None) => ty::ANY,
        };
        shape
    }
}

/// The jsonschema options every validator is built with.
pub(crate) fn validator_options() -> jsonschema::ValidationOptions<'static> {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_pattern_options(PatternOptions::regex())
        .offline()
}

fn add_null(out: &mut Map<String, Value>) {
    match out.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            out.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(ts)) => {
            if !ts.iter().any(|t| t == "null") {
                ts.push(Value::from("null"));
            }
        }
        _ => return,
    }
    if let Some(Value::Array(values)) = out.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

fn add_int_format_bounds(out: &mut Map<String, Value>) {
    let (min, max): (i64, i64) = match out.get("format").and_then(Value::as_str) {
        Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
        Some("int64") => (i64::MIN, i64::MAX),
        _ => return,
    };
    if !out.contains_key("minimum") && !out.contains_key("exclusiveMinimum") {
        out.insert("minimum".into(), Value::from(min));
    }
    if !out.contains_key("maximum") && !out.contains_key("exclusiveMaximum") {
        out.insert("maximum".into(), Value::from(max));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare(dialect: Dialect, extra: ExtraFields, schema: Value) -> Value {
        let doc = json!({ "s": schema, "Base": { "type": "object", "properties": { "b": { "type": "string" } } } });
        let mut docs = Docs::from_value("t.json", doc, None);
        let mut b = Bundler::new(dialect, extra);
        let loc = Loc {
            doc: 0,
            ptr: "/s".into(),
        };
        let node = docs.node(&loc).unwrap().1;
        let bundled = b.root(&mut docs, &loc, &node).unwrap();
        b.assemble(&bundled)
    }

    #[test]
    fn allowlist_goes_where_the_instance_location_starts_not_into_branches() {
        let out = prepare(
            Dialect::V31,
            ExtraFields::Reject,
            json!({
                "allOf": [ { "$ref": "#/Base" }, { "properties": { "c": { "type": "object" } } } ],
                "properties": { "a": { "type": "object", "properties": {} }, "n": { "type": "integer" }, "free": {} }
            }),
        );
        assert_eq!(out["unevaluatedProperties"], json!(false));
        assert!(out.get("additionalProperties").is_none());
        // Branches and $ref targets stay open so their annotations count.
        assert!(out["allOf"][1].get("unevaluatedProperties").is_none());
        assert!(out["$defs"]["d0"].get("unevaluatedProperties").is_none());
        // Nested instance locations get their own.
        assert_eq!(
            out["allOf"][1]["properties"]["c"]["unevaluatedProperties"],
            json!(false)
        );
        assert_eq!(
            out["properties"]["a"]["unevaluatedProperties"],
            json!(false)
        );
        // Non-object and empty schemas are left alone.
        assert!(
            out["properties"]["n"]
                .get("unevaluatedProperties")
                .is_none()
        );
        assert_eq!(out["properties"]["free"], json!({}));
    }

    #[test]
    fn allow_adds_nothing() {
        let out = prepare(
            Dialect::V31,
            ExtraFields::Allow,
            json!({ "type": "object", "properties": { "a": { "type": "object" } } }),
        );
        assert_eq!(
            out,
            json!({ "type": "object", "properties": { "a": { "type": "object" } } })
        );
    }

    #[test]
    fn openapi_30_dialect_is_converted() {
        let out = prepare(
            Dialect::V30,
            ExtraFields::Allow,
            json!({
                "type": "integer", "format": "int32", "nullable": true, "minimum": 0, "exclusiveMinimum": true,
                "maximum": 9, "exclusiveMaximum": false, "example": 3, "x-internal": true, "enum": [1, 2]
            }),
        );
        assert_eq!(
            out,
            json!({ "type": ["integer", "null"], "format": "int32", "exclusiveMinimum": 0, "maximum": 9, "enum": [1, 2, null] })
        );
        let out = prepare(
            Dialect::V30,
            ExtraFields::Allow,
            json!({ "type": "array", "items": [{ "type": "string" }], "additionalItems": false }),
        );
        assert_eq!(
            out,
            json!({ "type": "array", "prefixItems": [{ "type": "string" }], "items": false })
        );
    }
}
