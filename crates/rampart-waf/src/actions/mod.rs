//! Actions (`"id:1,phase:2,deny,…"`): each entry compiles into fields of a [`Rule`]; the
//! transaction runs them (`setvar`, `ctl`, flow and disruptive actions) when the rule matches.
//!
//! The registry table is sorted and looked up case-insensitively. `setvar` and `ctl` have their
//! own files; the rest only record metadata and are trivial.

pub(crate) mod ctl;
pub(crate) mod setvar;

use crate::error::CompileError;
use crate::macros::Macro;
use crate::rule::{Action, AllowScope, Rule};
use crate::transforms;

type Apply = fn(&mut Rule, &str) -> Result<(), CompileError>;

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, CompileError> {
    v.trim()
        .parse()
        .map_err(|_| CompileError::new(format!("{name}: bad number {v:?}")))
}

fn severity(v: &str) -> Result<u8, CompileError> {
    const NAMES: [&str; 8] = [
        "EMERGENCY",
        "ALERT",
        "CRITICAL",
        "ERROR",
        "WARNING",
        "NOTICE",
        "INFO",
        "DEBUG",
    ];
    let v = v.trim();
    if let Ok(n) = v.parse::<u8>()
        && n < 8
    {
        return Ok(n);
    }
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(v))
        .map(|p| p as u8)
        .ok_or_else(|| CompileError::new(format!("bad severity {v:?}")))
}

fn phase(v: &str) -> Result<u8, CompileError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "request" => Ok(2),
        "response" => Ok(4),
        "logging" => Ok(5),
        n => match n.parse::<u8>() {
            Ok(p @ 1..=5) => Ok(p),
            _ => Err(CompileError::new(format!("bad phase {v:?}"))),
        },
    }
}

fn noop(_: &mut Rule, _: &str) -> Result<(), CompileError> {
    Ok(())
}

/// The registry.
pub(crate) const ACTIONS: &[(&str, Apply)] = &[
    ("accuracy", |r, v| {
        r.accuracy = v.trim().parse().ok();
        Ok(())
    }),
    ("allow", |r, v| {
        r.action = Some(Action::Allow(
            match v.trim().to_ascii_lowercase().as_str() {
                "" => AllowScope::All,
                "phase" => AllowScope::Phase,
                "request" => AllowScope::Request,
                o => return Err(CompileError::new(format!("bad allow scope {o:?}"))),
            },
        ));
        Ok(())
    }),
    ("append", noop),
    ("auditlog", |r, _| {
        r.auditlog = Some(true);
        Ok(())
    }),
    ("block", |r, _| {
        r.block = true;
        Ok(())
    }),
    ("capture", |r, _| {
        r.capture = true;
        Ok(())
    }),
    ("chain", |r, _| {
        r.is_chained = true;
        Ok(())
    }),
    ("ctl", |r, v| {
        r.ctls.push(ctl::Ctl::compile(v)?);
        Ok(())
    }),
    ("deny", |r, _| {
        r.action = Some(Action::Deny);
        Ok(())
    }),
    ("deprecatevar", noop),
    ("drop", |r, _| {
        r.action = Some(Action::Drop);
        Ok(())
    }),
    ("exec", noop),
    ("expirevar", noop),
    ("id", |r, v| {
        r.id = num("id", v)?;
        if r.id == 0 {
            return Err(CompileError::new("id must not be 0"));
        }
        Ok(())
    }),
    ("initcol", noop),
    ("log", |r, _| {
        r.log = Some(true);
        Ok(())
    }),
    ("logdata", |r, v| {
        r.logdata = Some(Macro::parse(v));
        Ok(())
    }),
    ("maturity", |r, v| {
        r.maturity = v.trim().parse().ok();
        Ok(())
    }),
    ("msg", |r, v| {
        r.msg = Some(Macro::parse(v));
        r.msg_raw = v.to_string();
        Ok(())
    }),
    ("multiMatch", |r, _| {
        r.multi_match = true;
        Ok(())
    }),
    ("noauditlog", |r, _| {
        r.auditlog = Some(false);
        Ok(())
    }),
    ("nolog", |r, _| {
        r.log = Some(false);
        Ok(())
    }),
    ("pass", |r, _| {
        r.action = Some(Action::Pass);
        Ok(())
    }),
    ("phase", |r, v| {
        r.phase = phase(v)?;
        r.has_phase = true;
        Ok(())
    }),
    ("prepend", noop),
    ("redirect", |r, v| {
        r.action = Some(Action::Redirect(v.trim().to_string()));
        Ok(())
    }),
    ("rev", |r, v| {
        r.rev = Some(v.to_string());
        Ok(())
    }),
    ("sanitiseArg", noop),
    ("sanitiseMatched", noop),
    ("sanitiseMatchedBytes", noop),
    ("sanitiseRequestHeader", noop),
    ("sanitiseResponseHeader", noop),
    ("setenv", noop),
    ("setrsc", noop),
    ("setsid", noop),
    ("setuid", noop),
    ("setvar", |r, v| {
        r.setvars.push(setvar::SetVar::compile(v)?);
        Ok(())
    }),
    ("severity", |r, v| {
        r.severity = Some(severity(v)?);
        Ok(())
    }),
    ("skip", |r, v| {
        r.skip = num("skip", v)?;
        Ok(())
    }),
    ("skipAfter", |r, v| {
        r.skip_after = Some(v.trim().to_string());
        Ok(())
    }),
    ("status", |r, v| {
        r.status = Some(num("status", v)?);
        Ok(())
    }),
    ("t", |r, v| {
        if v.trim().eq_ignore_ascii_case("none") {
            r.transforms.clear();
            return Ok(());
        }
        let t = transforms::lookup(v.trim())
            .ok_or_else(|| CompileError::new(format!("unknown transformation {:?}", v.trim())))?;
        r.transforms.push(t);
        Ok(())
    }),
    ("tag", |r, v| {
        r.tags.push(v.to_string());
        Ok(())
    }),
    ("ver", |r, v| {
        r.ver = Some(v.to_string());
        Ok(())
    }),
    ("xmlns", noop),
];

/// Applies one action to a rule being compiled.
pub(crate) fn apply(rule: &mut Rule, name: &str, value: Option<&str>) -> Result<(), CompileError> {
    let (_, f) = ACTIONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .ok_or_else(|| CompileError::new(format!("unknown action {name:?}")))?;
    f(rule, value.unwrap_or(""))
}

/// Splits an action list into `(name, value)` pairs: commas inside `'…'` are kept, `\'` is a
/// quote, and the surrounding quotes of a value are removed.
pub(crate) fn split(s: &str) -> Result<Vec<(String, Option<String>)>, CompileError> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && b[i] != b':' && b[i] != b',' {
            i += 1;
        }
        let name = s[start..i].trim().to_string();
        if i < b.len() && b[i] == b':' {
            i += 1;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            let mut val = Vec::new();
            if i < b.len() && b[i] == b'\'' {
                i += 1;
                let mut closed = false;
                while i < b.len() {
                    if b[i] == b'\\' && b.get(i + 1) == Some(&b'\'') {
                        val.push(b'\'');
                        i += 2;
                    } else if b[i] == b'\'' {
                        i += 1;
                        closed = true;
                        break;
                    } else {
                        val.push(b[i]);
                        i += 1;
                    }
                }
                if !closed {
                    return Err(CompileError::new(format!(
                        "unterminated quote in action {name:?}"
                    )));
                }
                // anything up to the next comma is ignored
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
            } else {
                let vs = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                val.extend_from_slice(s[vs..i].trim_end().as_bytes());
            }
            out.push((name, Some(String::from_utf8_lossy(&val).into_owned())));
        } else {
            out.push((name, None));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_sorted() {
        for w in ACTIONS.windows(2) {
            assert!(
                w[0].0.to_lowercase() < w[1].0.to_lowercase(),
                "{} not sorted",
                w[1].0
            );
        }
    }

    #[test]
    fn every_action_applies() {
        let values: &[(&str, &str)] = &[
            ("accuracy", "8"),
            ("allow", "phase"),
            ("ctl", "ruleRemoveById=1"),
            ("id", "7"),
            ("logdata", "%{MATCHED_VAR}"),
            ("maturity", "9"),
            ("msg", "m"),
            ("phase", "3"),
            ("redirect", "https://example.com/"),
            ("rev", "1"),
            ("setvar", "tx.a=1"),
            ("severity", "WARNING"),
            ("skip", "1"),
            ("skipAfter", "END"),
            ("status", "403"),
            ("t", "lowercase"),
            ("tag", "x"),
            ("ver", "v"),
        ];
        for (name, _) in ACTIONS {
            let v = values.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
            let mut r = Rule::default();
            apply(&mut r, &name.to_uppercase(), v).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn splits_quoted_values() {
        let a = split("id:1, phase:2,msg:'a, b \\'c\\'',t:none,  setvar:'tx.x=+%{tx.y}',nolog")
            .unwrap();
        assert_eq!(a[0], ("id".into(), Some("1".into())));
        assert_eq!(a[2], ("msg".into(), Some("a, b 'c'".into())));
        assert_eq!(a[4], ("setvar".into(), Some("tx.x=+%{tx.y}".into())));
        assert_eq!(a[5], ("nolog".into(), None));
        assert!(split("msg:'oops").is_err());
    }

    #[test]
    fn applies() {
        let mut r = Rule::default();
        for (n, v) in split("id:5,phase:request,severity:CRITICAL,t:lowercase,t:none,t:urlDecodeUni,deny,status:403").unwrap() {
            apply(&mut r, &n, v.as_deref()).unwrap();
        }
        assert_eq!(
            (r.id, r.phase, r.severity, r.transforms.len(), r.status),
            (5, 2, Some(2), 1, Some(403))
        );
        assert!(apply(&mut r, "bogus", None).is_err());
        assert!(apply(&mut r, "t", Some("bogus")).is_err());
        assert!(apply(&mut r, "phase", Some("9")).is_err());
    }
}
