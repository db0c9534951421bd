//! Collecting violations: jsonschema errors become (pointer, reason) pairs that never carry the
//! request's values, and client-chosen names only when they are plain short identifiers.

use std::collections::HashSet;

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;

use crate::load::push_escaped;
use crate::outcome::{Reason, Violation};

/// Violations of one request, bounded.
pub(crate) struct Violations<'a> {
    pub(crate) list: Vec<Violation>,
    max: usize,
    names: &'a HashSet<String>,
}

/// A name the client chose is shown only if it is a plain identifier (or one the spec declares).
fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl<'a> Violations<'a> {
    pub(crate) fn new(max: usize, names: &'a HashSet<String>) -> Self {
        Self {
            list: Vec::new(),
            max: max.max(1),
            names,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.list.len() >= self.max
    }

    pub(crate) fn push(&mut self, pointer: String, reason: Reason) {
        if !self.is_full() {
            self.list.push(Violation { pointer, reason });
        }
    }

    /// Append `/name` to `out`, or `/*` when the name is not safe to echo.
    pub(crate) fn push_name(&self, out: &mut String, name: &str) {
        out.push('/');
        if self.names.contains(name) || is_plain(name) {
            push_escaped(out, name);
        } else {
            out.push('*');
        }
    }

    /// A pointer `prefix/name` for a client-chosen name.
    pub(crate) fn pointer(&self, prefix: &str, name: &str) -> String {
        let mut p = prefix.to_owned();
        self.push_name(&mut p, name);
        p
    }

    /// Record the errors of a failed schema check of the value at `prefix`.
    pub(crate) fn schema_errors<'i>(
        &mut self,
        prefix: &str,
        errors: impl Iterator<Item = ValidationError<'i>>,
    ) {
        let mut found: Vec<(String, Reason, bool)> = Vec::new();
        let mut branch_points: Vec<String> = Vec::new();
        for err in errors {
            if found.len() >= self.max.saturating_mul(4) {
                break;
            }
            let mut base = prefix.to_owned();
            for seg in err.instance_path().segments() {
                match seg {
                    LocationSegment::Property(name) => self.push_name(&mut base, &name),
                    LocationSegment::Index(i) => {
                        base.push('/');
                        base.push_str(&i.to_string());
                    }
                }
            }
            match err.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected }
                | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                    for name in unexpected {
                        let p = self.pointer(&base, name);
                        found.push((p, Reason::AdditionalField, true));
                    }
                }
                ValidationErrorKind::Required { property } => {
                    let mut p = base;
                    p.push('/');
                    push_escaped(&mut p, property.as_str().unwrap_or("*"));
                    found.push((p, Reason::Required, false));
                }
                kind => {
                    let reason = reason_of(kind);
                    if matches!(reason, Reason::NoMatch | Reason::AmbiguousMatch) {
                        branch_points.push(base.clone());
                    }
                    found.push((base, reason, false));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        // Where no anyOf/oneOf branch matched, no field counts as evaluated: the resulting
        // "additional field" reports for the fields of that object are noise.
        for (pointer, reason, unevaluated) in found {
            if unevaluated
                && branch_points.iter().any(|b| {
                    pointer
                        .rsplit_once('/')
                        .is_some_and(|(parent, _)| parent == b)
                })
            {
                continue;
            }
            if !self
                .list
                .iter()
                .any(|v| v.pointer == pointer && v.reason == reason)
            {
                self.push(pointer, reason);
            }
        }
    }
}

fn limit(v: &serde_json::Value) -> String {
    v.to_string()
}

fn reason_of(kind: &ValidationErrorKind) -> Reason {
    use ValidationErrorKind as K;
    match kind {
        K::Type { kind } => Reason::Type {
            expected: match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            },
        },
        K::MinLength { limit } => Reason::MinLength(*limit),
        K::MaxLength { limit } => Reason::MaxLength(*limit),
        K::Pattern { .. } | K::BacktrackLimitExceeded { .. } | K::RegexEngineFailure { .. } => {
            Reason::Pattern
        }
        K::Format { format } => Reason::Format(format.clone()),
        K::Enum { .. } => Reason::Enum,
        K::Constant { .. } => Reason::Const,
        K::Minimum { limit: l } => Reason::Minimum(limit(l)),
        K::Maximum { limit: l } => Reason::Maximum(limit(l)),
        K::ExclusiveMinimum { limit: l } => Reason::ExclusiveMinimum(limit(l)),
        K::ExclusiveMaximum { limit: l } => Reason::ExclusiveMaximum(limit(l)),
        K::MultipleOf { multiple_of } => Reason::MultipleOf(multiple_of.to_string()),
        K::MinItems { limit } => Reason::MinItems(*limit),
        K::MaxItems { limit } => Reason::MaxItems(*limit),
        K::UniqueItems => Reason::UniqueItems,
        K::MinProperties { limit } => Reason::MinProperties(*limit),
        K::MaxProperties { limit } => Reason::MaxProperties(*limit),
        K::AdditionalProperties { .. } | K::UnevaluatedProperties { .. } => Reason::AdditionalField,
        K::AdditionalItems { .. } | K::UnevaluatedItems { .. } => Reason::AdditionalItems,
        K::FalseSchema | K::Not { .. } => Reason::NotAllowed,
        K::AnyOf { .. } | K::OneOfNotValid { .. } => Reason::NoMatch,
        K::OneOfMultipleValid { .. } => Reason::AmbiguousMatch,
        K::Contains => Reason::Contains,
        K::PropertyNames { .. } => Reason::PropertyName,
        K::Required { .. } => Reason::Required,
        other => Reason::Other(other.keyword().to_owned()),
    }
}
