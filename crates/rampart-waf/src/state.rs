//! Per-transaction data that variables read and actions write.

use std::collections::HashMap;
use std::sync::Arc;

/// The TX collection's map: keys may come from the request (`tx.%{tx.0}`), so the hash is
/// seeded per process; foldhash is several times faster than SipHash on short keys. Names and
/// values are shared: a transaction starts from a copy of the engine's map (see
/// [`crate::preamble`]) that copies no bytes, and a value it changes is replaced
/// ([`set_tx_value`]).
pub(crate) type TxMap = HashMap<Arc<str>, Arc<[u8]>, foldhash::fast::RandomState>;

/// Puts `value` into a `TX` slot: in place when the slot is this map's own and has the
/// length, else as a new value.
pub(crate) fn set_tx_value(slot: &mut Arc<[u8]>, value: &[u8]) {
    match Arc::get_mut(slot) {
        Some(own) if own.len() == value.len() => own.copy_from_slice(value),
        _ => *slot = Arc::from(value),
    }
}

/// A key/value pair of a collection (argument, header, cookie …), raw bytes.
pub(crate) type Kv = (Vec<u8>, Vec<u8>);

/// One uploaded file of a multipart body.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileInfo {
    pub name: Vec<u8>,
    pub filename: Vec<u8>,
    pub size: usize,
}

/// The multipart strictness flags, in the order ModSecurity reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MpFlag {
    StrictError,
    UnmatchedBoundary,
    BoundaryQuoted,
    BoundaryWhitespace,
    DataBefore,
    DataAfter,
    HeaderFolding,
    LfLine,
    CrlfLfLines,
    MissingSemicolon,
    InvalidQuoting,
    InvalidPart,
    InvalidHeaderFolding,
    FileLimitExceeded,
}
pub(crate) const MP_FLAGS: usize = 14;

/// Everything a rule can read about the transaction.
#[derive(Debug, Default)]
pub(crate) struct TxData {
    pub unique_id: Vec<u8>,
    pub remote_addr: Vec<u8>,
    pub remote_port: Vec<u8>,
    pub server_addr: Vec<u8>,
    pub server_port: Vec<u8>,
    pub server_name: Vec<u8>,
    pub method: Vec<u8>,
    pub uri_raw: Vec<u8>,
    pub uri: Vec<u8>,
    pub filename: Vec<u8>,
    pub basename: Vec<u8>,
    pub query_string: Vec<u8>,
    pub protocol: Vec<u8>,
    pub request_line: Vec<u8>,
    pub req_headers: Vec<Kv>,
    pub cookies: Vec<Kv>,
    pub args_get: Vec<Kv>,
    pub args_post: Vec<Kv>,
    pub req_body: Vec<u8>,
    pub req_body_len: usize,
    pub reqbody_processor: Vec<u8>,
    pub reqbody_error: bool,
    pub reqbody_error_msg: Vec<u8>,
    pub files: Vec<FileInfo>,
    pub mp_part_headers: Vec<Kv>,
    pub mp_flags: [bool; MP_FLAGS],
    /// The multipart parser stopped at a missing final boundary (strict flag not computed).
    pub mp_final_boundary_missing: bool,
    pub xml: Option<Vec<u8>>,
    pub xml_attrs: Vec<Vec<u8>>,
    pub urlencoded_error: bool,
    pub inbound_data_error: bool,
    pub outbound_data_error: bool,
    pub tx: TxMap,
    /// Which of `TX:0` … `TX:9` may be in `tx` (bit n for `TX:n`): every insertion of such a
    /// key sets its bit ([`TxData::tx_insert`]), so `capture` clears only those.
    pub tx_digits: u16,
    pub matched_var: Vec<u8>,
    pub matched_var_name: Vec<u8>,
    /// `MATCHED_VARS`: the first `matched_vars_len` entries (the buffers past them are kept
    /// for the next matches, not freed).
    pub matched_vars: Vec<Kv>,
    pub matched_vars_len: usize,
    /// Which settled rule's outcome (its [`crate::preamble::Matched`]'s id) set the
    /// `MATCHED_VAR*` above, 0 when anything else did: the same outcome again copies nothing.
    pub matched_from: u32,
    pub resp_status: Vec<u8>,
    pub resp_protocol: Vec<u8>,
    pub resp_headers: Vec<Kv>,
    pub resp_body: Vec<u8>,
    pub highest_severity: Option<u8>,
    pub rule_id: u32,
    pub env: HashMap<String, Vec<u8>>,
}

impl TxData {
    pub(crate) fn mp(&self, f: MpFlag) -> bool {
        self.mp_flags[f as usize]
    }
    pub(crate) fn set_mp(&mut self, f: MpFlag) {
        self.mp_flags[f as usize] = true;
    }
    pub(crate) fn resp_header(&self, name: &str) -> Option<&[u8]> {
        self.resp_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
    /// Inserts a TX variable (the key lowercased), noting the keys `TX:0` … `TX:9`.
    pub(crate) fn tx_insert(&mut self, key: &str, value: &[u8]) {
        self.tx_insert_shared(key, Arc::from(value));
    }
    /// [`Self::tx_insert`] of a value already shared.
    pub(crate) fn tx_insert_shared(&mut self, key: &str, value: Arc<[u8]>) {
        self.tx_digits |= digit_bit(key);
        self.tx.insert(Arc::from(key), value);
    }
    pub(crate) fn tx_get(&self, key: &str) -> Option<&[u8]> {
        self.tx
            .get(key.to_ascii_lowercase().as_str())
            .map(|v| &v[..])
    }
    pub(crate) fn tx_int(&self, key: &str) -> i64 {
        self.tx_get(key).map(parse_int).unwrap_or(0)
    }
}

/// Bit n when `key` is the single digit n (`TX:n`, where `capture` puts group n), else 0.
pub(crate) fn digit_bit(key: &str) -> u16 {
    match key.as_bytes() {
        [d @ b'0'..=b'9'] => 1 << (d - b'0'),
        _ => 0,
    }
}

/// Parses a leading integer like `atoi` (ModSecurity semantics: junk gives 0).
pub(crate) fn parse_int(v: &[u8]) -> i64 {
    let s = v.trim_ascii();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg { -n } else { n }
}
