//! Load-time errors: a broken spec is a config error naming the file and the place inside it.

use std::path::PathBuf;

/// Why a spec could not be compiled. Caused by the operator (a config error for
/// `check-config` and hot reload, which keeps the last good spec); never raised per request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// File that failed.
        file: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML or JSON.
    #[error("{file}: not valid {format}: {message}")]
    Parse {
        /// File that failed.
        file: PathBuf,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// Parser message (with line and column).
        message: String,
    },
    /// The document is not an OpenAPI 3.0/3.1 document.
    #[error("{file}: unsupported document: {message}")]
    Version {
        /// File that failed.
        file: PathBuf,
        /// What was found.
        message: String,
    },
    /// Something in the document is malformed or unsupported.
    #[error("{file}: {pointer}: {message}")]
    Invalid {
        /// File holding the faulty node.
        file: PathBuf,
        /// JSON pointer (`#/paths/~1items/get/parameters/0`) of the faulty node.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// A `$ref` points nowhere (missing file or pointer).
    #[error("{file}: {pointer}: unresolvable $ref {reference:?}")]
    Ref {
        /// File holding the `$ref`.
        file: PathBuf,
        /// JSON pointer of the `$ref`.
        pointer: String,
        /// The reference as written.
        reference: String,
    },
    /// A `$ref` names a URL: specs are never fetched over the network.
    #[error("{file}: {pointer}: remote $ref not allowed: {reference:?}")]
    RemoteRef {
        /// File holding the `$ref`.
        file: PathBuf,
        /// JSON pointer of the `$ref`.
        pointer: String,
        /// The reference as written.
        reference: String,
    },
    /// A schema does not compile (meta-schema violation, pattern the linear-time engine refuses).
    #[error("{file}: {pointer}: schema does not compile: {message}")]
    Schema {
        /// File holding the schema.
        file: PathBuf,
        /// JSON pointer of the schema (or of the faulty keyword when known).
        pointer: String,
        /// The compiler's message.
        message: String,
    },
}
