//! Validation layer (phase 8, after identity is known, before the proxy): each route's OpenAPI
//! 3.0/3.1 document or per-operation JSON Schemas are compiled once at load into a
//! [`CompiledSpec`], and every request is checked against it, allowlist by default. It never
//! echoes the values it refuses, never fetches anything over the network, and never panics on
//! request input.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bundle;
mod config;
mod error;
mod load;
mod outcome;
mod parse;
mod report;
mod spec;

pub use config::{
    BasePath, CompileOptions, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH, ExtraFields,
    MAX_DEPTH_CAP, Mode, UnknownOperations, ValidationConfig,
};
pub use error::SpecError;
pub use outcome::{Outcome, Reason, RequestParts, Violation};
pub use spec::{CompiledSpec, OperationSchema};
