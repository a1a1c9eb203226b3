//! The PromQL lexer: turns query text into tokens with byte positions, following the states of
//! Prometheus' lexer (statements, inside braces, inside a range or subquery bracket) so that the same
//! text yields the same tokens and the same lexical errors (`unclosed left parenthesis`, `unexpected
//! character inside braces: '!'`, …).
//!
//! Owns token kinds, their descriptions in error messages (`identifier "foo"`, `<op:+>`,
//! `<aggr:sum>`, `<by>`, `end of input`) and escape validation of quoted strings. It does not own
//! grammar (`parse`), literal values (`literals`) or series notation (promqltest has its own).

use super::literals::{quote, quote_rune, quote_truncated, unicode_point};
use crate::ast::AggregateOp;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Eof,
    /// A lexical error; the lexer stops after it.
    Error,
    Identifier,
    /// An identifier containing `:` (recording-rule style names).
    MetricIdentifier,
    Number,
    Duration,
    String,
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    LeftBracket,
    RightBracket,
    Comma,
    /// `=` (only meaningful inside braces).
    Eql,
    Colon,
    // Operators.
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eqlc,
    Neq,
    Lte,
    Lss,
    Gte,
    Gtr,
    TrimUpper,
    TrimLower,
    EqlRegex,
    NeqRegex,
    At,
    Atan2,
    Land,
    Lor,
    Lunless,
    // Aggregation operators.
    Aggregator(AggregateOp),
    // Keywords.
    Bool,
    By,
    GroupLeft,
    GroupRight,
    Fill,
    FillLeft,
    FillRight,
    Ignoring,
    Offset,
    Smoothed,
    Anchored,
    On,
    Without,
    // Words with a meaning only in particular places (`@ start()`, `[step() * 2]`).
    Start,
    End,
    Step,
    Range,
    MaxOf,
    MinOf,
}

impl Kind {
    fn is_operator(self) -> bool {
        use Kind::*;
        matches!(
            self,
            Add | Sub
                | Mul
                | Div
                | Mod
                | Pow
                | Eqlc
                | Neq
                | Lte
                | Lss
                | Gte
                | Gtr
                | TrimUpper
                | TrimLower
                | EqlRegex
                | NeqRegex
                | At
                | Atan2
                | Land
                | Lor
                | Lunless
        )
    }

    fn is_keyword(self) -> bool {
        use Kind::*;
        matches!(
            self,
            Bool | By
                | GroupLeft
                | GroupRight
                | Fill
                | FillLeft
                | FillRight
                | Ignoring
                | Offset
                | Smoothed
                | Anchored
                | On
                | Without
        )
    }
}

/// A token: its kind and where it is in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// The tokens of an input, ending with [`Kind::Eof`] or [`Kind::Error`].
pub(crate) struct Tokens {
    pub tokens: Vec<Token>,
    /// The message of the final [`Kind::Error`] token, if the input has a lexical error.
    pub error: Option<String>,
}

/// How Prometheus names a token in `unexpected …` messages.
pub(crate) fn describe(input: &str, t: &Token) -> String {
    let val = &input[t.start..t.end];
    match t.kind {
        Kind::Eof => "end of input".into(),
        Kind::Error => val.into(),
        Kind::Identifier => format!("identifier {}", quote(val)),
        Kind::MetricIdentifier => format!("metric identifier {}", quote(val)),
        Kind::Number => format!("number {}", short(val)),
        Kind::Duration => format!("duration {}", short(val)),
        Kind::String => format!("string {}", short(val)),
        Kind::Aggregator(_) => format!("<aggr:{val}>"),
        k if k.is_operator() => format!("<op:{val}>"),
        k if k.is_keyword() => format!("<{val}>"),
        _ => short(val),
    }
}

/// Go's rendering of an item value: quoted, cut to 10 characters with `...` when longer.
fn short(val: &str) -> String {
    if val.chars().count() > 10 {
        format!("{}...", quote_truncated(val, 10))
    } else {
        quote(val)
    }
}

/// Splits `input` into tokens.
pub(crate) fn lex(input: &str) -> Tokens {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        paren_depth: 0,
        brace_open: false,
        bracket_open: false,
        got_colon: false,
        got_duration: false,
        in_duration_expr: false,
        tokens: Vec::new(),
        error: None,
    };
    l.run();
    Tokens {
        tokens: l.tokens,
        error: l.error,
    }
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    /// Start of the token being scanned.
    start: usize,
    paren_depth: i32,
    brace_open: bool,
    bracket_open: bool,
    got_colon: bool,
    got_duration: bool,
    /// Prometheus' `lexDurationExpr` state: right after `[`, `(` or `:` inside a bracket.
    in_duration_expr: bool,
    tokens: Vec<Token>,
    error: Option<String>,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_alnum(c: char) -> bool {
    is_alpha(c) || c.is_ascii_digit()
}

/// The word's meaning outside braces, as Prometheus' keyword table has it (case-insensitive).
fn keyword(word: &str) -> Option<Kind> {
    let lower = word.to_ascii_lowercase();
    if let Some(op) = AggregateOp::from_keyword(&lower) {
        return Some(Kind::Aggregator(op));
    }
    Some(match lower.as_str() {
        "and" => Kind::Land,
        "or" => Kind::Lor,
        "unless" => Kind::Lunless,
        "atan2" => Kind::Atan2,
        "offset" => Kind::Offset,
        "smoothed" => Kind::Smoothed,
        "anchored" => Kind::Anchored,
        "by" => Kind::By,
        "without" => Kind::Without,
        "on" => Kind::On,
        "ignoring" => Kind::Ignoring,
        "group_left" => Kind::GroupLeft,
        "group_right" => Kind::GroupRight,
        "fill" => Kind::Fill,
        "fill_left" => Kind::FillLeft,
        "fill_right" => Kind::FillRight,
        "bool" => Kind::Bool,
        "start" => Kind::Start,
        "end" => Kind::End,
        "step" => Kind::Step,
        "range" => Kind::Range,
        "max_of" => Kind::MaxOf,
        "min_of" => Kind::MinOf,
        "inf" | "nan" => Kind::Number,
        _ => return None,
    })
}

fn duration_keyword(word: &str) -> Option<Kind> {
    Some(match word.to_ascii_lowercase().as_str() {
        "step" => Kind::Step,
        "range" => Kind::Range,
        "max_of" => Kind::MaxOf,
        "min_of" => Kind::MinOf,
        _ => return None,
    })
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn is(&self, valid: &str) -> bool {
        self.peek().is_some_and(|c| valid.contains(c))
    }

    fn emit(&mut self, kind: Kind) {
        self.tokens.push(Token {
            kind,
            start: self.start,
            end: self.pos,
        });
        self.start = self.pos;
    }

    fn fail(&mut self, msg: String) {
        self.tokens.push(Token {
            kind: Kind::Error,
            start: self.start,
            end: self.input.len(),
        });
        self.error = Some(msg);
    }

    /// Prometheus' lexer reports some errors right after emitting a token, which the error item then
    /// replaces; the error sits at the position after that token.
    fn fail_replacing(&mut self, msg: &str) {
        self.tokens.pop();
        self.fail(msg.into());
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.next();
        }
        self.start = self.pos;
    }

    fn run(&mut self) {
        loop {
            let ok = if self.brace_open {
                self.inside_braces()
            } else if self.in_duration_expr {
                self.duration_expr()
            } else {
                self.statements()
            };
            if !ok {
                return;
            }
        }
    }

    /// One step of Prometheus' `lexStatements`. Returns false when lexing is over.
    fn statements(&mut self) -> bool {
        if self.input[self.pos..].starts_with('#') {
            self.line_comment();
            return true;
        }
        let Some(c) = self.next() else {
            if self.paren_depth != 0 {
                self.fail("unclosed left parenthesis".into());
            } else if self.bracket_open {
                self.fail("unclosed left bracket".into());
            } else {
                self.emit(Kind::Eof);
            }
            return false;
        };
        match c {
            ',' => self.emit(Kind::Comma),
            c if is_space(c) => self.skip_spaces(),
            '*' => self.emit(Kind::Mul),
            '/' => self.emit(Kind::Div),
            '%' => self.emit(Kind::Mod),
            '+' => self.emit(Kind::Add),
            '-' => self.emit(Kind::Sub),
            '^' => self.emit(Kind::Pow),
            '=' => match self.peek() {
                Some('=') => {
                    self.next();
                    self.emit(Kind::Eqlc);
                }
                Some('~') => {
                    self.fail("unexpected character after '=': '~'".into());
                    return false;
                }
                _ => self.emit(Kind::Eql),
            },
            '!' => match self.next() {
                Some('=') => self.emit(Kind::Neq),
                other => {
                    self.fail(format!(
                        "unexpected character after '!': {}",
                        rune_or_eof(other)
                    ));
                    return false;
                }
            },
            '<' => {
                if self.accept("=") {
                    self.emit(Kind::Lte);
                } else if self.accept("/") {
                    self.emit(Kind::TrimUpper);
                } else {
                    self.emit(Kind::Lss);
                }
            }
            '>' => {
                if self.accept("=") {
                    self.emit(Kind::Gte);
                } else if self.accept("/") {
                    self.emit(Kind::TrimLower);
                } else {
                    self.emit(Kind::Gtr);
                }
            }
            c if c.is_ascii_digit()
                || (c == '.' && self.peek().is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.pos = self.start;
                return self.number_or_duration();
            }
            '"' | '\'' => return self.string(c),
            '`' => return self.raw_string(),
            c if is_alpha(c) || c == ':' => {
                if !self.bracket_open {
                    self.pos = self.start;
                    self.keyword_or_identifier();
                    return true;
                }
                if c == ':' {
                    if self.got_colon {
                        self.fail("unexpected colon ':'".into());
                        return false;
                    }
                    self.emit(Kind::Colon);
                    self.got_colon = true;
                    return true;
                }
                if self.scan_duration_keyword() {
                    return true;
                }
                self.fail(format!(
                    "unexpected character: {}, expected ':'",
                    quote_rune(c)
                ));
                return false;
            }
            '(' => {
                self.emit(Kind::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(Kind::RightParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    self.fail_replacing("unexpected right parenthesis ')'");
                    return false;
                }
            }
            '{' => {
                self.emit(Kind::LeftBrace);
                self.brace_open = true;
            }
            '[' => {
                if self.bracket_open {
                    self.fail("unexpected left bracket '['".into());
                    return false;
                }
                self.got_colon = false;
                self.emit(Kind::LeftBracket);
                self.skip_spaces();
                self.bracket_open = true;
                self.in_duration_expr = true;
            }
            ']' => {
                if !self.bracket_open {
                    self.fail("unexpected right bracket ']'".into());
                    return false;
                }
                self.emit(Kind::RightBracket);
                self.bracket_open = false;
            }
            '@' => self.emit(Kind::At),
            c => {
                self.fail(format!("unexpected character: {}", quote_rune(c)));
                return false;
            }
        }
        true
    }

    /// Prometheus' `lexDurationExpr`: the state right after `[` (and after `(`, `:` and operators
    /// inside the bracket until a number is read).
    fn duration_expr(&mut self) -> bool {
        let Some(c) = self.next() else {
            self.fail("unexpected end of input in duration expression".into());
            return false;
        };
        match c {
            ']' => {
                self.emit(Kind::RightBracket);
                self.bracket_open = false;
                self.got_colon = false;
                self.in_duration_expr = false;
            }
            ':' => {
                self.emit(Kind::Colon);
                if !self.got_duration {
                    self.fail_replacing("unexpected colon before duration in duration expression");
                    return false;
                }
                if self.got_colon {
                    self.fail_replacing("unexpected repeated colon in duration expression");
                    return false;
                }
                self.got_colon = true;
            }
            '(' => {
                self.emit(Kind::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(Kind::RightParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    self.fail_replacing("unexpected right parenthesis ')'");
                    return false;
                }
            }
            c if is_space(c) => self.skip_spaces(),
            '+' => self.emit(Kind::Add),
            '-' => self.emit(Kind::Sub),
            '*' => self.emit(Kind::Mul),
            '/' => self.emit(Kind::Div),
            '%' => self.emit(Kind::Mod),
            '^' => self.emit(Kind::Pow),
            ',' => self.emit(Kind::Comma),
            c if is_alpha(c) && "srm".contains(c.to_ascii_lowercase()) => {
                if !self.scan_duration_keyword() {
                    self.fail(format!(
                        "unexpected character in duration expression: {}",
                        quote_rune(c)
                    ));
                    return false;
                }
            }
            c if c.is_ascii_digit()
                || (c == '.' && self.peek().is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.pos = self.start;
                self.got_duration = true;
                self.in_duration_expr = false;
                return self.number_or_duration();
            }
            c => {
                self.fail(format!(
                    "unexpected character in duration expression: {}",
                    quote_rune(c)
                ));
                return false;
            }
        }
        true
    }

    /// `step`, `range`, `max_of`, `min_of` inside a bracket; the first letter is consumed.
    fn scan_duration_keyword(&mut self) -> bool {
        while self.peek().is_some_and(is_alpha) {
            self.next();
        }
        match duration_keyword(&self.input[self.start..self.pos]) {
            Some(k) => {
                self.emit(k);
                true
            }
            None => false,
        }
    }

    fn inside_braces(&mut self) -> bool {
        if self.input[self.pos..].starts_with('#') {
            self.line_comment();
            return true;
        }
        let Some(c) = self.next() else {
            self.fail("unexpected end of input inside braces".into());
            return false;
        };
        match c {
            c if is_space(c) => self.skip_spaces(),
            c if is_alpha(c) => {
                while self.peek().is_some_and(is_alnum) {
                    self.next();
                }
                self.emit(Kind::Identifier);
            }
            ',' => self.emit(Kind::Comma),
            '"' | '\'' => return self.string(c),
            '`' => return self.raw_string(),
            '=' => {
                if self.accept("~") {
                    self.emit(Kind::EqlRegex);
                } else {
                    self.emit(Kind::Eql);
                }
            }
            '!' => match self.next() {
                Some('~') => self.emit(Kind::NeqRegex),
                Some('=') => self.emit(Kind::Neq),
                other => {
                    self.fail(format!(
                        "unexpected character after '!' inside braces: {}",
                        rune_or_eof(other)
                    ));
                    return false;
                }
            },
            '{' => {
                self.fail("unexpected left brace '{'".into());
                return false;
            }
            '}' => {
                self.emit(Kind::RightBrace);
                self.brace_open = false;
            }
            c => {
                self.fail(format!(
                    "unexpected character inside braces: {}",
                    quote_rune(c)
                ));
                return false;
            }
        }
        true
    }

    fn line_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            self.next();
        }
        // Comments are dropped, as the parser skips them.
        self.start = self.pos;
    }

    /// A `"…"` or `'…'` string; the opening quote is consumed.
    fn string(&mut self, quote_char: char) -> bool {
        loop {
            match self.next() {
                Some('\\') => {
                    if let Err(msg) = self.escape(quote_char) {
                        self.fail(msg);
                        return false;
                    }
                }
                None | Some('\n') => {
                    self.fail("unterminated quoted string".into());
                    return false;
                }
                Some(c) if c == quote_char => break,
                Some(_) => {}
            }
        }
        self.emit(Kind::String);
        true
    }

    fn raw_string(&mut self) -> bool {
        loop {
            match self.next() {
                None => {
                    self.fail("unterminated raw string".into());
                    return false;
                }
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(Kind::String);
        true
    }

    /// Validates the escape after a backslash, as Go's `strconv.Unquote` would accept it.
    fn escape(&mut self, quote_char: char) -> Result<(), String> {
        let c = self.next();
        let (mut n, base, max): (u32, u32, u32) = match c {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => return Ok(()),
            Some(c) if c == quote_char => return Ok(()),
            Some('0'..='7') => (3, 8, 255),
            Some('x') => (2, 16, 255),
            Some('u') => (4, 16, 0x10FFFF),
            Some('U') => (8, 16, 0x10FFFF),
            None => return Err("escape sequence not terminated".into()),
            Some(c) => return Err(format!("unknown escape sequence {}", unicode_point(c))),
        };
        let mut ch = match c {
            Some('x' | 'u' | 'U') => self.next(),
            other => other,
        };
        let mut x: u32 = 0;
        while n > 0 {
            let d = ch.and_then(|c| c.to_digit(16)).unwrap_or(16);
            if d >= base {
                return Err(match ch {
                    None => "escape sequence not terminated".into(),
                    Some(c) => format!("illegal character {} in escape sequence", unicode_point(c)),
                });
            }
            x = x.wrapping_mul(base).wrapping_add(d);
            n -= 1;
            if n > 0 {
                ch = self.next();
            }
        }
        if x > max || (0xD800..0xE000).contains(&x) {
            return Err("escape sequence is an invalid Unicode code point".into());
        }
        Ok(())
    }

    fn number_or_duration(&mut self) -> bool {
        if self.scan_number() {
            self.emit(Kind::Number);
            return true;
        }
        if self.accept_remaining_duration() {
            self.emit(Kind::Duration);
            return true;
        }
        let text = self.input[self.start..self.pos].to_string();
        self.fail(format!("bad number or duration syntax: {}", quote(&text)));
        false
    }

    /// Prometheus' `acceptRemainingDuration`, after `scanNumber` read the leading digits.
    fn accept_remaining_duration(&mut self) -> bool {
        if !self.accept("smhdwy") {
            return false;
        }
        self.accept("s");
        while self.accept("0123456789") {
            while self.accept("0123456789") {}
            if !self.accept("smhdw") {
                return false;
            }
            self.accept("s");
        }
        // The rune after the duration must not continue a word; Prometheus consumes it to look.
        match self.peek() {
            Some(c) if is_alnum(c) => {
                self.next();
                false
            }
            _ => true,
        }
    }

    /// Prometheus' `scanNumber`: decimal or hexadecimal digits with `_` separators, a fraction and an
    /// exponent; false when what follows makes it something else (a duration) or invalid.
    fn scan_number(&mut self) -> bool {
        let initial = self.pos;
        let mut digits = "0123456789";
        if self.accept("0") && self.accept("xX") {
            self.accept("_");
            digits = "0123456789abcdefABCDEF";
        }
        self.accept(".");
        self.accept(digits);
        let mut dot = false;
        let mut exponent = false;
        let continuing = format!("{digits}._eE");
        while self.is(&continuing) {
            if self.is(".") && dot {
                self.accept(".");
                return false;
            }
            if self.is("eE") && exponent {
                self.accept("eE");
                return false;
            }
            if self.accept(".") {
                dot = true;
                if self.accept("_.") {
                    return false;
                }
                if digits.len() > 10 {
                    return false;
                }
                continue;
            }
            if self.accept("eE") {
                exponent = true;
                self.accept("+-");
                if self.accept("._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            if self.accept("_") {
                if self.accept("._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            while self.accept(digits) {}
        }
        if self.pos == initial {
            return false;
        }
        !self.peek().is_some_and(is_alnum)
    }

    fn keyword_or_identifier(&mut self) {
        while self.peek().is_some_and(|c| is_alnum(c) || c == ':') {
            self.next();
        }
        let word = &self.input[self.start..self.pos];
        match keyword(word) {
            Some(Kind::Fill | Kind::FillLeft | Kind::FillRight) if !self.followed_by_paren() => {
                self.emit(Kind::Identifier)
            }
            Some(k) => self.emit(k),
            None if word.contains(':') => self.emit(Kind::MetricIdentifier),
            None => self.emit(Kind::Identifier),
        }
    }

    fn followed_by_paren(&self) -> bool {
        self.input[self.pos..]
            .chars()
            .find(|&c| !is_space(c))
            .is_some_and(|c| c == '(')
    }
}

/// Go's `%q` of a rune read at the end of input (`utf8.RuneError` for EOF in Go's lexer).
fn rune_or_eof(c: Option<char>) -> String {
    quote_rune(c.unwrap_or('\u{FFFD}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<Kind> {
        lex(input).tokens.iter().map(|t| t.kind).collect()
    }

    fn error(input: &str) -> String {
        lex(input).error.expect("a lexical error")
    }

    #[test]
    fn keywords_are_case_insensitive_and_context_dependent() {
        use Kind::*;
        assert_eq!(
            kinds("SUM by (x) (foo:bar)"),
            vec![
                Aggregator(AggregateOp::Sum),
                By,
                LeftParen,
                Identifier,
                RightParen,
                LeftParen,
                MetricIdentifier,
                RightParen,
                Eof
            ]
        );
        // Inside braces every word is a label name.
        assert_eq!(
            kinds("{by=\"x\"}"),
            vec![LeftBrace, Identifier, Eql, String, RightBrace, Eof]
        );
        // fill is a keyword only before a parenthesis.
        assert_eq!(kinds("fill"), vec![Identifier, Eof]);
        assert_eq!(kinds("fill (1)")[0], Fill);
        assert_eq!(kinds("Inf NaN"), vec![Number, Number, Eof]);
    }

    #[test]
    fn numbers_and_durations() {
        use Kind::*;
        assert_eq!(
            kinds("1 1.5 .5 1e3 0x1F 1_000"),
            vec![Number; 6].into_iter().chain([Eof]).collect::<Vec<_>>()
        );
        assert_eq!(
            kinds("5m 1h30m 10ms"),
            vec![Duration, Duration, Duration, Eof]
        );
        assert_eq!(error("1x"), "bad number or duration syntax: \"1\"");
        assert_eq!(error("5mx"), "bad number or duration syntax: \"5mx\"");
        assert_eq!(error("1.2.3"), "bad number or duration syntax: \"1.2.\"");
    }

    #[test]
    fn brackets_hold_duration_expressions() {
        use Kind::*;
        assert_eq!(
            kinds("x[5m:1m]"),
            vec![
                Identifier,
                LeftBracket,
                Duration,
                Colon,
                Duration,
                RightBracket,
                Eof
            ]
        );
        assert_eq!(
            kinds("x[step() * 2]"),
            vec![
                Identifier,
                LeftBracket,
                Step,
                LeftParen,
                RightParen,
                Mul,
                Number,
                RightBracket,
                Eof
            ]
        );
        assert_eq!(error("x[5m"), "unclosed left bracket");
        assert_eq!(
            error("x["),
            "unexpected end of input in duration expression"
        );
        assert_eq!(
            error("x[:5m]"),
            "unexpected colon before duration in duration expression"
        );
        assert_eq!(error("x[5m:1m:]"), "unexpected colon ':'");
        assert_eq!(error("x[5m y]"), "unexpected character: 'y', expected ':'");
    }

    #[test]
    fn lexical_errors_read_like_prometheus() {
        assert_eq!(error("sum(x"), "unclosed left parenthesis");
        assert_eq!(error("x)"), "unexpected right parenthesis ')'");
        assert_eq!(error("x{"), "unexpected end of input inside braces");
        assert_eq!(
            error("x{a!b}"),
            "unexpected character after '!' inside braces: 'b'"
        );
        assert_eq!(error("\"abc"), "unterminated quoted string");
        assert_eq!(error("\"\\q\""), "unknown escape sequence U+0071 'q'");
        assert_eq!(
            error("\"\\xZZ\""),
            "illegal character U+005A 'Z' in escape sequence"
        );
        assert_eq!(error("x ; y"), "unexpected character: ';'");
        assert_eq!(error("a =~ b"), "unexpected character after '=': '~'");
    }

    #[test]
    fn comments_are_skipped() {
        use Kind::*;
        assert_eq!(kinds("# only a comment"), vec![Eof]);
        assert_eq!(
            kinds("foo # trailing\n+ 1"),
            vec![Identifier, Add, Number, Eof]
        );
    }

    #[test]
    fn descriptions_follow_prometheus_item_rendering() {
        let input = "foo + sum by \"a very long string\"";
        let t = lex(input).tokens;
        assert_eq!(describe(input, &t[0]), "identifier \"foo\"");
        assert_eq!(describe(input, &t[1]), "<op:+>");
        assert_eq!(describe(input, &t[2]), "<aggr:sum>");
        assert_eq!(describe(input, &t[3]), "<by>");
        assert_eq!(describe(input, &t[4]), "string \"\\\"a very lo\"...");
        assert_eq!(describe(input, &t[5]), "end of input");
    }
}
