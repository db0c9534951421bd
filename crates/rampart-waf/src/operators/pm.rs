//! `@pm` (space-separated phrases) and `@pmFromFile`/`@pmf` (one phrase a line, files relative
//! to the rule file's directory): case-insensitive phrase match with Aho-Corasick.
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::{Captures, CompileCtx, Operator};
use crate::error::CompileError;
use crate::state::TxData;

#[derive(Debug)]
pub(crate) struct Pm {
    ac: AhoCorasick,
    phrases: Vec<Vec<u8>>,
}

fn build(phrases: Vec<Vec<u8>>) -> Result<Pm, CompileError> {
    if phrases.is_empty() {
        return Err(CompileError::new("no phrases"));
    }
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(&phrases)
        .map_err(|e| CompileError::new(format!("phrase set: {e}")))?;
    Ok(Pm { ac, phrases })
}

impl Operator for Pm {
    fn compile(arg: &str, _ctx: &CompileCtx) -> Result<Self, CompileError> {
        build(
            arg.split_ascii_whitespace()
                .map(|p| p.as_bytes().to_vec())
                .collect(),
        )
    }
    fn phrases(&self) -> Option<&[Vec<u8>]> {
        Some(&self.phrases)
    }
    fn eval(&self, _st: &TxData, value: &[u8], caps: Option<&mut Captures>) -> bool {
        match self.ac.find(value) {
            None => false,
            Some(m) => {
                if let Some(c) = caps {
                    c.clear();
                    c.push(value[m.start()..m.end()].to_vec());
                }
                true
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct PmFromFile(Pm);

impl Operator for PmFromFile {
    fn compile(arg: &str, ctx: &CompileCtx) -> Result<Self, CompileError> {
        let mut phrases = Vec::new();
        for f in arg.split_ascii_whitespace() {
            let path = ctx.dir.join(f);
            let text = std::fs::read(&path)
                .map_err(|e| CompileError::new(format!("cannot read {}: {e}", path.display())))?;
            for line in text.split(|&c| c == b'\n') {
                let line = line.trim_ascii();
                if line.is_empty() || line.starts_with(b"#") {
                    continue;
                }
                phrases.push(line.to_vec());
            }
        }
        Ok(PmFromFile(build(phrases)?))
    }
    fn phrases(&self) -> Option<&[Vec<u8>]> {
        self.0.phrases()
    }
    fn eval(&self, st: &TxData, value: &[u8], caps: Option<&mut Captures>) -> bool {
        self.0.eval(st, value, caps)
    }
}
