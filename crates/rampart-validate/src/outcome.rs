//! Per-request input ([`RequestParts`]) and decision ([`Outcome`], [`Violation`], [`Reason`]).

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::config::{UnknownOperations, ValidationConfig};

/// The parts of a request the validator looks at. Borrowed: building one costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Raw (percent-encoded) path, without the query. See [`crate::BasePath`] for prefixes.
    pub path: &'a str,
    /// Raw query string without the `?`, if any.
    pub query: Option<&'a str>,
    /// Request headers (`Content-Type`, header and cookie parameters are read from here).
    pub headers: &'a HeaderMap,
    /// The whole body, if the request has one (`Some(b"")` counts as no body).
    pub body: Option<&'a [u8]>,
}

impl<'a> RequestParts<'a> {
    /// Parts of an `http` request head plus its buffered body.
    #[must_use]
    pub fn from_http(parts: &'a http::request::Parts, body: Option<&'a [u8]>) -> Self {
        Self {
            method: &parts.method,
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            body,
        }
    }

    /// The `Content-Type` header when there is exactly one and it is visible ASCII.
    #[must_use]
    pub fn content_type(&self) -> Option<&'a str> {
        let mut all = self.headers.get_all(http::header::CONTENT_TYPE).iter();
        let first = all.next()?;
        if all.next().is_some() {
            return None;
        }
        first.to_str().ok()
    }
}

/// The decision for one request. `Valid` forwards; every other variant is a refusal whose status
/// is [`Outcome::status`] (the caller applies `mode` and `unknown_operations`).
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Outcome {
    /// The request matches an operation and every check passed.
    Valid {
        /// The operation's `operationId`, or `"METHOD /template"` when it has none.
        operation_id: Arc<str>,
        /// The matched path template (`/items/{id}`).
        path_template: Arc<str>,
    },
    /// No path of the spec matches → 404.
    UnknownPath,
    /// The path exists but not with this method → 405 with `Allow`.
    MethodNotAllowed {
        /// Methods the path accepts, for the `Allow` header.
        allow: Vec<Method>,
    },
    /// The body's `Content-Type` is missing or not one the operation declares → 415.
    UnsupportedMediaType {
        /// The operation that was matched.
        operation_id: Arc<str>,
    },
    /// The body is larger than the validator's bound → 413.
    BodyTooLarge {
        /// The bound in bytes.
        limit: usize,
    },
    /// One or more violations → 400 (problem+json listing them).
    Invalid {
        /// The operation that was matched.
        operation_id: Arc<str>,
        /// What is wrong, where; never the offending value.
        violations: Vec<Violation>,
    },
}

impl Outcome {
    /// `true` for [`Outcome::Valid`].
    #[must_use]
    pub fn is_valid(&self) -> bool {
        matches!(self, Outcome::Valid { .. })
    }

    /// The status of a refusal (`None` when valid): 400, 404, 405, 413 or 415.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Outcome::Valid { .. } => None,
            Outcome::UnknownPath => Some(StatusCode::NOT_FOUND),
            Outcome::MethodNotAllowed { .. } => Some(StatusCode::METHOD_NOT_ALLOWED),
            Outcome::UnsupportedMediaType { .. } => Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            Outcome::BodyTooLarge { .. } => Some(StatusCode::PAYLOAD_TOO_LARGE),
            Outcome::Invalid { .. } => Some(StatusCode::BAD_REQUEST),
        }
    }

    /// Whether this outcome refuses the request under the route's config (ignoring `mode`):
    /// unknown paths and methods pass when `unknown_operations = "pass"`.
    #[must_use]
    pub fn is_refused(&self, config: &ValidationConfig) -> bool {
        match self {
            Outcome::Valid { .. } => false,
            Outcome::UnknownPath | Outcome::MethodNotAllowed { .. } => {
                config.unknown_operations == UnknownOperations::Reject
            }
            Outcome::UnsupportedMediaType { .. }
            | Outcome::BodyTooLarge { .. }
            | Outcome::Invalid { .. } => true,
        }
    }

    /// The `Allow` header value of a 405 (`GET, HEAD, POST`).
    #[must_use]
    pub fn allow_header(&self) -> Option<HeaderValue> {
        let Outcome::MethodNotAllowed { allow } = self else {
            return None;
        };
        let joined = allow
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        HeaderValue::from_str(&joined).ok()
    }

    /// The matched operation (`operationId` or `"METHOD /template"`), when one was matched.
    #[must_use]
    pub fn operation_id(&self) -> Option<&str> {
        match self {
            Outcome::Valid { operation_id, .. }
            | Outcome::UnsupportedMediaType { operation_id }
            | Outcome::Invalid { operation_id, .. } => Some(operation_id),
            Outcome::UnknownPath
            | Outcome::MethodNotAllowed { .. }
            | Outcome::BodyTooLarge { .. } => None,
        }
    }

    /// The violations of an [`Outcome::Invalid`] (empty otherwise).
    #[must_use]
    pub fn violations(&self) -> &[Violation] {
        match self {
            Outcome::Invalid { violations, .. } => violations,
            _ => &[],
        }
    }
}

/// One problem: where (a JSON pointer into the request) and why (a short reason).
///
/// The pointer's root is the request part: `/body/items/0/name`, `/query/limit`, `/path/id`,
/// `/header/X-Req`, `/cookie/session`. Names the client chose (undeclared fields) appear only when
/// they are short plain identifiers; anything else shows as `*`. The value is never included.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// JSON pointer of the offending location.
    pub pointer: String,
    /// Why it was refused.
    #[serde(serialize_with = "reason_as_str")]
    pub reason: Reason,
}

fn reason_as_str<S: serde::Serializer>(reason: &Reason, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(reason)
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.reason)
    }
}

/// Why a location was refused. Limits shown come from the spec, never from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// A required field, parameter, header or body is missing.
    Required,
    /// Wrong JSON type (after converting parameters per their schema).
    Type {
        /// Expected type(s), e.g. `integer` or `string or null`.
        expected: String,
    },
    /// String shorter than `minLength`.
    MinLength(u64),
    /// String longer than `maxLength`.
    MaxLength(u64),
    /// String does not match `pattern`.
    Pattern,
    /// String is not a valid `format`.
    Format(String),
    /// Value not in `enum`.
    Enum,
    /// Value differs from `const`.
    Const,
    /// Below `minimum`.
    Minimum(String),
    /// At or below `exclusiveMinimum`.
    ExclusiveMinimum(String),
    /// Above `maximum`.
    Maximum(String),
    /// At or above `exclusiveMaximum`.
    ExclusiveMaximum(String),
    /// Not a multiple of `multipleOf`.
    MultipleOf(String),
    /// Fewer items than `minItems`.
    MinItems(u64),
    /// More items than `maxItems`.
    MaxItems(u64),
    /// Duplicate items where `uniqueItems` is set.
    UniqueItems,
    /// Fewer properties than `minProperties`.
    MinProperties(u64),
    /// More properties than `maxProperties`.
    MaxProperties(u64),
    /// A field the schema does not declare (allowlist), or a `readOnly` field in a request.
    AdditionalField,
    /// Array items beyond those the schema declares.
    AdditionalItems,
    /// A schema says `false` or `not` here.
    NotAllowed,
    /// None of `anyOf`/`oneOf` matches.
    NoMatch,
    /// More than one branch of `oneOf` matches.
    AmbiguousMatch,
    /// An array lacks an item matching `contains`.
    Contains,
    /// A property name fails `propertyNames`.
    PropertyName,
    /// A query parameter the operation does not declare.
    UnknownParameter,
    /// A parameter or form field given more than once where one value is expected.
    Duplicate,
    /// Nesting deeper than the configured limit.
    MaxDepth(usize),
    /// The body is not well-formed JSON.
    MalformedJson,
    /// A JSON object has the same key twice (parsers disagree on which wins).
    DuplicateKey,
    /// Percent-encoding or UTF-8 is invalid.
    Encoding,
    /// The operation declares no body but one was sent.
    BodyNotAllowed,
    /// Another schema keyword failed.
    Other(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Required => f.write_str("required"),
            Reason::Type { expected } => write!(f, "type: expected {expected}"),
            Reason::MinLength(n) => write!(f, "minLength: {n}"),
            Reason::MaxLength(n) => write!(f, "maxLength: {n}"),
            Reason::Pattern => f.write_str("pattern: does not match"),
            Reason::Format(name) => write!(f, "format: not a valid {name}"),
            Reason::Enum => f.write_str("enum: not an allowed value"),
            Reason::Const => f.write_str("const: not the allowed value"),
            Reason::Minimum(n) => write!(f, "minimum: {n}"),
            Reason::ExclusiveMinimum(n) => write!(f, "exclusiveMinimum: {n}"),
            Reason::Maximum(n) => write!(f, "maximum: {n}"),
            Reason::ExclusiveMaximum(n) => write!(f, "exclusiveMaximum: {n}"),
            Reason::MultipleOf(n) => write!(f, "multipleOf: {n}"),
            Reason::MinItems(n) => write!(f, "minItems: {n}"),
            Reason::MaxItems(n) => write!(f, "maxItems: {n}"),
            Reason::UniqueItems => f.write_str("uniqueItems: duplicate items"),
            Reason::MinProperties(n) => write!(f, "minProperties: {n}"),
            Reason::MaxProperties(n) => write!(f, "maxProperties: {n}"),
            Reason::AdditionalField => f.write_str("additional field not allowed"),
            Reason::AdditionalItems => f.write_str("additional items not allowed"),
            Reason::NotAllowed => f.write_str("not allowed"),
            Reason::NoMatch => f.write_str("matches none of the allowed schemas"),
            Reason::AmbiguousMatch => f.write_str("matches more than one oneOf schema"),
            Reason::Contains => f.write_str("contains: no matching item"),
            Reason::PropertyName => f.write_str("propertyNames: invalid field name"),
            Reason::UnknownParameter => f.write_str("unknown parameter"),
            Reason::Duplicate => f.write_str("given more than once"),
            Reason::MaxDepth(n) => write!(f, "max depth {n} exceeded"),
            Reason::MalformedJson => f.write_str("malformed JSON"),
            Reason::DuplicateKey => f.write_str("duplicate key"),
            Reason::Encoding => f.write_str("invalid encoding"),
            Reason::BodyNotAllowed => f.write_str("body not allowed"),
            Reason::Other(keyword) => write!(f, "{keyword}"),
        }
    }
}
