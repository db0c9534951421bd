//! Reading spec files (YAML or JSON) and resolving local `$ref`s (same file or relative files).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::error::SpecError;

/// Bound on `$ref` chains (a → b → c …) for non-schema objects.
const MAX_REF_CHAIN: usize = 32;
/// Bound on the number of files one spec may pull in.
const MAX_FILES: usize = 256;

/// One loaded file.
pub(crate) struct Doc {
    /// Path as given (for messages) or a name for in-memory documents.
    pub(crate) path: PathBuf,
    /// Folder relative references resolve against (`None`: in-memory, no file refs).
    dir: Option<PathBuf>,
    pub(crate) value: Arc<Value>,
}

/// Every file of one spec, the root first.
pub(crate) struct Docs {
    files: Vec<Doc>,
    by_path: HashMap<PathBuf, usize>,
}

/// A location in a loaded file: document index and JSON pointer (`""` = whole file).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Loc {
    pub(crate) doc: usize,
    pub(crate) ptr: String,
}

impl Loc {
    pub(crate) fn join(&self, segment: &str) -> Loc {
        let mut ptr = String::with_capacity(self.ptr.len() + segment.len() + 1);
        ptr.push_str(&self.ptr);
        ptr.push('/');
        push_escaped(&mut ptr, segment);
        Loc { doc: self.doc, ptr }
    }
}

/// Append a JSON-pointer-escaped segment.
pub(crate) fn push_escaped(out: &mut String, segment: &str) {
    for c in segment.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

fn parse_text(path: &Path, text: &str) -> Result<Value, SpecError> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(text).map_err(|e| SpecError::Parse {
            file: path.to_path_buf(),
            format: "JSON",
            message: e.to_string(),
        })
    } else {
        let yaml: yaml_serde::Value = yaml_serde::from_str(text).map_err(|e| SpecError::Parse {
            file: path.to_path_buf(),
            format: "YAML",
            message: e.to_string(),
        })?;
        yaml_to_json(yaml, 0).map_err(|message| SpecError::Parse {
            file: path.to_path_buf(),
            format: "YAML",
            message,
        })
    }
}

/// YAML → JSON, turning scalar keys (`200:`) into strings.
fn yaml_to_json(v: yaml_serde::Value, depth: usize) -> Result<Value, String> {
    use yaml_serde::Value as Y;
    if depth > 512 {
        return Err("nesting too deep".into());
    }
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("number {f} is not representable in JSON"))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(
            seq.into_iter()
                .map(|x| yaml_to_json(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_owned(),
                    _ => return Err("mapping keys must be scalars".into()),
                };
                out.insert(key, yaml_to_json(v, depth + 1)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value, depth + 1)?,
    })
}

impl Docs {
    /// No documents yet.
    pub(crate) fn empty() -> Docs {
        Docs {
            files: Vec::new(),
            by_path: HashMap::new(),
        }
    }

    /// Load a file given by the operator (any path), once.
    pub(crate) fn load_file(&mut self, path: &Path) -> Result<usize, SpecError> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(&i) = self.by_path.get(&key) {
            return Ok(i);
        }
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let value = parse_text(path, &text)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let i = self.files.len();
        self.by_path.insert(key, i);
        self.files.push(Doc {
            path: path.to_path_buf(),
            dir: Some(dir),
            value: Arc::new(value),
        });
        Ok(i)
    }

    /// An in-memory root document; `base_dir` enables relative file refs.
    pub(crate) fn from_value(name: &str, value: Value, base_dir: Option<&Path>) -> Docs {
        Docs {
            files: vec![Doc {
                path: PathBuf::from(name),
                dir: base_dir.map(Path::to_path_buf),
                value: Arc::new(value),
            }],
            by_path: HashMap::new(),
        }
    }

    /// Parse text as YAML or JSON (by the name's extension) into a root document.
    pub(crate) fn from_text(
        name: &str,
        text: &str,
        base_dir: Option<&Path>,
    ) -> Result<Docs, SpecError> {
        let value = parse_text(Path::new(name), text)?;
        Ok(Self::from_value(name, value, base_dir))
    }

    pub(crate) fn file(&self, doc: usize) -> &Path {
        &self.files[doc].path
    }

    pub(crate) fn root(&self, doc: usize) -> Arc<Value> {
        Arc::clone(&self.files[doc].value)
    }

    /// Node at a location (`None` if the pointer leads nowhere).
    pub(crate) fn node(&self, loc: &Loc) -> Option<(Arc<Value>, Value)> {
        let root = self.root(loc.doc);
        let node = root.pointer(&loc.ptr)?.clone();
        Some((root, node))
    }

    /// A structural error at `loc`.
    pub(crate) fn invalid(&self, loc: &Loc, message: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            file: self.file(loc.doc).to_path_buf(),
            pointer: format!("#{}", loc.ptr),
            message: message.into(),
        }
    }

    /// Resolve a `$ref` string found at `at` into the location it names (loading files as needed).
    pub(crate) fn resolve(&mut self, at: &Loc, reference: &str) -> Result<Loc, SpecError> {
        let (file_part, fragment) = match reference.split_once('#') {
            Some((f, frag)) => (f, frag),
            None => (reference, ""),
        };
        let ref_err = |docs: &Docs| SpecError::Ref {
            file: docs.file(at.doc).to_path_buf(),
            pointer: format!("#{}", at.ptr),
            reference: reference.to_owned(),
        };
        let lower = file_part.to_ascii_lowercase();
        if lower.contains("://") || lower.starts_with("urn:") || lower.starts_with("//") {
            return Err(SpecError::RemoteRef {
                file: self.file(at.doc).to_path_buf(),
                pointer: format!("#{}", at.ptr),
                reference: reference.to_owned(),
            });
        }
        let ptr = percent_encoding::percent_decode_str(fragment)
            .decode_utf8()
            .map_err(|_| ref_err(self))?
            .into_owned();
        if !(ptr.is_empty() || ptr.starts_with('/')) {
            // Plain-name fragments ($anchor) are not supported.
            return Err(ref_err(self));
        }
        let doc = if file_part.is_empty() {
            at.doc
        } else {
            self.load_relative(at, file_part, reference)?
        };
        let loc = Loc { doc, ptr };
        if self.files[doc].value.pointer(&loc.ptr).is_none() {
            return Err(ref_err(self));
        }
        Ok(loc)
    }

    fn load_relative(
        &mut self,
        at: &Loc,
        file_part: &str,
        reference: &str,
    ) -> Result<usize, SpecError> {
        let rel = percent_encoding::percent_decode_str(file_part)
            .decode_utf8_lossy()
            .into_owned();
        let rel_path = Path::new(&rel);
        let Some(dir) = self.files[at.doc].dir.clone() else {
            return Err(SpecError::Ref {
                file: self.file(at.doc).to_path_buf(),
                pointer: format!("#{}", at.ptr),
                reference: reference.to_owned(),
            });
        };
        if rel_path.is_absolute() {
            return Err(self.invalid(
                at,
                format!("$ref {reference:?}: only relative file references are allowed"),
            ));
        }
        if self.files.len() >= MAX_FILES {
            return Err(self.invalid(at, "too many referenced files"));
        }
        self.load_file(&dir.join(rel_path))
    }

    /// Follow `$ref`s of a non-schema object (parameter, request body, path item) to its target.
    pub(crate) fn deref(&mut self, loc: &Loc) -> Result<(Loc, Value), SpecError> {
        let mut loc = loc.clone();
        for _ in 0..MAX_REF_CHAIN {
            let Some((_, node)) = self.node(&loc) else {
                return Err(self.invalid(&loc, "missing node"));
            };
            match node.get("$ref") {
                Some(Value::String(r)) => {
                    let r = r.clone();
                    loc = self.resolve(&loc, &r)?;
                }
                Some(_) => return Err(self.invalid(&loc, "$ref must be a string")),
                None => return Ok((loc, node)),
            }
        }
        Err(self.invalid(&loc, "$ref chain too long or circular"))
    }
}
