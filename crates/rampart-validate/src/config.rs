//! Route configuration types (`validation = { ... }`) and the load-time options derived from them.

use serde::Deserialize;

/// What the gateway does with a refusal. Applied by the caller: the library always reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Validation does not run.
    Off,
    /// Refusals are logged and counted, the request is forwarded.
    Detect,
    /// Refusals are answered (400/404/405/413/415) and the upstream never sees the request.
    #[default]
    Enforce,
}

/// Whether fields and query parameters that the spec does not declare are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtraFields {
    /// Allowlist: undeclared object fields (`unevaluatedProperties: false` wherever a schema is
    /// silent), undeclared query parameters and `readOnly` fields in request bodies are refused.
    #[default]
    Reject,
    /// Undeclared fields and query parameters pass; declared ones are still checked.
    Allow,
}

/// What happens to a path or method the spec does not describe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownOperations {
    /// 404 for an unknown path, 405 (with `Allow`) for an unknown method.
    #[default]
    Reject,
    /// Forward requests the spec does not describe, unchecked.
    Pass,
}

/// The route key `validation = { mode, extra_fields, unknown_operations, max_depth }`.
///
/// Every key is optional; unknown keys are refused so a typo is a config error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationConfig {
    /// `off` | `detect` | `enforce` (default `enforce`).
    #[serde(default)]
    pub mode: Mode,
    /// `reject` (default) | `allow`.
    #[serde(default)]
    pub extra_fields: ExtraFields,
    /// `reject` (default) | `pass`.
    #[serde(default)]
    pub unknown_operations: UnknownOperations,
    /// Maximum nesting of arrays/objects in a body, checked before schema validation
    /// (default 32, at most 128).
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
}

fn default_max_depth() -> usize {
    DEFAULT_MAX_DEPTH
}

/// Default body nesting limit.
pub const DEFAULT_MAX_DEPTH: usize = 32;
/// Hard cap on the nesting limit (the JSON parser's own recursion limit is 128).
pub const MAX_DEPTH_CAP: usize = 127;
/// Default bound on the body size the validator parses (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            extra_fields: ExtraFields::default(),
            unknown_operations: UnknownOperations::default(),
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Where the spec's paths start in the request path the caller passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BasePath {
    /// The path is matched against the spec's `paths` as given (the caller stripped any prefix).
    #[default]
    None,
    /// Strip the path of the spec's `servers[*].url` (variables take their default); a request
    /// under none of them is an unknown path.
    Servers,
    /// Strip this fixed prefix (e.g. `/api`); a request outside it is an unknown path.
    Fixed(String),
}

/// Options fixed when a spec is compiled ([`crate::CompiledSpec::load`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompileOptions {
    /// Allowlist or not (see [`ExtraFields`]).
    pub extra_fields: ExtraFields,
    /// Maximum nesting depth of a body (clamped to [`MAX_DEPTH_CAP`]).
    pub max_depth: usize,
    /// Bodies larger than this are refused with [`crate::Outcome::BodyTooLarge`] before parsing.
    pub max_body_bytes: usize,
    /// Prefix handling for the request path.
    pub base_path: BasePath,
    /// At most this many violations are reported per request (at least 1).
    pub max_violations: usize,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            extra_fields: ExtraFields::Reject,
            max_depth: DEFAULT_MAX_DEPTH,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            base_path: BasePath::None,
            max_violations: 32,
        }
    }
}

impl CompileOptions {
    /// Options for a route's `validation` table (other knobs at their defaults).
    #[must_use]
    pub fn from_config(config: &ValidationConfig) -> Self {
        Self {
            extra_fields: config.extra_fields,
            max_depth: config.max_depth,
            ..Self::default()
        }
    }

    /// Set the allowlist behaviour.
    #[must_use]
    pub fn with_extra_fields(mut self, extra_fields: ExtraFields) -> Self {
        self.extra_fields = extra_fields;
        self
    }

    /// Set the nesting limit.
    #[must_use]
    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// Set the body size bound (use the route's `max_body_bytes`).
    #[must_use]
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// Set the base path handling.
    #[must_use]
    pub fn with_base_path(mut self, base_path: BasePath) -> Self {
        self.base_path = base_path;
        self
    }

    /// Set the maximum number of violations reported.
    #[must_use]
    pub fn with_max_violations(mut self, max_violations: usize) -> Self {
        self.max_violations = max_violations;
        self
    }

    pub(crate) fn depth(&self) -> usize {
        self.max_depth.clamp(1, MAX_DEPTH_CAP)
    }
}
