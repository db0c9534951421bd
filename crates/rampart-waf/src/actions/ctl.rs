//! `ctl:` — per-transaction changes to the engine (rule removal, body processor, engine mode).
use crate::RuleEngineMode;
use crate::error::CompileError;
use crate::variables::{Target, compile_target};

#[derive(Debug, Clone)]
pub(crate) enum Ctl {
    RuleRemoveById(Vec<(u32, u32)>),
    RuleRemoveByTag(String),
    RuleRemoveByMsg(String),
    RuleRemoveTargetById(Vec<(u32, u32)>, Target),
    RuleRemoveTargetByTag(String, Target),
    RuleEngine(RuleEngineMode),
    RequestBodyProcessor(String),
    RequestBodyAccess(bool),
    ResponseBodyAccess(bool),
    /// `REQUEST_BODY` holds the raw body even when the XML processor parsed it (otherwise
    /// only non-XML bodies fill it, as in ModSecurity v3).
    ForceRequestBodyVariable(bool),
    /// Audit-log settings: accepted, no effect on evaluation.
    Ignored,
}

/// Parses `1-999`, `920100`, or space/comma separated lists of both.
pub(crate) fn parse_id_ranges(s: &str) -> Result<Vec<(u32, u32)>, CompileError> {
    let mut out = Vec::new();
    for part in s.split([' ', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        let part = part.trim_matches(['"', '\'']);
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: u32 = a
            .trim()
            .parse()
            .map_err(|_| CompileError::new(format!("bad rule id {part:?}")))?;
        let b: u32 = b
            .trim()
            .parse()
            .map_err(|_| CompileError::new(format!("bad rule id {part:?}")))?;
        out.push((a, b));
    }
    Ok(out)
}

fn on_off(v: &str) -> Result<bool, CompileError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(CompileError::new(format!("expected On or Off, got {v:?}"))),
    }
}

impl Ctl {
    pub(crate) fn compile(arg: &str) -> Result<Ctl, CompileError> {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| CompileError::new(format!("ctl needs name=value: {arg:?}")))?;
        let value = value.trim();
        let target = |v: &str| -> Result<(String, Target), CompileError> {
            let (a, t) = v
                .split_once(';')
                .ok_or_else(|| CompileError::new(format!("expected ID;TARGET, got {v:?}")))?;
            Ok((a.trim().to_string(), compile_target(t)?))
        };
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "ruleremovebyid" => Ctl::RuleRemoveById(parse_id_ranges(value)?),
            "ruleremovebytag" => Ctl::RuleRemoveByTag(value.to_string()),
            "ruleremovebymsg" => Ctl::RuleRemoveByMsg(value.to_string()),
            "ruleremovetargetbyid" => {
                let (ids, t) = target(value)?;
                Ctl::RuleRemoveTargetById(parse_id_ranges(&ids)?, t)
            }
            "ruleremovetargetbytag" => {
                let (tag, t) = target(value)?;
                Ctl::RuleRemoveTargetByTag(tag, t)
            }
            "ruleengine" => Ctl::RuleEngine(RuleEngineMode::parse(value)?),
            "requestbodyprocessor" => Ctl::RequestBodyProcessor(value.to_ascii_uppercase()),
            "requestbodyaccess" => Ctl::RequestBodyAccess(on_off(value)?),
            "responsebodyaccess" => Ctl::ResponseBodyAccess(on_off(value)?),
            "forcerequestbodyvariable" => Ctl::ForceRequestBodyVariable(on_off(value)?),
            "auditengine" | "auditlogparts" | "debugloglevel" | "hashengine"
            | "hashenforcement" => Ctl::Ignored,
            other => return Err(CompileError::new(format!("unknown ctl {other:?}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses() {
        assert!(
            matches!(Ctl::compile("ruleRemoveById=1-999999").unwrap(), Ctl::RuleRemoveById(r) if r == vec![(1, 999_999)])
        );
        assert!(
            matches!(Ctl::compile("ruleRemoveTargetByTag=xss-perf-disable;REQUEST_FILENAME").unwrap(), Ctl::RuleRemoveTargetByTag(t, _) if t == "xss-perf-disable")
        );
        assert!(
            matches!(Ctl::compile("requestBodyProcessor=JSON").unwrap(), Ctl::RequestBodyProcessor(p) if p == "JSON")
        );
        assert!(Ctl::compile("ruleEngine=Maybe").is_err());
        assert!(Ctl::compile("nope=1").is_err());
    }
}

/// Rule exclusions for every transaction of a scope (a gateway route), written as the
/// removal `ctl` actions operators already use in CRS exclusion rules:
/// `ruleRemoveById=942100`, `ruleRemoveById=942100-942199`, `ruleRemoveByTag=attack-sqli`,
/// `ruleRemoveTargetById=942100;ARGS:password`,
/// `ruleRemoveTargetByTag=attack-xss;REQUEST_COOKIES:theme`.
#[derive(Debug, Clone, Default)]
pub struct Exclusions(pub(crate) Vec<Ctl>);

impl Exclusions {
    /// Compiles `items`; the error names the index of the first one that is not a removal
    /// `ctl` or does not compile.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Exclusions, (usize, CompileError)> {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let ctl = Ctl::compile(item.as_ref()).map_err(|e| (i, e))?;
            match ctl {
                Ctl::RuleRemoveById(_)
                | Ctl::RuleRemoveByTag(_)
                | Ctl::RuleRemoveByMsg(_)
                | Ctl::RuleRemoveTargetById(..)
                | Ctl::RuleRemoveTargetByTag(..) => out.push(ctl),
                _ => {
                    return Err((
                        i,
                        CompileError::new(
                            "only ruleRemoveById, ruleRemoveByTag, ruleRemoveByMsg, \
                             ruleRemoveTargetById and ruleRemoveTargetByTag are exclusions",
                        ),
                    ));
                }
            }
        }
        Ok(Exclusions(out))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
