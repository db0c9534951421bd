//! Entry points for the fuzz targets in `fuzz/`: the body processors, the transformation
//! registry and single operators, without a rule set or a transaction. Not a stable API.

use std::borrow::Cow;
use std::path::Path;

use crate::body::{json, multipart, urlencoded, xml};
use crate::operators::{self, CompileCtx};
use crate::state::{MP_FLAGS, MpFlag, TxData};

/// A name/value pair (argument, cookie, multipart part header), raw bytes.
pub type Pair = (Vec<u8>, Vec<u8>);

/// A transformation: bytes in, bytes out.
pub type Transform = fn(&[u8]) -> Cow<'_, [u8]>;

/// URLENCODED: the pairs and whether an invalid `%` escape was seen (`URLENCODED_ERROR`).
pub fn urlencoded(data: &[u8], separator: u8) -> (Vec<Pair>, bool) {
    urlencoded::parse(data, separator)
}

/// The `Cookie` header.
pub fn cookies(header: &[u8]) -> Vec<Pair> {
    let mut out = Vec::new();
    urlencoded::parse_cookies(header, &mut out);
    out
}

/// JSON: the arguments, or the message for `REQBODY_ERROR_MSG`.
pub fn json(data: &[u8], max_depth: usize) -> Result<Vec<Pair>, String> {
    let mut out = Vec::new();
    json::parse(data, max_depth, &mut out).map_err(|e| e.0)?;
    Ok(out)
}

/// XML: the text of the root element and the attribute values, or the error message.
pub fn xml(data: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    xml::parse(data).map_err(|e| e.0)
}

/// One uploaded file of a multipart body.
#[derive(Debug)]
pub struct MultipartFile {
    pub name: Vec<u8>,
    pub filename: Vec<u8>,
    pub size: usize,
}

/// The parts of a multipart body.
#[derive(Debug)]
pub struct MultipartParts {
    pub args: Vec<Pair>,
    pub files: Vec<MultipartFile>,
    /// `MULTIPART_PART_HEADERS`: (part name, `Name: value`).
    pub part_headers: Vec<Pair>,
}

/// What the multipart processor produced.
#[derive(Debug)]
pub struct Multipart {
    /// The parts, or the message for `REQBODY_ERROR_MSG`.
    pub parsed: Result<MultipartParts, String>,
    /// The strictness flags set while parsing, in ModSecurity's order (`MULTIPART_STRICT_ERROR`
    /// first; the transaction computes that one afterwards).
    pub flags: [bool; MP_FLAGS],
    /// `MULTIPART_FILE_LIMIT_EXCEEDED`.
    pub file_limit_exceeded: bool,
    /// The body ended without the final boundary.
    pub final_boundary_missing: bool,
}

/// MULTIPART: `content_type` is the whole `Content-Type` value (the boundary comes from it).
pub fn multipart(content_type: &[u8], body: &[u8], file_limit: usize) -> Multipart {
    let mut st = TxData::default();
    let parsed = multipart::parse(content_type, body, &mut st, file_limit)
        .map(|p| {
            let files = p
                .files
                .into_iter()
                .map(|f| MultipartFile {
                    name: f.name,
                    filename: f.filename,
                    size: f.size,
                })
                .collect();
            MultipartParts {
                args: p.args,
                files,
                part_headers: p.part_headers,
            }
        })
        .map_err(|e| e.0);
    Multipart {
        parsed,
        flags: st.mp_flags,
        file_limit_exceeded: st.mp(MpFlag::FileLimitExceeded),
        final_boundary_missing: st.mp_final_boundary_missing,
    }
}

/// The transformation registry (`t:name`), in its order.
pub fn transformations() -> impl ExactSizeIterator<Item = (&'static str, Transform)> {
    crate::transforms::TRANSFORMS
        .iter()
        .map(|&(name, f, _)| (name, f))
}

/// Looks a transformation up by name as a rule does (case-insensitive): its registry index.
pub fn transformation_index(name: &str) -> Option<usize> {
    crate::transforms::lookup(name).map(|(i, _)| i)
}

/// `@detectSQLi`'s detector: the fingerprint when it reports an injection, else `None`.
pub fn sqli_fingerprint(value: &[u8]) -> Option<Vec<u8>> {
    operators::sqli::detect(value).map(|fp| fp.as_bytes().to_vec())
}

/// A compiled operator, evaluated against an empty transaction.
pub struct Operator {
    op: operators::CompiledOp,
    st: TxData,
}

impl Operator {
    /// Compiles an operator as written in a `SecRule` (`"@detectSQLi"`, `"!@validateByteRange 1-255"`).
    pub fn compile(spec: &str) -> Result<Self, String> {
        let op = operators::compile(
            spec,
            &CompileCtx {
                dir: Path::new("."),
            },
        )
        .map_err(|e| e.0)?;
        Ok(Self {
            op,
            st: TxData::default(),
        })
    }

    /// Whether the operator matches `value` (negation applied).
    pub fn matches(&self, value: &[u8]) -> bool {
        self.op.op.eval(&self.st, value, None) != self.op.negated
    }
}
