//! A compiled rule (`SecRule` / `SecAction`) and its chain.

use crate::actions::{ctl::Ctl, setvar::SetVar};
use crate::macros::Macro;
use crate::operators::CompiledOp;
use crate::transforms::Transform;
use crate::variables::Target;

/// What a rule does when it matches (ModSecurity disruptive actions + `pass`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Action {
    #[default]
    Pass,
    Deny,
    Drop,
    Allow(AllowScope),
    Redirect(String),
}

/// `allow` (rest of the transaction), `allow:phase`, `allow:request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllowScope {
    All,
    Phase,
    Request,
}

/// A compiled rule. Chained rules hang off `chain`.
#[derive(Debug, Default)]
pub(crate) struct Rule {
    pub id: u32,
    pub phase: u8,
    pub file: std::sync::Arc<str>,
    pub line: usize,
    pub targets: Vec<Target>,
    pub excludes: Vec<Target>,
    /// `None` for `SecAction` (matches once, unconditionally).
    pub op: Option<CompiledOp>,
    pub transforms: Vec<(usize, Transform)>,
    /// Interned id of `transforms` (0 = none): the transformation cache key.
    pub tchain: u32,
    pub multi_match: bool,
    pub capture: bool,
    pub msg: Option<Macro>,
    pub msg_raw: String,
    pub logdata: Option<Macro>,
    pub severity: Option<u8>,
    pub tags: Vec<String>,
    /// `tags` as ids interned by the engine (`WafEngine::tag_ids`): what exclusions compare.
    pub tag_ids: Vec<u32>,
    pub ver: Option<String>,
    pub rev: Option<String>,
    pub maturity: Option<u8>,
    pub accuracy: Option<u8>,
    pub log: Option<bool>,
    pub auditlog: Option<bool>,
    pub action: Option<Action>,
    pub block: bool,
    pub status: Option<u16>,
    pub is_chained: bool,
    pub chain: Option<Box<Rule>>,
    pub skip_after: Option<String>,
    pub skip: u32,
    pub setvars: Vec<SetVar>,
    pub ctls: Vec<Ctl>,
    pub has_phase: bool,
    /// (prefilter group, pattern index) when a [`crate::prefilter::Prefilter`] answers this
    /// rule's operator for all its values at once (set on chain heads only; transactions
    /// read the copy in the phase plan, `PlanRule::prefilter`).
    pub prefilter: Option<(u32, u32)>,
}

impl Rule {
    /// The last rule of the chain starting here.
    pub(crate) fn chain_tail_mut(&mut self) -> &mut Rule {
        match self.chain {
            Some(ref mut c) => c.chain_tail_mut(),
            None => self,
        }
    }
}
