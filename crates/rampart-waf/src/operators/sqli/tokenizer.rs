//! The SQL tokenizer: one token at a time, on demand (folding rarely needs more than a few).
//!
//! A token does not copy its text: it names a range of the input (or, after two words were
//! merged by folding, a slot of the fold's merge buffer). Its length is capped at
//! `VAL_MAX` bytes as libinjection caps its token values; the rules only ever look at that
//! prefix.

use super::data;

/// The longest token value the rules see (libinjection's 32-byte value with its NUL).
pub(super) const VAL_MAX: usize = 31;

/// Token types, named by their fingerprint character.
pub(super) mod ty {
    pub const NONE: u8 = 0;
    pub const KEYWORD: u8 = b'k';
    pub const UNION: u8 = b'U';
    pub const GROUP: u8 = b'B';
    pub const EXPRESSION: u8 = b'E';
    pub const SQLTYPE: u8 = b't';
    pub const FUNCTION: u8 = b'f';
    pub const BAREWORD: u8 = b'n';
    pub const NUMBER: u8 = b'1';
    pub const VARIABLE: u8 = b'v';
    pub const STRING: u8 = b's';
    pub const OPERATOR: u8 = b'o';
    pub const LOGIC_OPERATOR: u8 = b'&';
    pub const COMMENT: u8 = b'c';
    pub const COLLATE: u8 = b'A';
    pub const LEFT_PARENS: u8 = b'(';
    pub const RIGHT_PARENS: u8 = b')';
    pub const LEFT_BRACE: u8 = b'{';
    pub const RIGHT_BRACE: u8 = b'}';
    pub const DOT: u8 = b'.';
    pub const COMMA: u8 = b',';
    pub const COLON: u8 = b':';
    pub const SEMICOLON: u8 = b';';
    pub const TSQL: u8 = b'T';
    pub const UNKNOWN: u8 = b'?';
    pub const EVIL: u8 = b'X';
    pub const BACKSLASH: u8 = b'\\';
}

/// Where a token's value lives.
pub(super) const SRC_INPUT: u8 = u8::MAX;

/// A token: its type, where its value is and how long (at most `VAL_MAX`), and for strings
/// the opening and closing delimiters (0 when absent).
#[derive(Clone, Copy, Debug)]
pub(super) struct Token {
    pub ty: u8,
    pub len: u8,
    pub open: u8,
    pub close: u8,
    /// `SRC_INPUT`: the value is `input[pos..pos + len]`; otherwise the merge slot.
    pub src: u8,
    pub pos: usize,
}

impl Token {
    pub const NONE: Token = Token {
        ty: ty::NONE,
        len: 0,
        open: 0,
        close: 0,
        src: SRC_INPUT,
        pos: 0,
    };

    #[inline]
    fn new(ty: u8, pos: usize, len: usize) -> Token {
        Token {
            ty,
            len: len.min(VAL_MAX) as u8,
            open: 0,
            close: 0,
            src: SRC_INPUT,
            pos,
        }
    }

    #[inline]
    fn string(pos: usize, len: usize, open: u8, close: u8) -> Token {
        Token {
            open,
            close,
            ..Token::new(ty::STRING, pos, len)
        }
    }
}

/// What the tokenizer does at a byte.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Class {
    White,
    Bang,
    Quote,
    Hash,
    Money,
    Op1,
    Op2,
    Char,
    Dash,
    Number,
    Slash,
    Variable,
    Word,
    BString,
    EString,
    NString,
    QString,
    UString,
    XString,
    BracketWord,
    Backslash,
    Tick,
    Other,
}

const fn classes() -> [Class; 256] {
    let mut t = [Class::Word; 256];
    let mut c = 0;
    while c <= 32 {
        t[c] = Class::White;
        c += 1;
    }
    t[127] = Class::White;
    t[0xA0] = Class::White;
    t[b'!' as usize] = Class::Bang;
    t[b'"' as usize] = Class::Quote;
    t[b'\'' as usize] = Class::Quote;
    t[b'#' as usize] = Class::Hash;
    t[b'$' as usize] = Class::Money;
    t[b'%' as usize] = Class::Op1;
    t[b'^' as usize] = Class::Op1;
    t[b'+' as usize] = Class::Op1;
    t[b'~' as usize] = Class::Op1;
    let op2 = b"&*:<=>|";
    let mut i = 0;
    while i < op2.len() {
        t[op2[i] as usize] = Class::Op2;
        i += 1;
    }
    let chars = b"(),;{}";
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] = Class::Char;
        i += 1;
    }
    t[b'-' as usize] = Class::Dash;
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = Class::Number;
        d += 1;
    }
    t[b'.' as usize] = Class::Number;
    t[b'/' as usize] = Class::Slash;
    t[b'?' as usize] = Class::Other;
    t[b']' as usize] = Class::Other;
    t[b'@' as usize] = Class::Variable;
    let prefixed = [
        (b'B', Class::BString),
        (b'E', Class::EString),
        (b'N', Class::NString),
        (b'Q', Class::QString),
        (b'U', Class::UString),
        (b'X', Class::XString),
    ];
    let mut i = 0;
    while i < prefixed.len() {
        let (upper, class) = prefixed[i];
        t[upper as usize] = class;
        t[upper.to_ascii_lowercase() as usize] = class;
        i += 1;
    }
    t[b'[' as usize] = Class::BracketWord;
    t[b'\\' as usize] = Class::Backslash;
    t[b'`' as usize] = Class::Tick;
    t
}

pub(super) static CLASS: [Class; 256] = classes();

/// A set of bytes as a 256-entry table.
const fn byte_set(members: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < members.len() {
        t[members[i] as usize] = true;
        i += 1;
    }
    t
}

const WORD_ENDS: u8 = 1;
const WORD_SPLITS: u8 = 2;

/// Per byte: `WORD_ENDS` if it ends a word, `WORD_SPLITS` if a known word before it ends
/// the word there (`.`, `` ` ``), else 0.
static WORD_BYTE: [u8; 256] = {
    let ends = byte_set(b" []{}<>:\\?=@!#~+-*/&|^%(),';\t\n\x0B\x0C\r\"\xA0\x00");
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        if ends[i] {
            t[i] = WORD_ENDS;
        }
        i += 1;
    }
    t[b'.' as usize] = WORD_SPLITS;
    t[b'`' as usize] = WORD_SPLITS;
    t
};
/// Bytes that end a variable name.
static VAR_END: [bool; 256] = byte_set(b" <>:\\?=@!#~+-*/&|^%(),;'\t\n\x0B\x0C\r`\"");

/// The narrower whitespace of libinjection's `char_is_white` (dash comments, number suffixes).
#[inline]
fn is_white(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | 0xA0 | 0x00)
}

/// Dialect and quote context of one pass over the input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Context {
    /// The quote the input is taken to start inside of (`'`, `"`), or 0.
    pub quote: u8,
    /// MySQL (`#` comments, `--x` two operators) rather than ANSI.
    pub mysql: bool,
}

pub(super) struct Tokenizer<'a> {
    s: &'a [u8],
    pos: usize,
    ctx: Context,
    /// A `--` comment not followed by whitespace was seen, or a `#`: a MySQL reading of the
    /// input may differ.
    pub mysql_hint: bool,
}

impl<'a> Tokenizer<'a> {
    pub fn new(s: &'a [u8], ctx: Context) -> Self {
        Tokenizer {
            s,
            pos: 0,
            ctx,
            mysql_hint: false,
        }
    }

    #[inline]
    fn at(&self, i: usize) -> Option<u8> {
        self.s.get(i).copied()
    }

    /// The next token, or `None` at the end of the input.
    pub fn next_token(&mut self) -> Option<Token> {
        if self.pos == 0 && self.ctx.quote != 0 && !self.s.is_empty() {
            let (tok, next) = self.quoted(0, self.ctx.quote, 0);
            self.pos = next;
            return Some(tok);
        }
        while let Some(&c) = self.s.get(self.pos) {
            let pos = self.pos;
            let (tok, next) = match CLASS[usize::from(c)] {
                Class::White => {
                    self.pos += 1;
                    continue;
                }
                Class::Bang | Class::Op2 => self.operator2(pos),
                Class::Quote => self.quoted(pos, c, 1),
                Class::Hash => self.hash(pos),
                Class::Money => self.money(pos),
                Class::Op1 => (Token::new(ty::OPERATOR, pos, 1), pos + 1),
                Class::Char => (Token::new(c, pos, 1), pos + 1),
                Class::Dash => self.dash(pos),
                Class::Number => self.number(pos),
                Class::Slash => self.slash(pos),
                Class::Variable => self.variable(pos),
                Class::Word => self.word(pos),
                Class::BString => self.bit_or_hex_string(pos, |b| matches!(b, b'0' | b'1')),
                Class::XString => self.bit_or_hex_string(pos, |b| b.is_ascii_hexdigit()),
                Class::EString => self.estring(pos),
                Class::NString => self.nstring(pos),
                Class::QString => self.qstring(pos, pos),
                Class::UString => self.ustring(pos),
                Class::BracketWord => self.bracket_word(pos),
                Class::Backslash => self.backslash(pos),
                Class::Tick => self.tick(pos),
                Class::Other => (Token::new(ty::UNKNOWN, pos, 1), pos + 1),
            };
            // every parser consumes at least one byte
            self.pos = next.max(pos + 1);
            return Some(tok);
        }
        None
    }

    /// A two-character operator (`<=`, `||`, `!=`, or `<=>`), else one character (`:` alone
    /// is a colon).
    fn operator2(&self, pos: usize) -> (Token, usize) {
        let s = self.s;
        let c = s[pos];
        let Some(&c1) = s.get(pos + 1) else {
            return (Token::new(ty::OPERATOR, pos, 1), pos + 1);
        };
        if c == b'<' && c1 == b'=' && self.at(pos + 2) == Some(b'>') {
            return (Token::new(ty::OPERATOR, pos, 3), pos + 3);
        }
        match data::word_type_at(s, pos, 2) {
            ty::BAREWORD => {}
            ty::LOGIC_OPERATOR => return (Token::new(ty::LOGIC_OPERATOR, pos, 2), pos + 2),
            _ => return (Token::new(ty::OPERATOR, pos, 2), pos + 2),
        }
        let t = if c == b':' { ty::COLON } else { ty::OPERATOR };
        (Token::new(t, pos, 1), pos + 1)
    }

    /// `#`: a comment to the end of the line in MySQL, an operator in ANSI SQL.
    fn hash(&mut self, pos: usize) -> (Token, usize) {
        self.mysql_hint = true;
        if self.ctx.mysql {
            self.line_comment(pos)
        } else {
            (Token::new(ty::OPERATOR, pos, 1), pos + 1)
        }
    }

    fn line_comment(&self, pos: usize) -> (Token, usize) {
        let rest = self.s.get(pos..).unwrap_or_default();
        match memchr::memchr(b'\n', rest) {
            Some(i) => (Token::new(ty::COMMENT, pos, i), pos + i + 1),
            None => (Token::new(ty::COMMENT, pos, rest.len()), self.s.len()),
        }
    }

    /// `--` then whitespace or the end: a comment. `--` then anything else: a comment in
    /// ANSI SQL, a minus in MySQL. One `-`: an operator.
    fn dash(&mut self, pos: usize) -> (Token, usize) {
        if self.at(pos + 1) == Some(b'-') {
            match self.at(pos + 2) {
                None => return self.line_comment(pos),
                Some(c) if is_white(c) => return self.line_comment(pos),
                Some(_) => {
                    self.mysql_hint = true;
                    if !self.ctx.mysql {
                        return self.line_comment(pos);
                    }
                }
            }
        }
        (Token::new(ty::OPERATOR, pos, 1), pos + 1)
    }

    /// `/* … */` (evil when nested or a MySQL `/*!` comment), else the `/` operator.
    fn slash(&self, pos: usize) -> (Token, usize) {
        let s = self.s;
        if self.at(pos + 1) != Some(b'*') {
            return (Token::new(ty::OPERATOR, pos, 1), pos + 1);
        }
        let body = s.get(pos + 2..).unwrap_or_default();
        let mut t = ty::COMMENT;
        let len = match find_pair(body, b'*', b'/') {
            Some(close) => {
                // A `/*` inside, looking one byte into the closing `*/` as libinjection does.
                if find_pair(&body[..close + 1], b'/', b'*').is_some() {
                    t = ty::EVIL;
                }
                close + 4
            }
            None => s.len() - pos,
        };
        if self.at(pos + 2) == Some(b'!') {
            t = ty::EVIL;
        }
        (Token::new(t, pos, len), pos + len)
    }

    /// `\N` (MySQL's NULL) is a number; a lone backslash its own type.
    fn backslash(&self, pos: usize) -> (Token, usize) {
        if self.at(pos + 1) == Some(b'N') {
            (Token::new(ty::NUMBER, pos, 2), pos + 2)
        } else {
            (Token::new(ty::BACKSLASH, pos, 1), pos + 1)
        }
    }

    /// A string whose content starts at `pos + offset` and ends at the first `delim` not
    /// escaped by an odd run of backslashes nor doubled; unterminated: to the end.
    /// `offset == 0` is the quote context (no opening delimiter).
    fn quoted(&self, pos: usize, delim: u8, offset: usize) -> (Token, usize) {
        let s = self.s;
        let start = pos + offset;
        let open = if offset == 0 { 0 } else { delim };
        let mut from = start;
        while from < s.len() {
            let Some(i) = memchr::memchr(delim, &s[from..]) else {
                break;
            };
            let q = from + i;
            // backslashes right before the quote (the opening delimiter stops the run)
            let run = s[..q].iter().rev().take_while(|&&b| b == b'\\').count();
            if run % 2 == 1 {
                from = q + 1;
                continue;
            }
            if s.get(q + 1) == Some(&delim) {
                from = q + 2;
                continue;
            }
            return (Token::string(start, q - start, open, delim), q + 1);
        }
        let start = start.min(s.len());
        (Token::string(start, s.len() - start, open, 0), s.len())
    }

    /// `E'…'` (and `N'…'`, which reads as one): a string from the quote, else a word.
    fn estring(&self, pos: usize) -> (Token, usize) {
        if pos + 2 >= self.s.len() || self.s[pos + 1] != b'\'' {
            return self.word(pos);
        }
        self.quoted(pos, b'\'', 2)
    }

    fn nstring(&self, pos: usize) -> (Token, usize) {
        if pos + 2 < self.s.len() && self.s[pos + 1] == b'\'' {
            return self.estring(pos);
        }
        self.qstring(pos, pos + 1)
    }

    /// Oracle's `q'[…]'` at `q` (the `q`; `pos` is where the token's word would start).
    fn qstring(&self, pos: usize, q: usize) -> (Token, usize) {
        let s = self.s;
        if !matches!(self.at(q), Some(b'q' | b'Q')) || q + 2 >= s.len() || s[q + 1] != b'\'' {
            return self.word(pos);
        }
        let open = s[q + 2];
        // libinjection compares a signed char: bytes 0x80-0xFF are below 33 too
        if !(33..0x80).contains(&open) {
            return self.word(pos);
        }
        let close = match open {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            b'<' => b'>',
            c => c,
        };
        let start = q + 3;
        let body = s.get(start..).unwrap_or_default();
        match body.windows(2).position(|w| w[0] == close && w[1] == b'\'') {
            Some(i) => (Token::string(start, i, b'q', b'q'), start + i + 2),
            None => (Token::string(start, body.len(), b'q', 0), s.len()),
        }
    }

    /// `U&'…'`: a string marked `u`, else a word.
    fn ustring(&self, pos: usize) -> (Token, usize) {
        if self.at(pos + 1) == Some(b'&') && self.at(pos + 2) == Some(b'\'') {
            let (mut tok, next) = self.quoted(pos + 2, b'\'', 1);
            tok.open = b'u';
            if tok.close == b'\'' {
                tok.close = b'u';
            }
            return (tok, next);
        }
        self.word(pos)
    }

    /// `B'0101'` and `X'4F'`: numbers when closed and of their digits only, else a word.
    fn bit_or_hex_string(&self, pos: usize, digit: fn(u8) -> bool) -> (Token, usize) {
        let s = self.s;
        if pos + 2 >= s.len() || s[pos + 1] != b'\'' {
            return self.word(pos);
        }
        let end = pos + 2 + s[pos + 2..].iter().take_while(|&&b| digit(b)).count();
        if s.get(end) != Some(&b'\'') {
            return self.word(pos);
        }
        (Token::new(ty::NUMBER, pos, end + 1 - pos), end + 1)
    }

    /// `[name]` (SQL Server), to the `]` or the end.
    fn bracket_word(&self, pos: usize) -> (Token, usize) {
        let rest = &self.s[pos..];
        let len = memchr::memchr(b']', rest).map_or(rest.len(), |i| i + 1);
        (Token::new(ty::BAREWORD, pos, len), pos + len)
    }

    /// A word: up to a delimiter. Its type from the table; a `.` or `` ` `` inside ends it
    /// early when what comes before is a known word (`SELECT.1`).
    fn word(&self, pos: usize) -> (Token, usize) {
        let s = self.s;
        let rest = &s[pos..];
        let mut len = rest.len();
        let mut seen = 0u8;
        for (i, &b) in rest.iter().enumerate() {
            let k = WORD_BYTE[usize::from(b)];
            if k == WORD_ENDS {
                len = i;
                break;
            }
            seen |= k;
        }
        if seen & WORD_SPLITS != 0 {
            for (i, &b) in rest[..len].iter().enumerate().take(data::MAX_WORD + 1) {
                if b == b'.' || b == b'`' {
                    let t = data::word_type_at(s, pos, i);
                    if t != ty::BAREWORD {
                        return (Token::new(t, pos, i), pos + i);
                    }
                }
            }
        }
        (
            Token::new(data::word_type_at(s, pos, len), pos, len),
            pos + len,
        )
    }

    /// `` `name` ``: a bareword, or a function when the (capped) name is one.
    fn tick(&self, pos: usize) -> (Token, usize) {
        let (mut tok, next) = self.quoted(pos, b'`', 1);
        tok.ty = if data::word_type_at(self.s, tok.pos, usize::from(tok.len)) == ty::FUNCTION {
            ty::FUNCTION
        } else {
            ty::BAREWORD
        };
        (tok, next)
    }

    /// `@name`, `@@name`; `@'…'`, `@"…"` and `` @`…` `` take the quoted value.
    fn variable(&self, pos: usize) -> (Token, usize) {
        let s = self.s;
        let name = if self.at(pos + 1) == Some(b'@') {
            pos + 2
        } else {
            pos + 1
        };
        match self.at(name) {
            Some(b'`') => {
                let (mut tok, next) = self.tick(name);
                tok.ty = ty::VARIABLE;
                return (tok, next);
            }
            Some(q @ (b'\'' | b'"')) => {
                let (mut tok, next) = self.quoted(name, q, 1);
                tok.ty = ty::VARIABLE;
                return (tok, next);
            }
            _ => {}
        }
        let rest = s.get(name..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| VAR_END[usize::from(b)])
            .unwrap_or(rest.len());
        let end = name + len;
        (Token::new(ty::VARIABLE, pos, end - pos), end)
    }

    /// `$1,000.00` (a number), `$$…$$` and `$tag$…$tag$` (PostgreSQL strings), else `$`.
    fn money(&self, pos: usize) -> (Token, usize) {
        let s = self.s;
        let Some(&next) = s.get(pos + 1) else {
            return (Token::new(ty::BAREWORD, pos, 1), s.len());
        };
        let digits = s[pos + 1..]
            .iter()
            .take_while(|&&b| b.is_ascii_digit() || b == b'.' || b == b',')
            .count();
        if digits > 0 {
            if digits == 1 && next == b'.' {
                return self.word(pos);
            }
            return (Token::new(ty::NUMBER, pos, 1 + digits), pos + 1 + digits);
        }
        if next == b'$' {
            let start = pos + 2;
            let body = s.get(start..).unwrap_or_default();
            return match body.windows(2).position(|w| w == b"$$") {
                Some(i) => (Token::string(start, i, b'$', b'$'), start + i + 2),
                None => (Token::string(start, body.len(), b'$', 0), s.len()),
            };
        }
        let letters = s[pos + 1..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let tag_end = pos + 1 + letters;
        if letters == 0 || s.get(tag_end) != Some(&b'$') {
            return (Token::new(ty::BAREWORD, pos, 1), pos + 1);
        }
        let tag = &s[pos..=tag_end];
        let start = tag_end + 1;
        let body = s.get(start..).unwrap_or_default();
        match body.windows(tag.len()).position(|w| w == tag) {
            Some(i) => (Token::string(start, i, b'$', b'$'), start + i + tag.len()),
            None => (Token::string(start, body.len(), b'$', 0), s.len()),
        }
    }

    /// Numbers: `0x1F`, `0b101`, `12`, `1.5`, `.5`, `1e-3`, Oracle's `1f`/`1d`; a lone `.`
    /// is a dot; `1e` (no exponent digits) and `0x` are barewords.
    fn number(&self, pos: usize) -> (Token, usize) {
        let s = self.s;
        let n = s.len();
        if s[pos] == b'0' && pos + 1 < n {
            let digit: Option<fn(&u8) -> bool> = match s[pos + 1] {
                b'x' | b'X' => Some(u8::is_ascii_hexdigit),
                b'b' | b'B' => Some(|b| matches!(b, b'0' | b'1')),
                _ => None,
            };
            if let Some(digit) = digit {
                let k = s[pos + 2..].iter().take_while(|b| digit(b)).count();
                let t = if k == 0 { ty::BAREWORD } else { ty::NUMBER };
                return (Token::new(t, pos, 2 + k), pos + 2 + k);
            }
        }
        let digits = |from: usize| {
            s.get(from..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let mut end = pos + digits(pos);
        if s.get(end) == Some(&b'.') {
            end += 1;
            end += digits(end);
            if end - pos == 1 {
                return (Token::new(ty::DOT, pos, 1), end);
            }
        }
        let mut exponent_ok = true;
        if matches!(s.get(end), Some(b'e' | b'E')) {
            end += 1;
            if matches!(s.get(end), Some(b'+' | b'-')) {
                end += 1;
            }
            let k = digits(end);
            end += k;
            exponent_ok = k > 0;
        }
        if matches!(s.get(end), Some(b'd' | b'D' | b'f' | b'F')) {
            match s.get(end + 1) {
                None => end += 1,
                Some(&c) if is_white(c) || c == b';' || c == b'u' || c == b'U' => end += 1,
                Some(_) => {}
            }
        }
        let t = if exponent_ok {
            ty::NUMBER
        } else {
            ty::BAREWORD
        };
        (Token::new(t, pos, end - pos), end)
    }
}

/// Index of the first `a` directly followed by `b`.
#[inline]
fn find_pair(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(a, hay.get(from..)?) {
        let at = from + i;
        if hay.get(at + 1) == Some(&b) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}
