//! Variables (rule targets): the name table and how each one reads the transaction.
//!
//! A target is `[!|&]NAME[:key|:/regex/]`. Collections yield one value per member; scalars one
//! value. `&` counts, `!` excludes members from the collection of the same rule.

use std::borrow::Cow;

use regex::bytes::{Regex, RegexBuilder};

use crate::error::CompileError;
use crate::per_thread::PerThread;
use crate::state::{MpFlag, TxData};

/// Every variable the engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::enum_variant_names)] // the SecLang names
pub(crate) enum Var {
    Args,
    ArgsCombinedSize,
    ArgsGet,
    ArgsGetNames,
    ArgsNames,
    ArgsPost,
    ArgsPostNames,
    Duration,
    Env,
    Files,
    FilesCombinedSize,
    FilesNames,
    FilesSizes,
    FullRequestLength,
    HighestSeverity,
    InboundDataError,
    MatchedVar,
    MatchedVarName,
    MatchedVars,
    MatchedVarsNames,
    Mp(MpFlag),
    MultipartFilename,
    MultipartName,
    MultipartPartHeaders,
    OutboundDataError,
    /// Persistent collections (GLOBAL, IP, SESSION, USER, RESOURCE, GEO): accepted, always empty.
    Persistent(&'static str),
    QueryString,
    RemoteAddr,
    RemotePort,
    ReqbodyError,
    ReqbodyErrorMsg,
    ReqbodyProcessor,
    ReqbodyProcessorError,
    RequestBasename,
    RequestBody,
    RequestBodyLength,
    RequestCookies,
    RequestCookiesNames,
    RequestFilename,
    RequestHeaders,
    RequestHeadersNames,
    RequestLine,
    RequestMethod,
    RequestProtocol,
    RequestUri,
    RequestUriRaw,
    ResponseBody,
    ResponseContentLength,
    ResponseContentType,
    ResponseHeaders,
    ResponseHeadersNames,
    ResponseProtocol,
    ResponseStatus,
    Rule,
    ServerAddr,
    ServerName,
    ServerPort,
    StatusLine,
    Tx,
    UniqueId,
    UrlencodedError,
    Xml,
}

/// The name table, sorted; looked up case-insensitively.
pub(crate) const VARIABLES: &[(&str, Var)] = &[
    ("ARGS", Var::Args),
    ("ARGS_COMBINED_SIZE", Var::ArgsCombinedSize),
    ("ARGS_GET", Var::ArgsGet),
    ("ARGS_GET_NAMES", Var::ArgsGetNames),
    ("ARGS_NAMES", Var::ArgsNames),
    ("ARGS_POST", Var::ArgsPost),
    ("ARGS_POST_NAMES", Var::ArgsPostNames),
    ("DURATION", Var::Duration),
    ("ENV", Var::Env),
    ("FILES", Var::Files),
    ("FILES_COMBINED_SIZE", Var::FilesCombinedSize),
    ("FILES_NAMES", Var::FilesNames),
    ("FILES_SIZES", Var::FilesSizes),
    ("FULL_REQUEST_LENGTH", Var::FullRequestLength),
    ("GEO", Var::Persistent("GEO")),
    ("GLOBAL", Var::Persistent("GLOBAL")),
    ("HIGHEST_SEVERITY", Var::HighestSeverity),
    ("INBOUND_DATA_ERROR", Var::InboundDataError),
    ("IP", Var::Persistent("IP")),
    ("MATCHED_VAR", Var::MatchedVar),
    ("MATCHED_VARS", Var::MatchedVars),
    ("MATCHED_VARS_NAMES", Var::MatchedVarsNames),
    ("MATCHED_VAR_NAME", Var::MatchedVarName),
    ("MULTIPART_BOUNDARY_QUOTED", Var::Mp(MpFlag::BoundaryQuoted)),
    (
        "MULTIPART_BOUNDARY_WHITESPACE",
        Var::Mp(MpFlag::BoundaryWhitespace),
    ),
    ("MULTIPART_CRLF_LF_LINES", Var::Mp(MpFlag::CrlfLfLines)),
    ("MULTIPART_DATA_AFTER", Var::Mp(MpFlag::DataAfter)),
    ("MULTIPART_DATA_BEFORE", Var::Mp(MpFlag::DataBefore)),
    ("MULTIPART_FILENAME", Var::MultipartFilename),
    (
        "MULTIPART_FILE_LIMIT_EXCEEDED",
        Var::Mp(MpFlag::FileLimitExceeded),
    ),
    ("MULTIPART_HEADER_FOLDING", Var::Mp(MpFlag::HeaderFolding)),
    (
        "MULTIPART_INVALID_HEADER_FOLDING",
        Var::Mp(MpFlag::InvalidHeaderFolding),
    ),
    ("MULTIPART_INVALID_PART", Var::Mp(MpFlag::InvalidPart)),
    ("MULTIPART_INVALID_QUOTING", Var::Mp(MpFlag::InvalidQuoting)),
    ("MULTIPART_LF_LINE", Var::Mp(MpFlag::LfLine)),
    (
        "MULTIPART_MISSING_SEMICOLON",
        Var::Mp(MpFlag::MissingSemicolon),
    ),
    ("MULTIPART_NAME", Var::MultipartName),
    ("MULTIPART_PART_HEADERS", Var::MultipartPartHeaders),
    ("MULTIPART_STRICT_ERROR", Var::Mp(MpFlag::StrictError)),
    (
        "MULTIPART_UNMATCHED_BOUNDARY",
        Var::Mp(MpFlag::UnmatchedBoundary),
    ),
    ("OUTBOUND_DATA_ERROR", Var::OutboundDataError),
    ("QUERY_STRING", Var::QueryString),
    ("REMOTE_ADDR", Var::RemoteAddr),
    ("REMOTE_PORT", Var::RemotePort),
    ("REQBODY_ERROR", Var::ReqbodyError),
    ("REQBODY_ERROR_MSG", Var::ReqbodyErrorMsg),
    ("REQBODY_PROCESSOR", Var::ReqbodyProcessor),
    ("REQBODY_PROCESSOR_ERROR", Var::ReqbodyProcessorError),
    ("REQBODY_PROCESSOR_ERROR_MSG", Var::ReqbodyErrorMsg),
    ("REQUEST_BASENAME", Var::RequestBasename),
    ("REQUEST_BODY", Var::RequestBody),
    ("REQUEST_BODY_LENGTH", Var::RequestBodyLength),
    ("REQUEST_COOKIES", Var::RequestCookies),
    ("REQUEST_COOKIES_NAMES", Var::RequestCookiesNames),
    ("REQUEST_FILENAME", Var::RequestFilename),
    ("REQUEST_HEADERS", Var::RequestHeaders),
    ("REQUEST_HEADERS_NAMES", Var::RequestHeadersNames),
    ("REQUEST_LINE", Var::RequestLine),
    ("REQUEST_METHOD", Var::RequestMethod),
    ("REQUEST_PROTOCOL", Var::RequestProtocol),
    ("REQUEST_URI", Var::RequestUri),
    ("REQUEST_URI_RAW", Var::RequestUriRaw),
    ("RESOURCE", Var::Persistent("RESOURCE")),
    ("RESPONSE_BODY", Var::ResponseBody),
    ("RESPONSE_CONTENT_LENGTH", Var::ResponseContentLength),
    ("RESPONSE_CONTENT_TYPE", Var::ResponseContentType),
    ("RESPONSE_HEADERS", Var::ResponseHeaders),
    ("RESPONSE_HEADERS_NAMES", Var::ResponseHeadersNames),
    ("RESPONSE_PROTOCOL", Var::ResponseProtocol),
    ("RESPONSE_STATUS", Var::ResponseStatus),
    ("RULE", Var::Rule),
    ("SERVER_ADDR", Var::ServerAddr),
    ("SERVER_NAME", Var::ServerName),
    ("SERVER_PORT", Var::ServerPort),
    ("SESSION", Var::Persistent("SESSION")),
    ("STATUS_LINE", Var::StatusLine),
    ("TX", Var::Tx),
    ("UNIQUE_ID", Var::UniqueId),
    ("URLENCODED_ERROR", Var::UrlencodedError),
    ("USER", Var::Persistent("USER")),
    ("XML", Var::Xml),
];

/// Looks a variable name up (case-insensitive).
pub(crate) fn lookup(name: &str) -> Option<(&'static str, Var)> {
    VARIABLES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(n, v)| (*n, *v))
}

/// Which members of a collection a target selects.
#[derive(Debug, Clone)]
pub(crate) enum Selector {
    All,
    /// Exact key, lowercased (keys compare case-insensitively).
    Key(String),
    Regex(KeyRegex),
}

/// A selector regex (`ARGS:/^id_/`). Most selectors in rule sets are a plain word, perhaps
/// anchored (`/^MSC_/`, `/__utm/`, `/MULTIPART_HEADERS_CONTENT_TYPES_*/`): those are answered by
/// comparing bytes, with exactly the regex's result, since selectors run on every key of a
/// collection for every rule that names them.
#[derive(Debug, Clone)]
pub(crate) struct KeyRegex {
    re: PerThread<Regex>,
    word: Option<Word>,
}

/// A regex that is a word of letters, digits, `_` and `-`, case-insensitive.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    /// Lowercased.
    text: Vec<u8>,
    /// Starts with `^`: at the start of the key or (multi-line, as compiled) after a `\n`.
    anchored: bool,
}

impl Word {
    /// The word a pattern (as written in the rule) stands for, if it is one: a run of word
    /// characters, optionally after `^`, whose last character may carry `*`, `?` (then it is
    /// optional and dropped) or `+` (one occurrence suffices for a match).
    fn parse(pattern: &str) -> Option<Word> {
        let (anchored, rest) = match pattern.strip_prefix('^') {
            Some(r) => (true, r),
            None => (false, pattern),
        };
        let word_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        let bytes = rest.as_bytes();
        let end = bytes
            .iter()
            .position(|&c| !word_char(c))
            .unwrap_or(bytes.len());
        let mut text = bytes[..end].to_ascii_lowercase();
        match &bytes[end..] {
            [] | [b'+'] => {}
            [b'*' | b'?'] => {
                text.pop();
            }
            _ => return None,
        }
        if text.is_empty() {
            return None;
        }
        Some(Word { text, anchored })
    }

    fn is_match(&self, key: &[u8]) -> bool {
        let w = self.text.as_slice();
        let at = |i: usize| {
            key.get(i..i + w.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(w))
        };
        if self.anchored {
            // or after a line break with room for the word
            let Some(room) = key.len().checked_sub(w.len()) else {
                return false;
            };
            // (keys are short and seldom hold a line break: a look for one without branches
            // first, cheaper than a search on a few dozen bytes)
            let line_break = |s: &[u8]| s.iter().fold(false, |seen, &c| seen | (c == b'\n'));
            at(0)
                || line_break(&key[..room])
                    && memchr::memchr_iter(b'\n', &key[..room]).any(|i| at(i + 1))
        } else {
            // candidates start where the word's first byte (either case) occurs
            let (lo, up) = (w[0], w[0].to_ascii_uppercase());
            key.len() >= w.len()
                && memchr::memchr2_iter(lo, up, &key[..=key.len() - w.len()]).any(at)
        }
    }
}

impl KeyRegex {
    /// `pattern` as written between the slashes of the selector.
    pub(crate) fn new(pattern: &str) -> Result<KeyRegex, regex::Error> {
        // ModSecurity v3 compiles selector regexes caseless, DOTALL and MULTILINE
        let re = RegexBuilder::new(&crate::operators::rx::pcre_to_rust(pattern))
            .unicode(false)
            .case_insensitive(true)
            .dot_matches_new_line(true)
            .multi_line(true)
            .build()?;
        Ok(KeyRegex {
            re: PerThread::new(re),
            word: Word::parse(pattern),
        })
    }

    pub(crate) fn is_match(&self, key: &[u8]) -> bool {
        match &self.word {
            Some(w) => w.is_match(key),
            None => self.re.get().is_match(key),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        self.re.get().as_str()
    }
}

impl Selector {
    #[inline]
    pub(crate) fn matches(&self, key: &[u8]) -> bool {
        match self {
            Selector::All => true,
            Selector::Key(k) => k.as_bytes().eq_ignore_ascii_case(key),
            Selector::Regex(r) => r.is_match(key),
        }
    }
    fn same(&self, other: &Selector) -> bool {
        match (self, other) {
            (Selector::All, Selector::All) => true,
            (Selector::Key(a), Selector::Key(b)) => a == b,
            (Selector::Regex(a), Selector::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// One compiled target of a rule.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub name: &'static str,
    pub var: Var,
    pub sel: Selector,
    pub count: bool,
    pub exclude: bool,
}

impl Target {
    /// Whether `self` (an exclusion) names the same thing as `other`.
    pub(crate) fn same_as(&self, other: &Target) -> bool {
        self.var == other.var && self.sel.same(&other.sel)
    }
}

/// Splits a target list on `|`, leaving `|` inside `/regex/` selectors alone.
pub(crate) fn split_targets(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_re = false;
    let mut prev = '\0';
    let chars = s.chars().peekable();
    for c in chars {
        if in_re {
            cur.push(c);
            if c == '/' && prev != '\\' {
                in_re = false;
            }
            prev = if prev == '\\' && c == '\\' { '\0' } else { c };
            continue;
        }
        if c == '|' {
            out.push(std::mem::take(&mut cur));
        } else {
            // `:/regex/` selector; XML takes an XPath there (`XML:/*|XML://@*`)
            if c == '/'
                && prev == ':'
                && !cur
                    .trim_start_matches(['!', '&', ' '])
                    .to_ascii_uppercase()
                    .starts_with("XML:")
            {
                in_re = true;
            }
            cur.push(c);
        }
        prev = c;
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Compiles one target (`!REQUEST_COOKIES:/^_pk_ref/`, `&ARGS`, `TX:foo`, `XML:/*`).
pub(crate) fn compile_target(t: &str) -> Result<Target, CompileError> {
    let mut s = t.trim();
    let mut count = false;
    let mut exclude = false;
    loop {
        if let Some(r) = s.strip_prefix('&') {
            count = true;
            s = r;
        } else if let Some(r) = s.strip_prefix('!') {
            exclude = true;
            s = r;
        } else {
            break;
        }
    }
    let (name, key) = match s.find(':') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    // ModSecurity also accepts `TX.foo` as a target
    let (name, key) = match (key, name.find('.')) {
        (None, Some(i)) => (&name[..i], Some(&name[i + 1..])),
        _ => (name, key),
    };
    let (cname, var) =
        lookup(name).ok_or_else(|| CompileError::new(format!("unknown variable {name:?}")))?;
    let sel = match key {
        None | Some("") => Selector::All,
        Some(k) => {
            let k = k.trim();
            let k = k
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .unwrap_or(k);
            if var == Var::Xml {
                // XPath: `//@*` = every attribute value; anything else = the root's text (`/*`)
                if k == "//@*" {
                    Selector::Key(k.to_owned())
                } else {
                    Selector::All
                }
            } else if k.len() >= 2 && k.starts_with('/') && k.ends_with('/') {
                let re = KeyRegex::new(&k[1..k.len() - 1])
                    .map_err(|e| CompileError::new(format!("bad selector regex in {t:?}: {e}")))?;
                Selector::Regex(re)
            } else {
                Selector::Key(k.to_ascii_lowercase())
            }
        }
    };
    Ok(Target {
        name: cname,
        var,
        sel,
        count,
        exclude,
    })
}

/// One value produced by a target.
#[derive(Debug, Clone)]
pub(crate) struct VarValue<'a> {
    pub coll: &'static str,
    pub key: Cow<'a, [u8]>,
    pub value: Cow<'a, [u8]>,
}

/// Whether values of `v` live in buffers that are written once per transaction (request and
/// response data), so that their address identifies them (transformation cache).
pub(crate) fn is_stable(v: Var) -> bool {
    matches!(
        v,
        Var::Args
            | Var::ArgsGet
            | Var::ArgsPost
            | Var::ArgsNames
            | Var::ArgsGetNames
            | Var::ArgsPostNames
            | Var::RequestHeaders
            | Var::RequestHeadersNames
            | Var::RequestCookies
            | Var::RequestCookiesNames
            | Var::ResponseHeaders
            | Var::ResponseHeadersNames
            | Var::MultipartPartHeaders
            | Var::Files
            | Var::FilesNames
            | Var::MultipartFilename
            | Var::MultipartName
            | Var::Xml
            | Var::QueryString
            | Var::RequestBasename
            | Var::RequestFilename
            | Var::RequestBody
            | Var::RequestLine
            | Var::RequestMethod
            | Var::RequestProtocol
            | Var::RequestUri
            | Var::RequestUriRaw
            | Var::ResponseBody
    )
}

impl VarValue<'_> {
    /// The `MATCHED_VAR_NAME` form (`ARGS:foo`, `REQUEST_URI`) into `out`, cleared first
    /// (its buffer is reused from match to match).
    pub(crate) fn write_full_name(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(self.coll.len() + 1 + self.key.len());
        out.extend_from_slice(self.coll.as_bytes());
        if !self.key.is_empty() {
            out.push(b':');
            out.extend_from_slice(&self.key);
        }
    }
}

fn b(v: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(v)
}
fn num(n: usize) -> Cow<'static, [u8]> {
    Cow::Owned(itoa::Buffer::new().format(n).as_bytes().to_vec())
}
fn flag(v: bool) -> Cow<'static, [u8]> {
    Cow::Borrowed(if v { b"1" } else { b"0" })
}

/// The values of one rule's targets (most rules see a few dozen at most: no allocation).
pub(crate) type Values<'a> = smallvec::SmallVec<[VarValue<'a>; 32]>;

/// Pushes the values of `t` (not an exclusion), minus members named by `excl`.
pub(crate) fn collect<'a>(st: &'a TxData, t: &Target, excl: &[&Target], out: &mut Values<'a>) {
    let start = out.len();
    let name = t.name;
    // (most targets take every key and have no exclusion: one test per key then)
    let excluding = excl.iter().any(|e| e.var == t.var);
    let every = matches!(t.sel, Selector::All) && !excluding;
    let kept = |key: &[u8]| -> bool {
        every
            || t.sel.matches(key)
                && !(excluding && excl.iter().any(|e| e.var == t.var && e.sel.matches(key)))
    };
    let kv = |out: &mut Values<'a>, list: &'a [(Vec<u8>, Vec<u8>)], names: bool| {
        for (k, v) in list {
            if kept(k) {
                out.push(VarValue {
                    coll: name,
                    key: b(k),
                    value: if names { b(k) } else { b(v) },
                });
            }
        }
    };
    let scalar = |out: &mut Values<'a>, v: Cow<'a, [u8]>| {
        if excl
            .iter()
            .any(|e| e.var == t.var && matches!(e.sel, Selector::All))
        {
            return;
        }
        out.push(VarValue {
            coll: name,
            key: Cow::Borrowed(b""),
            value: v,
        });
    };
    match t.var {
        Var::Args => {
            kv(out, &st.args_get, false);
            kv(out, &st.args_post, false);
        }
        Var::ArgsGet => kv(out, &st.args_get, false),
        Var::ArgsPost => kv(out, &st.args_post, false),
        Var::ArgsNames => {
            kv(out, &st.args_get, true);
            kv(out, &st.args_post, true);
        }
        Var::ArgsGetNames => kv(out, &st.args_get, true),
        Var::ArgsPostNames => kv(out, &st.args_post, true),
        Var::ArgsCombinedSize => {
            let n: usize = st
                .args_get
                .iter()
                .chain(&st.args_post)
                .map(|(k, v)| k.len() + v.len())
                .sum();
            scalar(out, num(n));
        }
        Var::RequestHeaders => kv(out, &st.req_headers, false),
        Var::RequestHeadersNames => kv(out, &st.req_headers, true),
        Var::RequestCookies => kv(out, &st.cookies, false),
        Var::RequestCookiesNames => kv(out, &st.cookies, true),
        Var::ResponseHeaders => kv(out, &st.resp_headers, false),
        Var::ResponseHeadersNames => kv(out, &st.resp_headers, true),
        Var::MultipartPartHeaders => kv(out, &st.mp_part_headers, false),
        Var::MatchedVars => kv(out, &st.matched_vars[..st.matched_vars_len], false),
        Var::MatchedVarsNames => kv(out, &st.matched_vars[..st.matched_vars_len], true),
        Var::Files | Var::MultipartFilename => {
            for f in &st.files {
                if kept(&f.name) {
                    out.push(VarValue {
                        coll: name,
                        key: b(&f.name),
                        value: b(&f.filename),
                    });
                }
            }
        }
        Var::FilesNames | Var::MultipartName => {
            for f in &st.files {
                if kept(&f.name) {
                    out.push(VarValue {
                        coll: name,
                        key: b(&f.name),
                        value: b(&f.name),
                    });
                }
            }
        }
        Var::FilesSizes => {
            for f in &st.files {
                if kept(&f.name) {
                    out.push(VarValue {
                        coll: name,
                        key: b(&f.name),
                        value: num(f.size),
                    });
                }
            }
        }
        Var::FilesCombinedSize => scalar(out, num(st.files.iter().map(|f| f.size).sum())),
        Var::Tx => {
            // `TX:name` is a map lookup (keys are stored lowercased, as selectors are)
            if let Selector::Key(k) = &t.sel {
                if let Some((k, v)) = st.tx.get_key_value(k.as_str())
                    && !excl
                        .iter()
                        .any(|e| e.var == t.var && e.sel.matches(k.as_bytes()))
                {
                    out.push(VarValue {
                        coll: name,
                        key: b(k.as_bytes()),
                        value: b(v),
                    });
                }
            } else {
                for (k, v) in &st.tx {
                    if kept(k.as_bytes()) {
                        out.push(VarValue {
                            coll: name,
                            key: b(k.as_bytes()),
                            value: b(v),
                        });
                    }
                }
            }
        }
        Var::Env => {
            for (k, v) in &st.env {
                if kept(k.as_bytes()) {
                    out.push(VarValue {
                        coll: name,
                        key: b(k.as_bytes()),
                        value: b(v),
                    });
                }
            }
        }
        Var::Rule => {
            if kept(b"id") {
                out.push(VarValue {
                    coll: name,
                    key: b(b"id"),
                    value: num(st.rule_id as usize),
                });
            }
        }
        Var::Persistent(_) | Var::Duration => {}
        Var::Xml => match (&t.sel, &st.xml) {
            (Selector::Key(_), Some(_)) => {
                for a in &st.xml_attrs {
                    out.push(VarValue {
                        coll: name,
                        key: Cow::Borrowed(b"//@*"),
                        value: b(a),
                    });
                }
            }
            (_, Some(x)) => out.push(VarValue {
                coll: name,
                key: Cow::Borrowed(b"/*"),
                value: b(x),
            }),
            _ => {}
        },
        Var::Mp(f) => scalar(out, flag(st.mp(f))),
        Var::MatchedVar => scalar(out, b(&st.matched_var)),
        Var::MatchedVarName => scalar(out, b(&st.matched_var_name)),
        Var::HighestSeverity => scalar(out, num(st.highest_severity.map_or(255, usize::from))),
        Var::InboundDataError => scalar(out, flag(st.inbound_data_error)),
        Var::OutboundDataError => scalar(out, flag(st.outbound_data_error)),
        Var::UrlencodedError => scalar(out, flag(st.urlencoded_error)),
        Var::FullRequestLength => {
            let n = st.request_line.len()
                + st.req_headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()
                + st.req_body_len;
            scalar(out, num(n))
        }
        Var::QueryString => scalar(out, b(&st.query_string)),
        Var::RemoteAddr => scalar(out, b(&st.remote_addr)),
        Var::RemotePort => scalar(out, b(&st.remote_port)),
        Var::ServerAddr => scalar(out, b(&st.server_addr)),
        Var::ServerPort => scalar(out, b(&st.server_port)),
        Var::ServerName => scalar(out, b(&st.server_name)),
        Var::UniqueId => scalar(out, b(&st.unique_id)),
        Var::ReqbodyError => scalar(out, flag(st.reqbody_error)),
        Var::ReqbodyProcessorError => scalar(out, flag(st.reqbody_error)),
        Var::ReqbodyErrorMsg => scalar(out, b(&st.reqbody_error_msg)),
        Var::ReqbodyProcessor => {
            if !st.reqbody_processor.is_empty() {
                scalar(out, b(&st.reqbody_processor))
            }
        }
        Var::RequestBasename => scalar(out, b(&st.basename)),
        Var::RequestFilename => scalar(out, b(&st.filename)),
        Var::RequestBody => scalar(out, b(&st.req_body)),
        Var::RequestBodyLength => scalar(out, num(st.req_body_len)),
        Var::RequestLine => scalar(out, b(&st.request_line)),
        Var::RequestMethod => scalar(out, b(&st.method)),
        Var::RequestProtocol => scalar(out, b(&st.protocol)),
        Var::RequestUri => scalar(out, b(&st.uri)),
        Var::RequestUriRaw => scalar(out, b(&st.uri_raw)),
        Var::ResponseBody => scalar(out, b(&st.resp_body)),
        Var::ResponseContentLength => {
            if let Some(v) = st.resp_header("content-length") {
                scalar(out, b(v))
            }
        }
        Var::ResponseContentType => {
            if let Some(v) = st.resp_header("content-type") {
                scalar(out, b(v))
            }
        }
        Var::ResponseProtocol => scalar(out, b(&st.resp_protocol)),
        Var::ResponseStatus => scalar(out, b(&st.resp_status)),
        Var::StatusLine => {
            let mut l = st.resp_protocol.clone();
            l.push(b' ');
            l.extend_from_slice(&st.resp_status);
            scalar(out, Cow::Owned(l))
        }
    }
    if t.count {
        let n = out.len() - start;
        out.truncate(start);
        out.push(VarValue {
            coll: name,
            key: Cow::Owned(Vec::new()),
            value: num(n),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// On any key made of the words' letters, their case variants, `\n` and other bytes,
        /// a word selector answers as its regex.
        #[test]
        fn word_selectors_agree_on_any_key(key in proptest::collection::vec(
            proptest::sample::select(b"aAbBiIdDmMsScC_-xX\n\xff.".to_vec()), 0..24)) {
            for p in ["^MSC_", "__utm", "^id?", "ab+", "ic", "^x-", "_c*"] {
                let k = KeyRegex::new(p).unwrap();
                proptest::prop_assert!(k.word.is_some(), "{p}");
                let plain = Regex::new(&format!("(?i-u)(?sm){}", crate::operators::rx::pcre_to_rust(p))).unwrap();
                proptest::prop_assert_eq!(k.is_match(&key), plain.is_match(&key), "{} on {:?}", p, key);
            }
        }
    }

    /// A word selector answers exactly as its regex does.
    #[test]
    fn word_selectors_agree_with_their_regex() {
        let patterns = [
            "^MSC_",
            "__utm",
            "MULTIPART_HEADERS_CONTENT_TYPES_*",
            "^id?",
            "ab+",
            "^x-y_z",
            // not words: the regex answers
            "^a.b",
            "a|b",
            "x$",
            "^",
        ];
        let keys: &[&[u8]] = &[
            b"",
            b"msc_pcre_limits_exceeded",
            b"MSC_x",
            b"xmsc_",
            b"a\nMsC_",
            b"__UTMz",
            b"_utm",
            b"multipart_headers_content_types",
            b"MULTIPART_HEADERS_CONTENT_TYPE",
            b"i",
            b"id",
            b"xid",
            b"\ni",
            b"abbb",
            b"a",
            b"x-y_z1",
            b"X-Y_Z",
            b"axb",
            b"b",
            b"x\n",
            b"\xff\xfe",
        ];
        for p in patterns {
            let k = KeyRegex::new(p).unwrap();
            let plain = Regex::new(&format!(
                "(?i-u)(?sm){}",
                crate::operators::rx::pcre_to_rust(p)
            ));
            for key in keys {
                let want = plain.as_ref().map(|r| r.is_match(key)).unwrap_or(false);
                assert_eq!(
                    k.is_match(key),
                    want,
                    "{p} on {:?}",
                    String::from_utf8_lossy(key)
                );
            }
        }
        assert!(KeyRegex::new("^MSC_").unwrap().word.is_some());
        assert!(
            KeyRegex::new("MULTIPART_HEADERS_CONTENT_TYPES_*")
                .unwrap()
                .word
                .is_some()
        );
        assert!(KeyRegex::new("a|b").unwrap().word.is_none());
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for w in VARIABLES.windows(2) {
            assert!(w[0].0 < w[1].0, "{} !< {}", w[0].0, w[1].0);
        }
    }

    #[test]
    fn every_variable_compiles_and_collects() {
        let st = TxData::default();
        for (name, _) in VARIABLES {
            for form in [
                name.to_string(),
                format!("&{name}"),
                format!("{}:k", name.to_lowercase()),
                format!("{name}:/^a/"),
            ] {
                let t = compile_target(&form).unwrap_or_else(|e| panic!("{form}: {e}"));
                let mut out = Values::new();
                collect(&st, &t, &[], &mut out);
                if t.count {
                    assert_eq!(out.len(), 1, "{form}");
                }
            }
        }
    }

    #[test]
    fn targets_split_and_compile() {
        let t =
            split_targets("REQUEST_COOKIES|!REQUEST_COOKIES:/__utm|x/|ARGS_NAMES|XML:/*|XML://@*");
        assert_eq!(t.len(), 5);
        assert_eq!(t[4], "XML://@*");
        assert_eq!(t[1], "!REQUEST_COOKIES:/__utm|x/");
        let c = compile_target(&t[1]).unwrap();
        assert!(c.exclude && matches!(c.sel, Selector::Regex(_)));
        assert!(compile_target("&TX:foo").unwrap().count);
        assert!(compile_target("NOPE").is_err());
    }

    #[test]
    fn collect_with_exclusion() {
        let st = TxData {
            args_get: vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"B".to_vec(), b"2".to_vec()),
            ],
            ..Default::default()
        };
        let t = compile_target("ARGS").unwrap();
        let e = compile_target("!ARGS:b").unwrap();
        let mut out = Values::new();
        collect(&st, &t, &[&e], &mut out);
        assert_eq!(out.len(), 1);
        let mut name = b"stale".to_vec();
        out[0].write_full_name(&mut name);
        assert_eq!(name, b"ARGS:a");
        let mut out = Values::new();
        collect(&st, &compile_target("&ARGS").unwrap(), &[], &mut out);
        assert_eq!(&*out[0].value, b"2");
    }
}
