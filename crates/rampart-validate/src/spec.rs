//! [`CompiledSpec`]: an OpenAPI document (or per-operation JSON Schemas) compiled once at load,
//! then checked against each request.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Method;
use jsonschema::Validator;
use serde_json::{Map, Value};

use crate::bundle::{Bundler, Dialect, Shape};
use crate::config::{BasePath, CompileOptions, ExtraFields};
use crate::error::SpecError;
use crate::load::{Docs, Loc, push_escaped};
use crate::outcome::{Outcome, Reason, RequestParts};
use crate::parse;
use crate::report::Violations;

/// Bodies up to this size get every violation reported (up to `max_violations`); larger ones
/// get the first.
const FULL_REPORT_MAX_BYTES: usize = 64 * 1024;

/// Methods an OpenAPI path item may hold, in `Allow` order.
const METHODS: [(&str, Method); 8] = [
    ("get", Method::GET),
    ("head", Method::HEAD),
    ("post", Method::POST),
    ("put", Method::PUT),
    ("patch", Method::PATCH),
    ("delete", Method::DELETE),
    ("options", Method::OPTIONS),
    ("trace", Method::TRACE),
];

/// A spec compiled for per-request checks: path matcher, and per operation the validators of
/// its parameters and body. Immutable, `Send + Sync`: share it behind an `Arc` and swap it on
/// reload.
pub struct CompiledSpec {
    paths: Vec<PathEntry>,
    by_len: HashMap<usize, Vec<usize>>,
    ops: Vec<Operation>,
    base_paths: Vec<String>,
    options: CompileOptions,
    names: HashSet<String>,
}

impl std::fmt::Debug for CompiledSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSpec")
            .field(
                "paths",
                &self.paths.iter().map(|p| &p.template).collect::<Vec<_>>(),
            )
            .field("operations", &self.ops.len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// One operation given by a plain JSON Schema for its JSON body
/// (see [`CompiledSpec::load_json_schemas`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationSchema {
    /// Method of the operation.
    pub method: Method,
    /// Path template (`/items/{id}`); path parameters are strings.
    pub path: String,
    /// JSON Schema file (YAML or JSON) for the `application/json` body; `None`: no body allowed.
    pub body_schema: Option<PathBuf>,
}

/// Path parameters captured from a request path (name, decoded value).
type Captures<'p> = Vec<(Arc<str>, Cow<'p, str>)>;
/// A matched path entry and its captures.
type PathMatch<'s, 'p> = (&'s PathEntry, Captures<'p>);

struct PathEntry {
    template: Arc<str>,
    segs: Vec<Seg>,
    rank: Vec<u8>,
    methods: Vec<(Method, usize)>,
    allow: Vec<Method>,
}

enum Seg {
    Lit(String),
    Param(Arc<str>),
    Mixed {
        re: regex::Regex,
        names: Vec<Arc<str>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    Path,
    Query,
    Header,
    Cookie,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Simple,
    Form,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
}

struct Param {
    name: Arc<str>,
    location: In,
    pointer: String,
    required: bool,
    style: Style,
    explode: bool,
    json_content: bool,
    shape: Shape,
    validator: Option<Validator>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Text,
    Opaque,
}

struct Media {
    /// Lower-case `type/subtype`, `type/*` or `*/*`.
    range: String,
    kind: BodyKind,
    shape: Shape,
    validator: Option<Validator>,
}

struct BodySpec {
    required: bool,
    media: Vec<Media>,
}

struct Operation {
    id: Arc<str>,
    template: Arc<str>,
    params: Vec<Param>,
    body: Option<BodySpec>,
    /// Plain JSON Schema operations declare no query parameters: the query is not checked.
    query_unchecked: bool,
}

/// Built while loading.
struct Builder<'o> {
    docs: Docs,
    bundler: Bundler,
    options: &'o CompileOptions,
    ops: Vec<Operation>,
    paths: Vec<PathEntry>,
}

fn as_str<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

impl CompiledSpec {
    /// Load and compile an OpenAPI 3.0/3.1 document (YAML, or JSON when the name ends `.json`).
    /// `$ref`s may point inside the file or to files relative to it; never to URLs.
    ///
    /// # Errors
    /// [`SpecError`] naming the file and the JSON pointer of what is wrong.
    pub fn load(path: &Path, options: &CompileOptions) -> Result<Self, SpecError> {
        let mut docs = Docs::empty();
        docs.load_file(path)?;
        Self::from_docs(docs, options)
    }

    /// Compile an OpenAPI document given as text (`name` is used in messages and picks the
    /// format by extension; relative file `$ref`s resolve against `base_dir` when given).
    ///
    /// # Errors
    /// As [`CompiledSpec::load`].
    pub fn from_text(
        name: &str,
        text: &str,
        base_dir: Option<&Path>,
        options: &CompileOptions,
    ) -> Result<Self, SpecError> {
        Self::from_docs(Docs::from_text(name, text, base_dir)?, options)
    }

    /// Compile an OpenAPI document already parsed as JSON.
    ///
    /// # Errors
    /// As [`CompiledSpec::load`].
    pub fn from_value(
        name: &str,
        value: Value,
        options: &CompileOptions,
    ) -> Result<Self, SpecError> {
        Self::from_docs(Docs::from_value(name, value, None), options)
    }

    /// Compile plain JSON Schemas, one per operation (2020-12 semantics; draft-4 style boolean
    /// bounds and tuple `items` are converted). Only the method, the path and the JSON body are
    /// checked: these operations declare no query parameters, so the query is not checked.
    ///
    /// # Errors
    /// As [`CompiledSpec::load`].
    pub fn load_json_schemas(
        operations: &[OperationSchema],
        options: &CompileOptions,
    ) -> Result<Self, SpecError> {
        let mut b = Builder {
            docs: Docs::empty(),
            bundler: Bundler::new(Dialect::V31, options.extra_fields),
            options,
            ops: Vec::new(),
            paths: Vec::new(),
        };
        for op in operations {
            let body = match &op.body_schema {
                Some(file) => {
                    let doc = b.docs.load_file(file)?;
                    let loc = Loc {
                        doc,
                        ptr: String::new(),
                    };
                    let node = (*b.docs.root(doc)).clone();
                    let bundled = b.bundler.root(&mut b.docs, &loc, &node)?;
                    let validator = b.bundler.compile(&b.docs, &bundled)?;
                    let shape = b.bundler.shape(&bundled.schema);
                    Some(BodySpec {
                        required: true,
                        media: vec![Media {
                            range: "application/json".into(),
                            kind: BodyKind::Json,
                            shape,
                            validator: Some(validator),
                        }],
                    })
                }
                None => None,
            };
            let template: Arc<str> = Arc::from(op.path.as_str());
            let id: Arc<str> = Arc::from(format!("{} {}", op.method, op.path));
            let segs = parse_template(&op.path).map_err(|m| SpecError::Invalid {
                file: PathBuf::from("<operations>"),
                pointer: format!("{} {}", op.method, op.path),
                message: m,
            })?;
            let params = segs
                .iter()
                .flat_map(|s| match s {
                    Seg::Param(n) => vec![n.clone()],
                    Seg::Mixed { names, .. } => names.clone(),
                    Seg::Lit(_) => vec![],
                })
                .map(|name| untyped_path_param(&name))
                .collect();
            let idx = b.ops.len();
            b.ops.push(Operation {
                id,
                template: template.clone(),
                params,
                body,
                query_unchecked: true,
            });
            b.add_route(&template, segs, op.method.clone(), idx);
        }
        Ok(b.finish(vec![String::new()]))
    }

    fn from_docs(docs: Docs, options: &CompileOptions) -> Result<Self, SpecError> {
        let root = docs.root(0);
        let file = docs.file(0).to_path_buf();
        if root.get("swagger").is_some() {
            return Err(SpecError::Version {
                file,
                message: "Swagger 2.0 is not supported; convert to OpenAPI 3".into(),
            });
        }
        let dialect = match as_str(&root, "openapi") {
            Some(v) if v.starts_with("3.0") => Dialect::V30,
            Some(v) if v.starts_with("3.1") || v.starts_with("3.2") => Dialect::V31,
            Some(v) => {
                return Err(SpecError::Version {
                    file,
                    message: format!("openapi {v:?}: expected 3.0.x or 3.1.x"),
                });
            }
            None => {
                return Err(SpecError::Version {
                    file,
                    message: "no `openapi` version field (not an OpenAPI document)".into(),
                });
            }
        };
        let mut b = Builder {
            docs,
            bundler: Bundler::new(dialect, options.extra_fields),
            options,
            ops: Vec::new(),
            paths: Vec::new(),
        };
        match root.get("paths") {
            None | Some(Value::Null) => {}
            Some(Value::Object(paths)) => {
                for (template, _) in paths {
                    let loc = Loc {
                        doc: 0,
                        ptr: String::new(),
                    }
                    .join("paths")
                    .join(template);
                    b.path_item(template, &loc)?;
                }
            }
            Some(_) => {
                return Err(b.docs.invalid(
                    &Loc {
                        doc: 0,
                        ptr: "/paths".into(),
                    },
                    "must be an object",
                ));
            }
        }
        let bases = match &options.base_path {
            BasePath::None => vec![String::new()],
            BasePath::Fixed(p) => vec![p.trim_end_matches('/').to_owned()],
            BasePath::Servers => server_paths(&root),
        };
        Ok(b.finish(bases))
    }

    /// The options the spec was compiled with.
    #[must_use]
    pub fn options(&self) -> &CompileOptions {
        &self.options
    }

    /// Number of operations.
    #[must_use]
    pub fn operation_count(&self) -> usize {
        self.ops.len()
    }

    /// Check one request. Never panics, never echoes request values; cost is bounded by the
    /// body bound, the nesting limit and `max_violations`.
    pub fn validate(&self, req: &RequestParts<'_>) -> Outcome {
        let Some((entry, captures)) = self.find(req.path) else {
            return Outcome::UnknownPath;
        };
        let op_idx = entry
            .methods
            .iter()
            .find(|(m, _)| m == req.method)
            .or_else(|| {
                if req.method == Method::HEAD {
                    entry.methods.iter().find(|(m, _)| m == Method::GET)
                } else {
                    None
                }
            })
            .map(|(_, i)| *i);
        let Some(op_idx) = op_idx else {
            return Outcome::MethodNotAllowed {
                allow: entry.allow.clone(),
            };
        };
        let op = &self.ops[op_idx];
        let mut v = Violations::new(self.options.max_violations, &self.names);

        // Body first: 413 and 415 answer before anything is parsed.
        let body = req.body.filter(|b| !b.is_empty());
        let mut parsed: Option<(Value, &Media)> = None;
        match (body, &op.body) {
            (Some(bytes), _) if bytes.len() > self.options.max_body_bytes => {
                return Outcome::BodyTooLarge {
                    limit: self.options.max_body_bytes,
                };
            }
            (Some(_), None) => v.push("/body".into(), Reason::BodyNotAllowed),
            (Some(bytes), Some(spec)) => {
                let Some((media, kind)) = req.content_type().and_then(|ct| spec.select(ct)) else {
                    return Outcome::UnsupportedMediaType {
                        operation_id: op.id.clone(),
                    };
                };
                if let Some(value) = self.parse_body(bytes, media, kind, &mut v) {
                    parsed = Some((value, media))
                }
            }
            (None, Some(spec)) if spec.required => v.push("/body".into(), Reason::Required),
            (None, _) => {}
        }

        self.check_path(op, &captures, &mut v);
        self.check_query(op, req.query, &mut v);
        self.check_headers(op, req, &mut v);

        if let Some((value, media)) = parsed
            && let Some(validator) = &media.validator
            && !v.is_full()
            && !validator.is_valid(&value)
        {
            if body.map_or(0, <[u8]>::len) <= FULL_REPORT_MAX_BYTES {
                v.schema_errors("/body", validator.iter_errors(&value));
            } else {
                // Large bodies: the first error only, so a body full of faults cannot make the
                // validator build one error per fault.
                v.schema_errors("/body", validator.validate(&value).err().into_iter());
            }
        }
        if v.list.is_empty() {
            Outcome::Valid {
                operation_id: op.id.clone(),
                path_template: op.template.clone(),
            }
        } else {
            Outcome::Invalid {
                operation_id: op.id.clone(),
                violations: v.list,
            }
        }
    }

    fn find<'p>(&self, path: &'p str) -> Option<PathMatch<'_, 'p>> {
        for base in &self.base_paths {
            let rest = if base.is_empty() {
                path
            } else {
                match path.strip_prefix(base.as_str()) {
                    Some("") => "/",
                    Some(r) if r.starts_with('/') => r,
                    _ => continue,
                }
            };
            if let Some(found) = self.match_path(rest) {
                return Some(found);
            }
        }
        None
    }

    fn match_path<'p>(&self, path: &'p str) -> Option<PathMatch<'_, 'p>> {
        let rest = path.strip_prefix('/')?;
        let mut segs: Vec<Cow<'p, str>> = Vec::new();
        for raw in rest.split('/') {
            let seg = parse::path_decode(raw)?;
            if seg == "." || seg == ".." {
                return None;
            }
            segs.push(seg);
        }
        let candidates = self.by_len.get(&segs.len())?;
        let mut best: Option<PathMatch<'_, 'p>> = None;
        'entries: for &i in candidates {
            let entry = &self.paths[i];
            if best.as_ref().is_some_and(|(b, _)| b.rank >= entry.rank) {
                continue;
            }
            let mut caps = Vec::new();
            for (seg, pat) in segs.iter().zip(&entry.segs) {
                match pat {
                    Seg::Lit(l) => {
                        if seg.as_ref() != l {
                            continue 'entries;
                        }
                    }
                    Seg::Param(name) => {
                        if seg.is_empty() {
                            continue 'entries;
                        }
                        caps.push((name.clone(), seg.clone()));
                    }
                    Seg::Mixed { re, names } => {
                        let Some(c) = re.captures(seg) else {
                            continue 'entries;
                        };
                        for (k, name) in names.iter().enumerate() {
                            let Some(m) = c.get(k + 1) else {
                                continue 'entries;
                            };
                            caps.push((name.clone(), Cow::Owned(m.as_str().to_owned())));
                        }
                    }
                }
            }
            best = Some((entry, caps));
        }
        best
    }

    fn parse_body(
        &self,
        bytes: &[u8],
        media: &Media,
        kind: BodyKind,
        v: &mut Violations<'_>,
    ) -> Option<Value> {
        match kind {
            BodyKind::Opaque => None,
            BodyKind::Json => match parse::json(bytes, self.options.depth()) {
                Ok(value) => Some(value),
                Err(reason) => {
                    v.push("/body".into(), reason);
                    None
                }
            },
            BodyKind::Text => match std::str::from_utf8(bytes) {
                Ok(s) => Some(Value::String(s.to_owned())),
                Err(_) => {
                    v.push("/body".into(), Reason::Encoding);
                    None
                }
            },
            BodyKind::Form => {
                let Ok(text) = std::str::from_utf8(bytes) else {
                    v.push("/body".into(), Reason::Encoding);
                    return None;
                };
                let pairs = match parse::form_pairs(text) {
                    Ok(p) => p,
                    Err(reason) => {
                        v.push("/body".into(), reason);
                        return None;
                    }
                };
                let mut out = Map::new();
                let mut dup: HashSet<&str> = HashSet::new();
                for (k, val) in &pairs {
                    let shape = media.shape.prop(k);
                    if shape.is_array() {
                        let item = shape.item();
                        let entry = out
                            .entry(k.to_string())
                            .or_insert_with(|| Value::Array(Vec::new()));
                        if let Value::Array(a) = entry {
                            a.push(parse::scalar(val, &item));
                        }
                    } else if out.contains_key(k.as_ref()) {
                        if dup.insert(k) {
                            let p = v.pointer("/body", k);
                            v.push(p, Reason::Duplicate);
                        }
                    } else {
                        out.insert(k.to_string(), parse::scalar(val, &shape));
                    }
                }
                Some(Value::Object(out))
            }
        }
    }

    fn check(param: &Param, value: &Value, v: &mut Violations<'_>) {
        if let Some(validator) = &param.validator
            && !v.is_full()
            && !validator.is_valid(value)
        {
            v.schema_errors(&param.pointer, validator.iter_errors(value));
        }
    }

    fn check_path(
        &self,
        op: &Operation,
        captures: &[(Arc<str>, Cow<'_, str>)],
        v: &mut Violations<'_>,
    ) {
        for (name, raw) in captures {
            let Some(param) = op
                .params
                .iter()
                .find(|p| p.location == In::Path && &p.name == name)
            else {
                continue;
            };
            let value = if param.json_content {
                match parse::json(raw.as_bytes(), self.options.depth()) {
                    Ok(x) => x,
                    Err(r) => {
                        v.push(param.pointer.clone(), r);
                        continue;
                    }
                }
            } else {
                simple_value(raw, param)
            };
            Self::check(param, &value, v);
        }
    }

    fn check_query(&self, op: &Operation, query: Option<&str>, v: &mut Violations<'_>) {
        let pairs = match query.map(parse::form_pairs) {
            None => Vec::new(),
            Some(Ok(p)) => p,
            Some(Err(reason)) => {
                v.push("/query".into(), reason);
                return;
            }
        };
        let mut used = vec![false; pairs.len()];
        for param in op.params.iter().filter(|p| p.location == In::Query) {
            let value = self.query_value(param, &pairs, &mut used, v);
            match value {
                Some(Ok(value)) => Self::check(param, &value, v),
                Some(Err(())) => {}
                None if param.required => v.push(param.pointer.clone(), Reason::Required),
                None => {}
            }
        }
        if self.options.extra_fields == ExtraFields::Reject && !op.query_unchecked {
            let mut seen: HashSet<&str> = HashSet::new();
            for ((k, _), used) in pairs.iter().zip(&used) {
                if !used && seen.insert(k) {
                    let p = v.pointer("/query", k);
                    v.push(p, Reason::UnknownParameter);
                }
            }
        }
    }

    /// The value of one query parameter (`Some(Err)`: a violation was recorded already).
    fn query_value(
        &self,
        param: &Param,
        pairs: &[(Cow<'_, str>, Cow<'_, str>)],
        used: &mut [bool],
        v: &mut Violations<'_>,
    ) -> Option<Result<Value, ()>> {
        let name: &str = &param.name;
        if param.style == Style::DeepObject {
            let mut obj = Map::new();
            for (i, (k, val)) in pairs.iter().enumerate() {
                let Some(prop) = k
                    .strip_prefix(name)
                    .and_then(|r| r.strip_prefix('['))
                    .and_then(|r| r.strip_suffix(']'))
                else {
                    continue;
                };
                used[i] = true;
                if obj.contains_key(prop) {
                    v.push(param.pointer.clone(), Reason::Duplicate);
                    return Some(Err(()));
                }
                obj.insert(prop.to_owned(), parse::scalar(val, &param.shape.prop(prop)));
            }
            return if obj.is_empty() {
                None
            } else {
                Some(Ok(Value::Object(obj)))
            };
        }
        if param.style == Style::Form
            && param.explode
            && param.shape.is_object()
            && !param.json_content
        {
            let mut obj = Map::new();
            for (i, (k, val)) in pairs.iter().enumerate() {
                if !param.shape.props.contains_key(k.as_ref()) {
                    continue;
                }
                used[i] = true;
                if obj.contains_key(k.as_ref()) {
                    v.push(param.pointer.clone(), Reason::Duplicate);
                    return Some(Err(()));
                }
                obj.insert(k.to_string(), parse::scalar(val, &param.shape.prop(k)));
            }
            return if obj.is_empty() {
                None
            } else {
                Some(Ok(Value::Object(obj)))
            };
        }
        let mut values: Vec<&str> = Vec::new();
        for (i, (k, val)) in pairs.iter().enumerate() {
            if k == name {
                used[i] = true;
                values.push(val);
            }
        }
        if values.is_empty() {
            return None;
        }
        if param.json_content {
            if values.len() > 1 {
                v.push(param.pointer.clone(), Reason::Duplicate);
                return Some(Err(()));
            }
            return match parse::json(values[0].as_bytes(), self.options.depth()) {
                Ok(x) => Some(Ok(x)),
                Err(r) => {
                    v.push(param.pointer.clone(), r);
                    Some(Err(()))
                }
            };
        }
        if param.shape.is_array() && param.style == Style::Form && param.explode {
            return Some(Ok(parse::array(values, &param.shape)));
        }
        if values.len() > 1 {
            v.push(param.pointer.clone(), Reason::Duplicate);
            return Some(Err(()));
        }
        let raw = values[0];
        let value = if param.shape.is_array() {
            let sep = match param.style {
                Style::SpaceDelimited => ' ',
                Style::PipeDelimited => '|',
                _ => ',',
            };
            if raw.is_empty() {
                Value::Array(Vec::new())
            } else {
                parse::array(raw.split(sep), &param.shape)
            }
        } else if param.shape.is_object() {
            parse::object_from_list(raw, false, &param.shape)
        } else {
            parse::scalar(raw, &param.shape)
        };
        Some(Ok(value))
    }

    fn check_headers(&self, op: &Operation, req: &RequestParts<'_>, v: &mut Violations<'_>) {
        let mut cookies: Option<Vec<(String, String)>> = None;
        for param in &op.params {
            let raw: Option<String> = match param.location {
                In::Header => {
                    let mut all = req.headers.get_all(param.name.as_ref()).iter().peekable();
                    if all.peek().is_none() {
                        None
                    } else {
                        let mut parts = Vec::new();
                        let mut bad = false;
                        for h in all {
                            match h.to_str() {
                                Ok(s) => parts.push(s.trim()),
                                Err(_) => bad = true,
                            }
                        }
                        if bad {
                            v.push(param.pointer.clone(), Reason::Encoding);
                            continue;
                        }
                        if parts.len() > 1 && !param.shape.is_array() {
                            v.push(param.pointer.clone(), Reason::Duplicate);
                            continue;
                        }
                        Some(parts.join(","))
                    }
                }
                In::Cookie => {
                    let jar = cookies.get_or_insert_with(|| cookie_pairs(req.headers));
                    let mut found = jar
                        .iter()
                        .filter(|(k, _)| k.as_str() == param.name.as_ref());
                    let first = found.next().map(|(_, val)| val.clone());
                    if first.is_some() && found.next().is_some() {
                        v.push(param.pointer.clone(), Reason::Duplicate);
                        continue;
                    }
                    first
                }
                In::Path | In::Query => continue,
            };
            match raw {
                None => {
                    if param.required {
                        v.push(param.pointer.clone(), Reason::Required);
                    }
                }
                Some(raw) => {
                    let value = if param.json_content {
                        match parse::json(raw.as_bytes(), self.options.depth()) {
                            Ok(x) => x,
                            Err(r) => {
                                v.push(param.pointer.clone(), r);
                                continue;
                            }
                        }
                    } else {
                        simple_value(&raw, param)
                    };
                    Self::check(param, &value, v);
                }
            }
        }
    }
}

/// `simple` style (path, header): `a,b,c` for arrays, `k,v` / `k=v` for objects.
fn simple_value(raw: &str, param: &Param) -> Value {
    if param.shape.is_array() {
        if raw.is_empty() {
            Value::Array(Vec::new())
        } else {
            parse::array(raw.split(',').map(str::trim), &param.shape)
        }
    } else if param.shape.is_object() {
        parse::object_from_list(raw, param.explode, &param.shape)
    } else {
        parse::scalar(raw, &param.shape)
    }
}

fn cookie_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for h in headers.get_all(http::header::COOKIE) {
        let Ok(s) = h.to_str() else { continue };
        for part in s.split(';') {
            let part = part.trim();
            if let Some((k, val)) = part.split_once('=') {
                out.push((k.trim().to_owned(), val.trim().to_owned()));
            }
        }
    }
    out
}

fn untyped_path_param(name: &str) -> Param {
    let mut pointer = String::from("/path/");
    push_escaped(&mut pointer, name);
    Param {
        name: Arc::from(name),
        location: In::Path,
        pointer,
        required: true,
        style: Style::Simple,
        explode: false,
        json_content: false,
        shape: Shape {
            types: crate::bundle::ty::STRING,
            ..Shape::default()
        },
        validator: None,
    }
}

impl BodySpec {
    /// The declared media type that fits a request `Content-Type` (most specific first).
    fn select(&self, content_type: &str) -> Option<(&Media, BodyKind)> {
        let mut parts = content_type.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        let (top, _sub) = essence.split_once('/')?;
        let mut best: Option<(u8, &Media)> = None;
        for m in &self.media {
            let score = if m.range == essence {
                3
            } else if m.range.strip_suffix("/*").is_some_and(|t| t == top) {
                2
            } else if m.range == "*/*" {
                1
            } else {
                continue;
            };
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, m));
            }
        }
        let (_, media) = best?;
        let kind = if media.range.ends_with("/*") {
            kind_of(&essence)
        } else {
            media.kind
        };
        if matches!(kind, BodyKind::Json | BodyKind::Form) {
            // Bodies we parse are UTF-8; another charset would be read differently upstream.
            for p in parts {
                if let Some((k, val)) = p.split_once('=')
                    && k.trim().eq_ignore_ascii_case("charset")
                    && !val.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
                {
                    return None;
                }
            }
        }
        Some((media, kind))
    }
}

/// How a body of this media type is read (`type/*` ranges: opaque until a request names one).
fn kind_of(essence: &str) -> BodyKind {
    if essence == "application/json" || essence.ends_with("+json") {
        BodyKind::Json
    } else if essence == "application/x-www-form-urlencoded" {
        BodyKind::Form
    } else if essence.starts_with("text/") && !essence.ends_with("/*") {
        BodyKind::Text
    } else {
        BodyKind::Opaque
    }
}

/// Path prefixes from `servers[*].url` (variables take their defaults).
fn server_paths(root: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(Value::Array(servers)) = root.get("servers") {
        for s in servers {
            let Some(url) = as_str(s, "url") else {
                continue;
            };
            let mut url = url.to_owned();
            if let Some(Value::Object(vars)) = s.get("variables") {
                for (k, var) in vars {
                    if let Some(d) = as_str(var, "default") {
                        url = url.replace(&format!("{{{k}}}"), d);
                    }
                }
            }
            let path = match url.find("://") {
                Some(i) => url[i + 3..]
                    .find('/')
                    .map_or(String::new(), |j| url[i + 3 + j..].to_owned()),
                None => url,
            };
            let path = path
                .split(['?', '#'])
                .next()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_owned();
            let path = if path.is_empty() || path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            };
            if !out.contains(&path) {
                out.push(path);
            }
        }
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.len()));
    out
}

/// Split a template into segments; `{name}` may fill a segment or be part of one.
fn parse_template(template: &str) -> Result<Vec<Seg>, String> {
    let Some(rest) = template.strip_prefix('/') else {
        return Err("path must start with '/'".into());
    };
    let mut segs = Vec::new();
    for raw in rest.split('/') {
        if !raw.contains('{') && !raw.contains('}') {
            segs.push(Seg::Lit(raw.to_owned()));
            continue;
        }
        if let Some(name) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
            && !name.is_empty()
            && !name.contains(['{', '}'])
        {
            segs.push(Seg::Param(Arc::from(name)));
            continue;
        }
        let mut pattern = String::from("^");
        let mut names = Vec::new();
        let mut s = raw;
        while let Some(open) = s.find('{') {
            pattern.push_str(&regex::escape(&s[..open]));
            let after = &s[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(format!("unbalanced braces in {raw:?}"));
            };
            let name = &after[..close];
            if name.is_empty() || name.contains('{') {
                return Err(format!("bad parameter in {raw:?}"));
            }
            names.push(Arc::from(name));
            pattern.push_str("(.+?)");
            s = &after[close + 1..];
        }
        if s.contains('}') {
            return Err(format!("unbalanced braces in {raw:?}"));
        }
        pattern.push_str(&regex::escape(s));
        pattern.push('$');
        let re = regex::Regex::new(&pattern).map_err(|e| e.to_string())?;
        segs.push(Seg::Mixed { re, names });
    }
    Ok(segs)
}

impl Builder<'_> {
    fn finish(self, mut base_paths: Vec<String>) -> CompiledSpec {
        let mut by_len: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, p) in self.paths.iter().enumerate() {
            by_len.entry(p.segs.len()).or_default().push(i);
        }
        if base_paths.is_empty() {
            base_paths.push(String::new());
        }
        CompiledSpec {
            paths: self.paths,
            by_len,
            ops: self.ops,
            base_paths,
            options: self.options.clone(),
            names: self.bundler.names,
        }
    }

    fn add_route(&mut self, template: &Arc<str>, segs: Vec<Seg>, method: Method, op: usize) {
        if let Some(entry) = self.paths.iter_mut().find(|p| &p.template == template) {
            if !entry.methods.iter().any(|(m, _)| *m == method) {
                entry.methods.push((method, op));
                entry.allow = allow_list(&entry.methods);
            }
            return;
        }
        let rank = segs
            .iter()
            .map(|s| match s {
                Seg::Lit(_) => 2,
                Seg::Mixed { .. } => 1,
                Seg::Param(_) => 0,
            })
            .collect();
        let methods = vec![(method, op)];
        let allow = allow_list(&methods);
        self.paths.push(PathEntry {
            template: template.clone(),
            segs,
            rank,
            methods,
            allow,
        });
    }

    fn path_item(&mut self, template: &str, loc: &Loc) -> Result<(), SpecError> {
        let segs = parse_template(template).map_err(|m| self.docs.invalid(loc, m))?;
        let (item_loc, item) = self.docs.deref(loc)?;
        if !item.is_object() {
            return Err(self
                .docs
                .invalid(&item_loc, "a path item must be an object"));
        }
        let common = self.param_list(&item_loc.join("parameters"), item.get("parameters"))?;
        let template: Arc<str> = Arc::from(template);
        let mut segs = Some(segs);
        for (key, method) in METHODS {
            let Some(op) = item.get(key) else { continue };
            let op_loc = item_loc.join(key);
            if !op.is_object() {
                return Err(self.docs.invalid(&op_loc, "an operation must be an object"));
            }
            let own = self.param_list(&op_loc.join("parameters"), op.get("parameters"))?;
            let mut merged: Vec<(Loc, Value)> = Vec::new();
            for (l, p) in common.iter().chain(own.iter()) {
                let key = (as_str(p, "name"), as_str(p, "in"));
                merged.retain(|(_, q)| (as_str(q, "name"), as_str(q, "in")) != key);
                merged.push((l.clone(), p.clone()));
            }
            let mut params = Vec::new();
            for (l, p) in &merged {
                if let Some(param) = self.param(l, p)? {
                    params.push(param);
                }
            }
            // Path parameters the template names but the spec does not declare: plain strings.
            if let Some(s) = &segs {
                for seg in s {
                    let names: Vec<Arc<str>> = match seg {
                        Seg::Param(n) => vec![n.clone()],
                        Seg::Mixed { names, .. } => names.clone(),
                        Seg::Lit(_) => vec![],
                    };
                    for n in names {
                        if !params.iter().any(|p| p.location == In::Path && p.name == n) {
                            params.push(untyped_path_param(&n));
                        }
                    }
                }
            }
            let body = match op.get("requestBody") {
                Some(_) => Some(self.body(&op_loc.join("requestBody"))?),
                None => None,
            };
            let id: Arc<str> = match as_str(op, "operationId") {
                Some(id) => Arc::from(id),
                None => Arc::from(format!("{} {}", method, template)),
            };
            let idx = self.ops.len();
            self.ops.push(Operation {
                id,
                template: template.clone(),
                params,
                body,
                query_unchecked: false,
            });
            let s = match segs.take() {
                Some(s) => s,
                None => parse_template(&template).map_err(|m| self.docs.invalid(loc, m))?,
            };
            self.add_route(&template, s, method, idx);
            segs = None;
        }
        Ok(())
    }

    fn param_list(
        &mut self,
        loc: &Loc,
        node: Option<&Value>,
    ) -> Result<Vec<(Loc, Value)>, SpecError> {
        let Some(node) = node else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = node else {
            return Err(self.docs.invalid(loc, "must be an array"));
        };
        let mut out = Vec::new();
        for i in 0..items.len() {
            out.push(self.docs.deref(&loc.join(&i.to_string()))?);
        }
        Ok(out)
    }

    fn param(&mut self, loc: &Loc, p: &Value) -> Result<Option<Param>, SpecError> {
        let Some(name) = as_str(p, "name") else {
            return Err(self.docs.invalid(loc, "parameter without a name"));
        };
        let location = match as_str(p, "in") {
            Some("path") => In::Path,
            Some("query") => In::Query,
            Some("header") => In::Header,
            Some("cookie") => In::Cookie,
            _ => {
                return Err(self
                    .docs
                    .invalid(loc, "`in` must be path, query, header or cookie"));
            }
        };
        if location == In::Header
            && ["accept", "content-type", "authorization"]
                .contains(&name.to_ascii_lowercase().as_str())
        {
            // OpenAPI: these header parameters are ignored.
            return Ok(None);
        }
        if location == In::Header && http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(self.docs.invalid(loc, "not a valid header name"));
        }
        let required = location == In::Path || p.get("required") == Some(&Value::Bool(true));
        let style = match as_str(p, "style") {
            None => match location {
                In::Path | In::Header => Style::Simple,
                In::Query | In::Cookie => Style::Form,
            },
            Some("simple") => Style::Simple,
            Some("form") => Style::Form,
            Some("spaceDelimited") => Style::SpaceDelimited,
            Some("pipeDelimited") => Style::PipeDelimited,
            Some("deepObject") => Style::DeepObject,
            Some(other) => {
                return Err(self.docs.invalid(
                    &loc.join("style"),
                    format!("style {other:?} is not supported"),
                ));
            }
        };
        let explode = match p.get("explode") {
            Some(Value::Bool(b)) => *b,
            _ => style == Style::Form,
        };
        let (schema_loc, schema, json_content) = if let Some(s) = p.get("schema") {
            (loc.join("schema"), Some(s.clone()), false)
        } else if let Some(Value::Object(content)) = p.get("content") {
            match content.iter().next() {
                Some((mt, media)) => {
                    let json = mt.to_ascii_lowercase().contains("json");
                    (
                        loc.join("content").join(mt).join("schema"),
                        media.get("schema").cloned(),
                        json,
                    )
                }
                None => (loc.clone(), None, false),
            }
        } else {
            (loc.clone(), None, false)
        };
        let (shape, validator) = match schema {
            Some(schema) => {
                let bundled = self.bundler.root(&mut self.docs, &schema_loc, &schema)?;
                let validator = self.bundler.compile(&self.docs, &bundled)?;
                (self.bundler.shape(&bundled.schema), Some(validator))
            }
            None => (
                Shape {
                    types: crate::bundle::ty::STRING,
                    ..Shape::default()
                },
                None,
            ),
        };
        let prefix = match location {
            In::Path => "/path/",
            In::Query => "/query/",
            In::Header => "/header/",
            In::Cookie => "/cookie/",
        };
        let mut pointer = String::from(prefix);
        push_escaped(&mut pointer, name);
        Ok(Some(Param {
            name: Arc::from(name),
            location,
            pointer,
            required,
            style,
            explode,
            json_content,
            shape,
            validator,
        }))
    }

    fn body(&mut self, loc: &Loc) -> Result<BodySpec, SpecError> {
        let (loc, node) = self.docs.deref(loc)?;
        let required = node.get("required") == Some(&Value::Bool(true));
        let Some(Value::Object(content)) = node.get("content") else {
            return Err(self
                .docs
                .invalid(&loc, "requestBody needs a `content` object"));
        };
        let mut media = Vec::new();
        for (range, m) in content {
            let range_lc = range
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !range_lc.contains('/') {
                return Err(self
                    .docs
                    .invalid(&loc.join("content").join(range), "not a media type"));
            }
            let kind = kind_of(&range_lc);
            // Wildcard ranges (`*/*`, `application/*`) pick the parser from the request's type.
            let parsed = kind != BodyKind::Opaque || range_lc.ends_with("/*");
            let (shape, validator) = match m.get("schema") {
                Some(schema) if parsed => {
                    let schema_loc = loc.join("content").join(range).join("schema");
                    let bundled = self.bundler.root(&mut self.docs, &schema_loc, schema)?;
                    let validator = self.bundler.compile(&self.docs, &bundled)?;
                    (self.bundler.shape(&bundled.schema), Some(validator))
                }
                _ => (Shape::default(), None),
            };
            media.push(Media {
                range: range_lc,
                kind,
                shape,
                validator,
            });
        }
        if media.is_empty() {
            return Err(self
                .docs
                .invalid(&loc.join("content"), "declares no media type"));
        }
        Ok(BodySpec { required, media })
    }
}

fn allow_list(methods: &[(Method, usize)]) -> Vec<Method> {
    let mut allow: Vec<Method> = Vec::new();
    for (_, m) in METHODS {
        let declared = methods.iter().any(|(x, _)| *x == m);
        let head_via_get = m == Method::HEAD && methods.iter().any(|(x, _)| *x == Method::GET);
        if declared || head_via_get {
            allow.push(m);
        }
    }
    for (m, _) in methods {
        if !allow.contains(m) {
            allow.push(m.clone());
        }
    }
    allow
}
