//! `@ipMatch 10.0.0.0/8,::1`: the value is an IP address inside one of the networks.
use std::net::IpAddr;

use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct IpMatch {
    nets: Vec<(IpAddr, u8)>,
}

fn bits(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    }
}

impl Operator for IpMatch {
    fn compile(arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        let mut nets = Vec::new();
        for part in arg
            .split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (a, len) = match part.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (part, None),
            };
            let ip: IpAddr = a
                .parse()
                .map_err(|_| CompileError::new(format!("bad address {part:?}")))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(l) => l
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| CompileError::new(format!("bad prefix {part:?}")))?,
                None => max,
            };
            nets.push((ip, len));
        }
        Ok(Self { nets })
    }
    fn eval(&self, _st: &TxData, v: &[u8], _caps: Option<&mut Captures>) -> bool {
        let Some(ip) = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
        else {
            return false;
        };
        self.nets.iter().any(|(net, len)| {
            if net.is_ipv4() != ip.is_ipv4() {
                return false;
            }
            let width = if ip.is_ipv4() { 32 } else { 128 };
            let shift = width - u32::from(*len);
            shift >= 128 || (bits(net) >> shift) == (bits(&ip) >> shift)
        })
    }
}

/// `@ipMatchFromFile` / `@ipMatchF`: networks one a line (`#` comments), relative to the rule file.
#[derive(Debug)]
pub(crate) struct IpMatchFromFile(IpMatch);

impl Operator for IpMatchFromFile {
    fn compile(arg: &str, ctx: &CompileCtx) -> Result<Self, CompileError> {
        let path = ctx.dir.join(arg.trim());
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CompileError::new(format!("cannot read {}: {e}", path.display())))?;
        let list: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        Ok(Self(IpMatch::compile(&list.join(","), ctx)?))
    }
    fn eval(&self, st: &TxData, v: &[u8], caps: Option<&mut Captures>) -> bool {
        self.0.eval(st, v, caps)
    }
}
