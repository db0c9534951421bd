//! Folding: reduces the token stream to at most five tokens whose types make the
//! fingerprint. Pairs and triples of tokens collapse into one (`1 + 1` is a number,
//! `'a' 'b'` one string, `NOT IN` one operator), tokens are retyped by their neighbours
//! (`user(` is a function, `IN` without `(` a word), and a trailing comment is kept.
//!
//! The control flow follows libinjection's `libinjection_sqli_fold` step for step (the
//! order of the rules matters, two of them fall through to the three-token rules, and
//! several restart from the first token), since the fingerprints must be the same.

use super::data;
use super::tokenizer::{Context, SRC_INPUT, Token, Tokenizer, VAL_MAX, ty};

/// Tokens kept for the fingerprint.
pub(super) const MAX_TOKENS: usize = 5;
/// Slots of the token vector: five, one looked ahead, one spare as in libinjection.
const VEC: usize = MAX_TOKENS + 3;
/// Merge buffer slots: more than the live tokens (at most six), so one is always free.
const MERGE_SLOTS: usize = VEC;

/// The folded tokens of one reading of the input.
pub(super) struct Folded<'a> {
    input: &'a [u8],
    /// The tokens for the fingerprint, `tokens[..count]`.
    pub tokens: [Token; VEC],
    pub count: usize,
    /// Tokens read from the tokenizer (the whitelist tells folded input by it).
    pub stats_tokens: usize,
    /// The tokenizer met `#` or `--x`: a MySQL reading may differ.
    pub mysql_hint: bool,
    /// Values of merged words (`UNION ALL`), which are not a range of the input.
    merged: [[u8; VAL_MAX]; MERGE_SLOTS],
}

impl<'a> Folded<'a> {
    /// The input.
    pub fn input(&self) -> &'a [u8] {
        self.input
    }

    /// A token's value (at most `VAL_MAX` bytes).
    #[inline]
    pub fn val(&self, t: &Token) -> &[u8] {
        let len = usize::from(t.len);
        if t.src == SRC_INPUT {
            self.input.get(t.pos..t.pos + len).unwrap_or_default()
        } else {
            self.merged
                .get(usize::from(t.src))
                .and_then(|m| m.get(..len))
                .unwrap_or_default()
        }
    }

    /// First byte of a token's value, 0 for an empty one.
    #[inline]
    pub fn first(&self, t: &Token) -> u8 {
        self.val(t).first().copied().unwrap_or(0)
    }

    fn is_unary(&self, t: &Token) -> bool {
        t.ty == ty::OPERATOR
            && match self.val(t) {
                [b'+' | b'-' | b'!' | b'~'] | b"!!" => true,
                v => v.eq_ignore_ascii_case(b"NOT"),
            }
    }

    fn is_arithmetic(&self, t: &Token) -> bool {
        t.ty == ty::OPERATOR && matches!(self.val(t), [b'*' | b'/' | b'-' | b'+' | b'%'])
    }

    fn val_is(&self, t: &Token, words: &[&[u8]]) -> bool {
        let v = self.val(t);
        words.iter().any(|w| v.eq_ignore_ascii_case(w))
    }

    /// Merges `tokens[i]` and `tokens[i + 1]` into `tokens[i]` when `A B` is a known word
    /// (`UNION ALL`, `NOT LIKE`, `GROUP BY`); `live` tokens are in use.
    fn merge_words(&mut self, i: usize, live: usize) -> bool {
        const LEFT: &[u8] = b"knoUfETt";
        const RIGHT: &[u8] = b"knoUfETt&";
        let (a, b) = (self.tokens[i], self.tokens[i + 1]);
        if !LEFT.contains(&a.ty) || !RIGHT.contains(&b.ty) {
            return false;
        }
        // (the values are `a.len` and `b.len` bytes long; their own lengths keep the
        // copies below in bounds whatever happens)
        let (va, vb) = (self.val(&a), self.val(&b));
        let (la, lb) = (va.len(), vb.len());
        let len = la + lb + 1;
        if len > VAL_MAX || !data::may_start_phrase(self.first(&a), la) {
            return false;
        }
        let mut buf = [0u8; VAL_MAX + 1];
        buf[..la].copy_from_slice(va);
        buf[la] = b' ';
        buf[la + 1..len].copy_from_slice(vb);
        let t = data::word_type_at(&buf, 0, len);
        if t == ty::BAREWORD {
            return false;
        }
        let used = |slot: usize| {
            self.tokens[..live]
                .iter()
                .any(|t| usize::from(t.src) == slot)
        };
        let Some(slot) = (0..MERGE_SLOTS).find(|&s| !used(s)) else {
            return false;
        };
        self.merged[slot].copy_from_slice(&buf[..VAL_MAX]);
        let a = &mut self.tokens[i];
        a.ty = t;
        a.src = slot as u8;
        a.len = len as u8;
        true
    }
}

/// Reads tokens into `f.tokens[*pos]` until `*pos - left` reaches `want` (or the input ends);
/// comments are not kept there but remembered as the last one.
struct Reader<'a> {
    tk: Tokenizer<'a>,
    more: bool,
    last_comment: Token,
}

impl Reader<'_> {
    fn fill(&mut self, f: &mut Folded, pos: &mut usize, left: usize, want: usize) {
        while self.more && *pos <= MAX_TOKENS && pos.saturating_sub(left) < want {
            match self.tk.next_token() {
                Some(t) => {
                    f.stats_tokens += 1;
                    if t.ty == ty::COMMENT {
                        self.last_comment = t;
                    } else {
                        self.last_comment.ty = ty::NONE;
                        f.tokens[*pos] = t;
                        *pos += 1;
                    }
                }
                None => self.more = false,
            }
        }
    }
}

/// What a two-token rule did.
enum Step {
    /// Start the loop over (tokens were changed or removed).
    Again,
    /// Go on to the three-token rules.
    Three,
    /// `{` followed by an empty word: evil; the tokens end after `left + 2`.
    Evil,
}

pub(super) fn fold(input: &[u8], ctx: Context) -> Folded<'_> {
    let mut f = Folded {
        input,
        tokens: [Token::NONE; VEC],
        count: 0,
        stats_tokens: 0,
        mysql_hint: false,
        merged: [[0; VAL_MAX]; MERGE_SLOTS],
    };
    let mut rd = Reader {
        tk: Tokenizer::new(input, ctx),
        more: true,
        last_comment: Token::NONE,
    };

    // Leading comments, `(`, SQL types and unary operators do not count.
    loop {
        let Some(t) = rd.tk.next_token() else {
            f.mysql_hint = rd.tk.mysql_hint;
            return f;
        };
        f.stats_tokens += 1;
        f.tokens[0] = t;
        if !(matches!(t.ty, ty::COMMENT | ty::LEFT_PARENS | ty::SQLTYPE) || f.is_unary(&t)) {
            break;
        }
    }

    // `pos`: where the next token goes; `left`: tokens before it are final.
    let mut pos = 1usize;
    let mut left = 0usize;
    loop {
        if pos >= MAX_TOKENS && five_token_restart(&f.tokens) {
            if pos > MAX_TOKENS {
                f.tokens[1] = f.tokens[MAX_TOKENS];
                pos = 2;
            } else {
                pos = 1;
            }
            left = 0;
        }
        if !rd.more || left >= MAX_TOKENS {
            left = pos;
            break;
        }

        rd.fill(&mut f, &mut pos, left, 2);
        if pos.saturating_sub(left) < 2 {
            left = pos;
            continue;
        }
        match two_tokens(&mut f, &mut pos, &mut left) {
            Step::Again => continue,
            Step::Evil => {
                f.count = left + 2;
                return f;
            }
            Step::Three => {}
        }

        rd.fill(&mut f, &mut pos, left, 3);
        if pos.saturating_sub(left) < 3 {
            left = pos;
            continue;
        }
        if three_tokens(&mut f, &mut pos, &mut left) {
            continue;
        }
        left += 1;
    }

    // A sixth token may have been read to type the fifth.
    left = left.min(MAX_TOKENS);

    // An unclosed empty backtick word at the end (``…` ``) is PHP's comment trick.
    if left > 2 {
        let t = &mut f.tokens[left - 1];
        if t.ty == ty::BAREWORD && t.open == b'`' && t.len == 0 && t.close == 0 {
            t.ty = ty::COMMENT;
        }
    }

    let mut n = 0;
    for i in 0..left {
        if f.tokens[i].ty != ty::NONE {
            f.tokens[n] = f.tokens[i];
            n += 1;
        }
    }
    if left < MAX_TOKENS && rd.last_comment.ty == ty::COMMENT {
        f.tokens[n] = rd.last_comment;
        n += 1;
        left += 1;
    }
    f.count = n.min(left);
    f.mysql_hint = rd.tk.mysql_hint;
    f
}

/// Five tokens of a shape that goes on (`1,(2)`, `a-(b)`…): folding starts over.
fn five_token_restart(t: &[Token; VEC]) -> bool {
    let k = [t[0].ty, t[1].ty, t[2].ty, t[3].ty, t[4].ty];
    matches!(
        k,
        [
            ty::NUMBER,
            ty::OPERATOR | ty::COMMA,
            ty::LEFT_PARENS,
            ty::NUMBER,
            ty::RIGHT_PARENS
        ] | [
            ty::BAREWORD,
            ty::OPERATOR,
            ty::LEFT_PARENS,
            ty::BAREWORD | ty::NUMBER,
            ty::RIGHT_PARENS
        ] | [
            ty::NUMBER,
            ty::RIGHT_PARENS,
            ty::COMMA,
            ty::LEFT_PARENS,
            ty::NUMBER
        ] | [
            ty::BAREWORD,
            ty::RIGHT_PARENS,
            ty::OPERATOR,
            ty::LEFT_PARENS,
            ty::BAREWORD
        ]
    )
}

/// Words that are functions when `(` follows (common enough as column names otherwise).
const FUNCTION_WORDS: &[&[u8]] = &[
    b"USER_ID",
    b"USER_NAME",
    b"DATABASE",
    b"PASSWORD",
    b"USER",
    b"CURRENT_USER",
    b"CURRENT_DATE",
    b"CURRENT_TIME",
    b"CURRENT_TIMESTAMP",
    b"LOCALTIME",
    b"LOCALTIMESTAMP",
];

/// The rules on `tokens[left]` and `tokens[left + 1]`, first match only.
fn two_tokens(f: &mut Folded, pos: &mut usize, left: &mut usize) -> Step {
    let l = *left;
    let (a, b) = (f.tokens[l], f.tokens[l + 1]);
    let unary_b = f.is_unary(&b);
    if (a.ty == ty::STRING && b.ty == ty::STRING)
        || (a.ty == ty::SEMICOLON && b.ty == ty::SEMICOLON)
    {
        // 'a' 'b' is one string; ;; one semicolon
        *pos -= 1;
    } else if matches!(a.ty, ty::OPERATOR | ty::LOGIC_OPERATOR) && (unary_b || b.ty == ty::SQLTYPE)
    {
        *pos -= 1;
        *left = 0;
    } else if (a.ty == ty::LEFT_PARENS && unary_b) || f.merge_words(l, *pos) {
        // `( -` is `(`; `UNION ALL` one word
        *pos -= 1;
        *left = left.saturating_sub(1);
    } else if a.ty == ty::SEMICOLON
        && b.ty == ty::FUNCTION
        && f.val(&b)
            .get(..2)
            .is_some_and(|v| v.eq_ignore_ascii_case(b"IF"))
    {
        // T-SQL's IF statement
        f.tokens[l + 1].ty = ty::TSQL;
    } else if matches!(a.ty, ty::BAREWORD | ty::VARIABLE)
        && b.ty == ty::LEFT_PARENS
        && f.val_is(&a, FUNCTION_WORDS)
    {
        f.tokens[l].ty = ty::FUNCTION;
    } else if a.ty == ty::KEYWORD && f.val_is(&a, &[b"IN", b"NOT IN"]) {
        f.tokens[l].ty = if b.ty == ty::LEFT_PARENS {
            ty::OPERATOR
        } else {
            ty::BAREWORD
        };
    } else if a.ty == ty::OPERATOR && f.val_is(&a, &[b"LIKE", b"NOT LIKE"]) {
        if b.ty == ty::LEFT_PARENS {
            f.tokens[l].ty = ty::FUNCTION;
        }
        return Step::Three;
    } else if a.ty == ty::SQLTYPE
        && matches!(
            b.ty,
            ty::BAREWORD
                | ty::NUMBER
                | ty::SQLTYPE
                | ty::LEFT_PARENS
                | ty::FUNCTION
                | ty::VARIABLE
                | ty::STRING
        )
    {
        f.tokens[l] = b;
        *pos -= 1;
        *left = 0;
    } else if a.ty == ty::COLLATE && b.ty == ty::BAREWORD {
        // collation names with `_` are types (the value as text: UTF-8 only)
        let v = f.val(&b);
        if v.contains(&b'_') && std::str::from_utf8(v).is_ok() {
            f.tokens[l + 1].ty = ty::SQLTYPE;
            *left = 0;
        }
        return Step::Three;
    } else if a.ty == ty::BACKSLASH {
        if f.is_arithmetic(&b) {
            // T-SQL reads `\%1` as `0 % 1`
            f.tokens[l].ty = ty::NUMBER;
        } else {
            f.tokens[l] = b;
            *pos -= 1;
        }
        *left = 0;
    } else if (a.ty == ty::LEFT_PARENS && b.ty == ty::LEFT_PARENS)
        || (a.ty == ty::RIGHT_PARENS && b.ty == ty::RIGHT_PARENS)
    {
        *pos -= 1;
        *left = 0;
    } else if a.ty == ty::LEFT_BRACE && b.ty == ty::BAREWORD {
        if b.len == 0 {
            // `{ ``` (MySQL's `{``.``.id}`)
            f.tokens[l + 1].ty = ty::EVIL;
            return Step::Evil;
        }
        // ODBC `{foo expr}`: drop `{ foo`
        *left = 0;
        *pos -= 2;
    } else if b.ty == ty::RIGHT_BRACE {
        *pos -= 1;
        *left = 0;
    } else {
        return Step::Three;
    }
    Step::Again
}

/// The rules on `tokens[left..left + 3]`, first match only; whether one applied.
fn three_tokens(f: &mut Folded, pos: &mut usize, left: &mut usize) -> bool {
    let l = *left;
    let (a, b, c) = (f.tokens[l], f.tokens[l + 1], f.tokens[l + 2]);
    let unary_b = f.is_unary(&b);
    let value = |t: u8| matches!(t, ty::BAREWORD | ty::NUMBER | ty::STRING | ty::VARIABLE);
    if (a.ty == ty::NUMBER && b.ty == ty::OPERATOR && c.ty == ty::NUMBER)
        || (a.ty == ty::OPERATOR && b.ty != ty::LEFT_PARENS && c.ty == ty::OPERATOR)
        || (a.ty == ty::LOGIC_OPERATOR && c.ty == ty::LOGIC_OPERATOR)
        || (a.ty == ty::VARIABLE
            && b.ty == ty::OPERATOR
            && matches!(c.ty, ty::VARIABLE | ty::NUMBER | ty::BAREWORD))
        || (matches!(a.ty, ty::BAREWORD | ty::NUMBER)
            && b.ty == ty::OPERATOR
            && matches!(c.ty, ty::NUMBER | ty::BAREWORD))
        || (value(a.ty) && b.ty == ty::OPERATOR && f.val(&b) == b"::" && c.ty == ty::SQLTYPE)
        || (value(a.ty) && b.ty == ty::COMMA && value(c.ty))
        || (a.ty == ty::BAREWORD && b.ty == ty::DOT && c.ty == ty::BAREWORD)
    {
        // `1+1`, `+x-`, `a AND b OR`, `@a=1`, `x=1`, `'a'::text`, `1,2`, `db.table`
        *pos -= 2;
        *left = 0;
    } else if matches!(a.ty, ty::EXPRESSION | ty::GROUP | ty::COMMA)
        && unary_b
        && c.ty == ty::LEFT_PARENS
    {
        // `SELECT - (`: drop the sign
        f.tokens[l + 1] = c;
        *pos -= 1;
        *left = 0;
    } else if matches!(a.ty, ty::KEYWORD | ty::EXPRESSION | ty::GROUP)
        && unary_b
        && (value(c.ty) || c.ty == ty::FUNCTION)
    {
        // `SELECT - 1`
        f.tokens[l + 1] = c;
        *pos -= 1;
        *left = 0;
    } else if a.ty == ty::COMMA && unary_b && value(c.ty) {
        // `, -1` then back up: `1,-1` is `1`
        f.tokens[l + 1] = c;
        *left = 0;
        *pos = pos.saturating_sub(3);
    } else if a.ty == ty::COMMA && unary_b && c.ty == ty::FUNCTION {
        // `1,-sin(1)` is `1,sin(1)`
        f.tokens[l + 1] = c;
        *pos -= 1;
        *left = 0;
    } else if a.ty == ty::EXPRESSION && b.ty == ty::DOT && c.ty == ty::BAREWORD {
        // `SELECT . foo` is `SELECT foo`
        f.tokens[l + 1] = c;
        *pos -= 1;
        *left = 0;
    } else {
        if a.ty == ty::FUNCTION
            && b.ty == ty::LEFT_PARENS
            && c.ty != ty::RIGHT_PARENS
            && f.val_is(&a, &[b"USER"])
        {
            // USER() takes no argument: `user(x)` is not the function
            f.tokens[l].ty = ty::BAREWORD;
        }
        return false;
    }
    true
}
