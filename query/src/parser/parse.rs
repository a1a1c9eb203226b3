//! The PromQL grammar: a recursive-descent parser with precedence climbing that builds the
//! [`crate::ast`] from the lexer's tokens, reproducing the parse trees and grammar-level errors of
//! Prometheus' yacc grammar.
//!
//! Owns operator precedence and associativity (`^` right-associative, unary minus binding like `*`
//! but looser than `^`), the postfix modifiers (`[range]`, `[range:step]`, `offset`, `@`,
//! `anchored`, `smoothed`, which always attach to the nearest selector or subquery), duration
//! arithmetic inside brackets and after `offset`, and the semantic errors Prometheus raises while
//! parsing (ranges on non-selectors, modifiers set twice, unknown functions, aggregation argument
//! counts). Type checking of the finished tree is `check`'s.

use ember_index::{MatchType, Matcher};

use super::ParseError;
use super::functions::lookup;
use super::lexer::{Kind, Token, Tokens, describe, lex};
use super::literals::{format_float_f6, parse_duration, parse_number, quote, unquote};
use super::regex_error::go_regex_error;
use crate::ast::*;

type Result<T> = std::result::Result<T, ParseError>;

/// Largest magnitude of a duration literal in seconds (Go's `time.Duration` range).
const MAX_DURATION_SECS: f64 = 9_223_372_036.854_776;

pub(crate) struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Token>,
    lex_error: Option<String>,
    pos: usize,
    /// End of the last token consumed.
    prev_end: usize,
    /// Nesting reached so far: recursion plus operators chained at one level, which bounds the
    /// height of the tree being built.
    depth: usize,
}

/// The deepest expression accepted. Prometheus has no limit (its parser and evaluator keep their
/// stacks on the heap); Ember's parser, checker and evaluator recurse, so an absurdly nested query
/// is refused instead of overflowing the stack.
pub(crate) const MAX_DEPTH: usize = 256;

/// A duration expression under construction: a plain literal (possibly negated) or arithmetic.
enum Dur {
    Literal(NumberLiteral),
    Expr(DurationExpr),
}

impl Dur {
    fn span(&self) -> Span {
        match self {
            Dur::Literal(n) => n.span,
            Dur::Expr(e) => e.span(),
        }
    }

    fn into_expr(self) -> DurationExpr {
        match self {
            Dur::Literal(n) => DurationExpr::Literal(n),
            Dur::Expr(e) => e,
        }
    }
}

impl<'a> Parser<'a> {
    pub(crate) fn new(input: &'a str) -> Parser<'a> {
        let Tokens { tokens, error } = lex(input);
        Parser {
            input,
            tokens,
            lex_error: error,
            pos: 0,
            prev_end: 0,
            depth: 0,
        }
    }

    fn peek(&self) -> Token {
        self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_kind(&self) -> Kind {
        self.peek().kind
    }

    fn peek_kind_at(&self, ahead: usize) -> Kind {
        self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)].kind
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if t.kind != Kind::Eof && t.kind != Kind::Error {
            self.pos += 1;
            self.prev_end = t.end;
        }
        t
    }

    fn text(&self, t: Token) -> &'a str {
        &self.input[t.start..t.end]
    }

    fn error(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError::new(self.input, span, message)
    }

    /// `unexpected <token>[ in <context>][, expected <expected>]` at the next token; a lexical error
    /// there takes precedence, as in Prometheus.
    fn unexpected(&self, context: &str, expected: &str) -> ParseError {
        let t = self.peek();
        if t.kind == Kind::Error {
            return self.lex_error();
        }
        let mut msg = format!("unexpected {}", describe(self.input, &t));
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        self.error(Span::new(t.start, t.end), msg)
    }

    fn lex_error(&self) -> ParseError {
        let t = self.peek();
        self.error(
            Span::new(t.start, self.input.len()),
            self.lex_error.clone().unwrap_or_default(),
        )
    }

    fn expect(&mut self, kind: Kind, context: &str, expected: &str) -> Result<Token> {
        if self.peek_kind() == kind {
            Ok(self.bump())
        } else {
            Err(self.unexpected(context, expected))
        }
    }

    /// A whole expression followed by the end of input.
    pub(crate) fn parse_expr(&mut self) -> Result<Expr> {
        if self.peek_kind() == Kind::Eof {
            return Err(self.error(Span::default(), "no expression found in input"));
        }
        let e = self.expr(0)?;
        if self.peek_kind() != Kind::Eof {
            return Err(self.unexpected("", ""));
        }
        Ok(e)
    }

    /// A lone vector selector followed by the end of input (the `match[]` parameters of the API).
    pub(crate) fn parse_selector(&mut self) -> Result<VectorSelector> {
        let t = self.peek();
        let sel = match t.kind {
            Kind::LeftBrace => self.selector(None)?,
            k if is_metric_identifier(k) => {
                self.bump();
                self.selector(Some(t))?
            }
            Kind::Eof => return Err(self.error(Span::default(), "unexpected end of input")),
            _ => return Err(self.unexpected("", "")),
        };
        if self.peek_kind() != Kind::Eof {
            return Err(self.unexpected("", ""));
        }
        Ok(sel)
    }

    /// Binary operators of precedence `min_prec` or higher, by precedence climbing.
    fn expr(&mut self, min_prec: u8) -> Result<Expr> {
        let saved = self.depth;
        let e = self.expr_inner(min_prec);
        self.depth = saved;
        e
    }

    fn deeper(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.peek();
            return Err(self.error(
                Span::new(t.start, t.end),
                format!("expression nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    fn expr_inner(&mut self, min_prec: u8) -> Result<Expr> {
        self.deeper()?;
        let mut lhs = self.unary()?;
        while let Some(op) = binary_op(self.peek_kind()) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.bump();
            self.deeper()?;
            let (return_bool, matching) = self.bin_modifiers()?;
            let next_min = if op.is_right_associative() {
                prec
            } else {
                prec + 1
            };
            let rhs = self.expr(next_min)?;
            let span = Span::new(lhs.span().start, rhs.span().end);
            lhs = Expr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                return_bool,
                matching: Some(matching),
                span,
            });
        }
        Ok(lhs)
    }

    /// A unary `+`/`-` binds like `*`: its operand extends over `^` only. Signs on number literals
    /// fold into the literal.
    fn unary(&mut self) -> Result<Expr> {
        let t = self.peek();
        let op = match t.kind {
            Kind::Add => UnaryOp::Plus,
            Kind::Sub => UnaryOp::Minus,
            _ => return self.postfix(),
        };
        self.bump();
        let operand = self.expr(BinaryOp::Pow.precedence())?;
        Ok(match operand {
            Expr::NumberLiteral(mut n) => {
                if op == UnaryOp::Minus {
                    n.value = -n.value;
                }
                n.span.start = t.start;
                Expr::NumberLiteral(n)
            }
            other => {
                let span = Span::new(t.start, other.span().end);
                Expr::Unary(UnaryExpr {
                    op,
                    expr: Box::new(other),
                    span,
                })
            }
        })
    }

    /// A primary expression and the modifiers written after it.
    fn postfix(&mut self) -> Result<Expr> {
        let mut e = self.primary()?;
        loop {
            match self.peek_kind() {
                Kind::LeftBracket => e = self.range_or_subquery(e)?,
                Kind::Offset => {
                    self.bump();
                    let d = self.offset_duration()?;
                    self.set_offset(&mut e, d)?;
                }
                Kind::At => {
                    self.bump();
                    self.at_modifier(&mut e)?;
                }
                Kind::Anchored | Kind::Smoothed => {
                    let anchored = self.bump().kind == Kind::Anchored;
                    self.set_anchored_smoothed(&mut e, anchored)?;
                }
                _ => return Ok(e),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr> {
        let t = self.peek();
        match t.kind {
            Kind::Number | Kind::Duration => {
                self.bump();
                Ok(Expr::NumberLiteral(self.number_literal(t)?))
            }
            Kind::String => {
                self.bump();
                Ok(Expr::StringLiteral(StringLiteral {
                    value: self.unquote(t)?,
                    span: Span::new(t.start, t.end),
                }))
            }
            Kind::LeftParen => {
                self.bump();
                let inner = self.expr(0)?;
                let close = self.expect(Kind::RightParen, "", "")?;
                Ok(Expr::Paren(ParenExpr {
                    expr: Box::new(inner),
                    span: Span::new(t.start, close.end),
                }))
            }
            Kind::LeftBrace => Ok(Expr::VectorSelector(self.selector(None)?)),
            Kind::Aggregator(op)
                if matches!(
                    self.peek_kind_at(1),
                    Kind::LeftParen | Kind::By | Kind::Without
                ) =>
            {
                self.aggregation(op)
            }
            Kind::Identifier
            | Kind::Start
            | Kind::End
            | Kind::Step
            | Kind::Range
            | Kind::MaxOf
            | Kind::MinOf
                if self.peek_kind_at(1) == Kind::LeftParen =>
            {
                self.call()
            }
            k if is_metric_identifier(k) => {
                self.bump();
                Ok(Expr::VectorSelector(self.selector(Some(t))?))
            }
            Kind::Eof => Err(self.unexpected("", "")),
            _ => Err(self.unexpected("", "")),
        }
    }

    fn number_literal(&self, t: Token) -> Result<NumberLiteral> {
        let text = self.text(t);
        let span = Span::new(t.start, t.end);
        if t.kind == Kind::Duration {
            let ns = parse_duration(text).map_err(|e| self.error(span, e))?;
            // Go's Duration.Seconds: whole seconds plus the fraction, exact for whole seconds.
            let value = (ns / 1_000_000_000) as f64 + (ns % 1_000_000_000) as f64 / 1e9;
            Ok(NumberLiteral {
                value,
                duration: true,
                span,
            })
        } else {
            let value = parse_number(text)
                .map_err(|e| self.error(span, format!("error parsing number: {e}")))?;
            Ok(NumberLiteral {
                value,
                duration: false,
                span,
            })
        }
    }

    fn unquote(&self, t: Token) -> Result<String> {
        let text = self.text(t);
        unquote(text).map_err(|e| {
            self.error(
                Span::new(t.start, t.end),
                format!("error unquoting string {}: {e}", quote(text)),
            )
        })
    }

    /// `name`, `name{…}` or `{…}`; `name_token` is the already consumed metric name.
    fn selector(&mut self, name_token: Option<Token>) -> Result<VectorSelector> {
        let start = name_token.map_or(self.peek().start, |t| t.start);
        let mut end = name_token.map_or(start, |t| t.end);
        let mut matchers = Vec::new();
        if self.peek_kind() == Kind::LeftBrace {
            self.bump();
            loop {
                if self.peek_kind() == Kind::RightBrace {
                    break;
                }
                matchers.push(self.label_matcher()?);
                match self.peek_kind() {
                    Kind::Comma => {
                        self.bump();
                    }
                    Kind::RightBrace => break,
                    _ => return Err(self.unexpected("label matching", "\",\" or \"}\"")),
                }
            }
            end = self.bump().end;
        }
        let name = name_token.map(|t| self.text(t).to_string());
        if let Some(n) = &name {
            matchers.push(Matcher::equal("__name__", n.clone()));
        }
        Ok(VectorSelector {
            name,
            matchers,
            offset: None,
            at: None,
            anchored: false,
            smoothed: false,
            span: Span::new(start, end),
        })
    }

    fn label_matcher(&mut self) -> Result<Matcher> {
        let t = self.peek();
        let name = match t.kind {
            Kind::Identifier => {
                self.bump();
                if match_type(self.peek_kind()).is_none() {
                    return Err(self.unexpected("label matching", "label matching operator"));
                }
                self.text(t).to_string()
            }
            Kind::String => {
                self.bump();
                let name = self.unquote(t)?;
                if match_type(self.peek_kind()).is_none() {
                    // A lone quoted string names the metric: `{"my.metric"}`.
                    return self.matcher(MatchType::Equal, "__name__", name, t.start, t.end);
                }
                name
            }
            _ => return Err(self.unexpected("label matching", "identifier or \"}\"")),
        };
        let op = match_type(self.bump().kind).expect("checked above");
        let value_token = self.expect(Kind::String, "label matching", "string")?;
        let value = self.unquote(value_token)?;
        self.matcher(op, &name, value, t.start, value_token.end)
    }

    fn matcher(
        &self,
        op: MatchType,
        name: &str,
        value: String,
        start: usize,
        end: usize,
    ) -> Result<Matcher> {
        let span = Span::new(start, end);
        if matches!(op, MatchType::Regex | MatchType::NotRegex)
            && let Some(msg) = go_regex_error(&value)
        {
            return Err(self.error(span, msg));
        }
        Matcher::new(op, name, value).map_err(|e| self.error(span, e.to_string()))
    }

    /// `op [by|without (…)] (args)` or `op (args) [by|without (…)]`.
    fn aggregation(&mut self, op: AggregateOp) -> Result<Expr> {
        let t = self.bump();
        let mut grouping = Vec::new();
        let mut without = false;
        let mut modifier_first = false;
        if matches!(self.peek_kind(), Kind::By | Kind::Without) {
            without = self.bump().kind == Kind::Without;
            grouping = self.grouping_labels()?;
            modifier_first = true;
        }
        if self.peek_kind() != Kind::LeftParen {
            return Err(self.unexpected("aggregation", ""));
        }
        let args = self.call_body()?;
        if !modifier_first && matches!(self.peek_kind(), Kind::By | Kind::Without) {
            without = self.bump().kind == Kind::Without;
            grouping = self.grouping_labels()?;
        }
        let span = Span::new(t.start, self.prev_end);
        if args.is_empty() {
            return Err(self.error(span, "no arguments for aggregate expression provided"));
        }
        let wanted = if op.has_param() { 2 } else { 1 };
        if args.len() != wanted {
            return Err(self.error(
                span,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {wanted}, got {}",
                    args.len()
                ),
            ));
        }
        let mut args = args.into_iter();
        let param = if op.has_param() {
            args.next().map(Box::new)
        } else {
            None
        };
        let expr = Box::new(args.next().expect("counted"));
        Ok(Expr::Aggregate(AggregateExpr {
            op,
            expr,
            param,
            grouping,
            without,
            span,
        }))
    }

    /// `( label, … )` after `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`.
    fn grouping_labels(&mut self) -> Result<Vec<String>> {
        if self.peek_kind() != Kind::LeftParen {
            return Err(self.unexpected("grouping opts", "\"(\""));
        }
        self.bump();
        let mut labels = Vec::new();
        if self.peek_kind() == Kind::RightParen {
            self.bump();
            return Ok(labels);
        }
        loop {
            let t = self.peek();
            let name = match t.kind {
                Kind::String => {
                    self.bump();
                    self.unquote(t)?
                }
                k if is_maybe_label(k) => {
                    self.bump();
                    self.text(t).to_string()
                }
                _ => return Err(self.unexpected("grouping opts", "label")),
            };
            if name.is_empty() {
                return Err(self.error(
                    Span::new(t.start, t.end),
                    format!("invalid label name for grouping: {}", quote(&name)),
                ));
            }
            labels.push(name);
            match self.peek_kind() {
                Kind::Comma => {
                    self.bump();
                    if self.peek_kind() == Kind::RightParen {
                        self.bump();
                        return Ok(labels);
                    }
                }
                Kind::RightParen => {
                    self.bump();
                    return Ok(labels);
                }
                _ => return Err(self.unexpected("grouping opts", "\",\" or \")\"")),
            }
        }
    }

    /// `bool`, `on`/`ignoring`, `group_left`/`group_right` and `fill*` after a binary operator.
    fn bin_modifiers(&mut self) -> Result<(bool, VectorMatching)> {
        let return_bool = if self.peek_kind() == Kind::Bool {
            self.bump();
            true
        } else {
            false
        };
        let mut m = VectorMatching {
            card: VectorMatchCardinality::OneToOne,
            on: false,
            labels: Vec::new(),
            include: Vec::new(),
            fill: FillValues::default(),
        };
        if matches!(self.peek_kind(), Kind::On | Kind::Ignoring) {
            m.on = self.bump().kind == Kind::On;
            m.labels = self.grouping_labels()?;
            if matches!(self.peek_kind(), Kind::GroupLeft | Kind::GroupRight) {
                m.card = if self.bump().kind == Kind::GroupLeft {
                    VectorMatchCardinality::ManyToOne
                } else {
                    VectorMatchCardinality::OneToMany
                };
                if self.peek_kind() == Kind::LeftParen {
                    m.include = self.grouping_labels()?;
                }
            }
        }
        match self.peek_kind() {
            Kind::Fill => {
                self.bump();
                let v = self.fill_value()?;
                m.fill.lhs = Some(v);
                m.fill.rhs = Some(v);
            }
            Kind::FillLeft => {
                self.bump();
                m.fill.lhs = Some(self.fill_value()?);
                if self.peek_kind() == Kind::FillRight {
                    self.bump();
                    m.fill.rhs = Some(self.fill_value()?);
                }
            }
            Kind::FillRight => {
                self.bump();
                m.fill.rhs = Some(self.fill_value()?);
                if self.peek_kind() == Kind::FillLeft {
                    self.bump();
                    m.fill.lhs = Some(self.fill_value()?);
                }
            }
            _ => {}
        }
        Ok((return_bool, m))
    }

    /// `( [+|-] number )`.
    fn fill_value(&mut self) -> Result<f64> {
        self.expect(Kind::LeftParen, "", "")?;
        let sign = match self.peek_kind() {
            Kind::Add => {
                self.bump();
                1.0
            }
            Kind::Sub => {
                self.bump();
                -1.0
            }
            _ => 1.0,
        };
        let t = self.peek();
        if !matches!(t.kind, Kind::Number | Kind::Duration) {
            return Err(self.unexpected("", ""));
        }
        self.bump();
        let v = self.number_literal(t)?.value * sign;
        self.expect(Kind::RightParen, "", "")?;
        Ok(v)
    }

    /// `(args)` of a call or aggregation.
    fn call_body(&mut self) -> Result<Vec<Expr>> {
        self.expect(Kind::LeftParen, "", "")?;
        let mut args = Vec::new();
        if self.peek_kind() == Kind::RightParen {
            self.bump();
            return Ok(args);
        }
        loop {
            args.push(self.expr(0)?);
            match self.peek_kind() {
                Kind::Comma => {
                    let comma = self.bump();
                    if self.peek_kind() == Kind::RightParen {
                        return Err(self.error(
                            Span::new(comma.start, comma.end),
                            "trailing commas not allowed in function call args",
                        ));
                    }
                }
                Kind::RightParen => {
                    self.bump();
                    return Ok(args);
                }
                _ => return Err(self.unexpected("", "")),
            }
        }
    }

    fn call(&mut self) -> Result<Expr> {
        let name_token = self.bump();
        let name = self.text(name_token);
        let args = self.call_body()?;
        let Some(func) = lookup(name) else {
            return Err(self.error(
                Span::new(name_token.start, name_token.end),
                format!("unknown function with name {}", quote(name)),
            ));
        };
        Ok(Expr::Call(Call {
            func,
            args,
            span: Span::new(name_token.start, self.prev_end),
        }))
    }

    /// `[range]` or `[range:step]` after `e`.
    fn range_or_subquery(&mut self, e: Expr) -> Result<Expr> {
        let open = self.bump();
        if !starts_duration(self.peek_kind()) {
            return Err(self.unexpected(
                "subquery or range selector",
                "number, duration, step(), or range()",
            ));
        }
        let range = self.positive_duration()?;
        match self.peek_kind() {
            Kind::RightBracket => {
                let close = self.bump();
                let Expr::VectorSelector(selector) = e else {
                    return Err(self.error(
                        Span::new(open.start, close.end),
                        "ranges only allowed for vector selectors",
                    ));
                };
                if selector.offset.is_some() {
                    return Err(self.error(
                        Span::new(open.start, close.end),
                        "no offset modifiers allowed before range",
                    ));
                }
                if selector.at.is_some() {
                    return Err(self.error(
                        Span::new(open.start, close.end),
                        "no @ modifiers allowed before range",
                    ));
                }
                let span = Span::new(selector.span.start, close.end);
                Ok(Expr::MatrixSelector(MatrixSelector {
                    selector,
                    range,
                    span,
                }))
            }
            Kind::Colon => {
                self.bump();
                let step = if self.peek_kind() == Kind::RightBracket {
                    None
                } else if starts_duration(self.peek_kind()) {
                    Some(self.positive_duration()?)
                } else {
                    return Err(self.unexpected(
                        "subquery selector",
                        "number, duration, step(), range(), or \"]\"",
                    ));
                };
                let close = self.expect(Kind::RightBracket, "subquery selector", "\"]\"")?;
                let span = Span::new(e.span().start, close.end);
                Ok(Expr::Subquery(SubqueryExpr {
                    expr: Box::new(e),
                    range,
                    step,
                    offset: None,
                    at: None,
                    span,
                }))
            }
            _ => Err(self.unexpected("subquery or range", "\":\" or \"]\"")),
        }
    }

    /// A range or step: duration arithmetic whose plain-literal form must be positive.
    fn positive_duration(&mut self) -> Result<Duration> {
        let d = self.duration_expr(0)?;
        if let Dur::Literal(n) = &d
            && n.value <= 0.0
        {
            return Err(self.error(n.span, "duration must be greater than 0"));
        }
        Ok(self.finish_duration(d, false))
    }

    fn finish_duration(&self, d: Dur, allow_negative: bool) -> Duration {
        match d {
            Dur::Literal(n) => Duration::from_ms(seconds_to_ms(n.value)),
            Dur::Expr(e) => {
                let ms = if e.is_query_dependent() {
                    None
                } else {
                    e.resolve(DurationContext::default(), allow_negative).ok()
                };
                Duration { ms, expr: Some(e) }
            }
        }
    }

    /// Duration arithmetic by precedence climbing: `+ -` < `* / %` < `^` (right-associative); a
    /// unary sign binds like `*`.
    fn duration_expr(&mut self, min_prec: u8) -> Result<Dur> {
        let saved = self.depth;
        let d = self.duration_expr_inner(min_prec);
        self.depth = saved;
        d
    }

    fn duration_expr_inner(&mut self, min_prec: u8) -> Result<Dur> {
        self.deeper()?;
        let mut lhs = self.duration_unary()?;
        loop {
            let op = match self.peek_kind() {
                Kind::Add => DurationOp::Add,
                Kind::Sub => DurationOp::Sub,
                Kind::Mul => DurationOp::Mul,
                Kind::Div => DurationOp::Div,
                Kind::Mod => DurationOp::Mod,
                Kind::Pow => DurationOp::Pow,
                _ => break,
            };
            let prec = duration_precedence(op);
            if prec < min_prec {
                break;
            }
            let op_token = self.bump();
            self.deeper()?;
            let next_min = if op == DurationOp::Pow {
                prec
            } else {
                prec + 1
            };
            let rhs = self.duration_expr(next_min)?;
            if let Dur::Literal(n) = &rhs
                && n.value == 0.0
            {
                let msg = match op {
                    DurationOp::Div => Some("division by zero"),
                    DurationOp::Mod => Some("modulo by zero"),
                    _ => None,
                };
                if let Some(msg) = msg {
                    return Err(self.error(Span::new(op_token.start, op_token.end), msg));
                }
            }
            lhs = Dur::Expr(DurationExpr::Binary {
                op,
                lhs: Box::new(lhs.into_expr()),
                rhs: Box::new(rhs.into_expr()),
            });
        }
        Ok(lhs)
    }

    fn duration_unary(&mut self) -> Result<Dur> {
        let t = self.peek();
        if !matches!(t.kind, Kind::Add | Kind::Sub) {
            return self.duration_primary();
        }
        self.bump();
        let operand = self.duration_expr(duration_precedence(DurationOp::Pow))?;
        self.apply_sign(t, operand)
    }

    fn apply_sign(&self, sign: Token, operand: Dur) -> Result<Dur> {
        let negate = sign.kind == Kind::Sub;
        Ok(match operand {
            Dur::Literal(mut n) => {
                if negate {
                    n.value = -n.value;
                }
                if out_of_range(n.value) {
                    return Err(
                        self.error(Span::new(sign.start, sign.end), "duration out of range")
                    );
                }
                n.span.start = sign.start;
                Dur::Literal(n)
            }
            Dur::Expr(e) if negate => {
                let span = Span::new(sign.start, e.span().end);
                Dur::Expr(DurationExpr::Neg {
                    expr: Box::new(e),
                    span,
                })
            }
            other => other,
        })
    }

    fn duration_primary(&mut self) -> Result<Dur> {
        let t = self.peek();
        match t.kind {
            Kind::Number | Kind::Duration => {
                self.bump();
                let n = self.number_literal(t)?;
                if out_of_range(n.value) {
                    return Err(self.error(n.span, "duration out of range"));
                }
                Ok(Dur::Literal(n))
            }
            Kind::Step | Kind::Range => {
                self.bump();
                self.expect(Kind::LeftParen, "", "")?;
                let close = self.expect(Kind::RightParen, "", "")?;
                let span = Span::new(t.start, close.end);
                Ok(Dur::Expr(if t.kind == Kind::Step {
                    DurationExpr::Step(span)
                } else {
                    DurationExpr::Range(span)
                }))
            }
            Kind::MaxOf | Kind::MinOf => {
                self.bump();
                self.expect(Kind::LeftParen, "", "")?;
                let lhs = self.duration_expr(0)?;
                self.expect(Kind::Comma, "", "")?;
                let rhs = self.duration_expr(0)?;
                let close = self.expect(Kind::RightParen, "", "")?;
                Ok(Dur::Expr(DurationExpr::Extremum {
                    max: t.kind == Kind::MaxOf,
                    lhs: Box::new(lhs.into_expr()),
                    rhs: Box::new(rhs.into_expr()),
                    span: Span::new(t.start, close.end),
                }))
            }
            Kind::LeftParen => {
                self.bump();
                let inner = self.duration_expr(0)?;
                let close = self.expect(Kind::RightParen, "", "")?;
                Ok(Dur::Expr(DurationExpr::Paren {
                    expr: Box::new(inner.into_expr()),
                    span: Span::new(t.start, close.end),
                }))
            }
            _ => Err(self.unexpected("", "")),
        }
    }

    /// What follows `offset`. A literal takes only an optional sign (`x offset -2^2` is
    /// `(x offset -2)^2`); `step()`, `range()`, `max_of`/`min_of` and parenthesised arithmetic
    /// are accepted too, as in Prometheus' `offset_duration_expr`.
    fn offset_duration(&mut self) -> Result<Duration> {
        let t = self.peek();
        let d = match t.kind {
            Kind::Number | Kind::Duration => {
                self.bump();
                let n = self.number_literal(t)?;
                if out_of_range(n.value) {
                    return Err(self.error(n.span, "duration out of range"));
                }
                Dur::Literal(n)
            }
            Kind::Add | Kind::Sub => {
                self.bump();
                let next = self.peek();
                let operand = match next.kind {
                    Kind::Number | Kind::Duration => {
                        self.bump();
                        Dur::Literal(self.number_literal(next)?)
                    }
                    Kind::Step | Kind::Range | Kind::MaxOf | Kind::MinOf | Kind::LeftParen => {
                        self.duration_primary()?
                    }
                    _ => {
                        return Err(
                            self.unexpected("offset", "number, duration, step(), or range()")
                        );
                    }
                };
                self.apply_sign(t, operand)?
            }
            Kind::Step | Kind::Range | Kind::MaxOf | Kind::MinOf => self.duration_primary()?,
            // A parenthesised expression keeps absorbing duration operators after it.
            Kind::LeftParen => self.duration_expr(0)?,
            _ => {
                return Err(self.unexpected("offset", "number, duration, step(), or range()"));
            }
        };
        let _ = d.span();
        Ok(self.finish_duration(d, true))
    }

    fn set_offset(&self, e: &mut Expr, d: Duration) -> Result<()> {
        let end = self.prev_end;
        let span = e.span();
        let (slot, span_end) = match e {
            Expr::VectorSelector(v) => (&mut v.offset, &mut v.span.end),
            Expr::MatrixSelector(m) => (&mut m.selector.offset, &mut m.span.end),
            Expr::Subquery(s) => (&mut s.offset, &mut s.span.end),
            _ => {
                return Err(self.error(
                    span,
                    "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ));
            }
        };
        if slot.is_some() {
            return Err(self.error(span, "offset may not be set multiple times"));
        }
        // A literal zero offset is no offset, as in Prometheus.
        if d.expr.is_some() || d.ms != Some(0) {
            *slot = Some(d);
        }
        *span_end = end;
        Ok(())
    }

    /// `@ <number>`, `@ start()`, `@ end()`.
    fn at_modifier(&mut self, e: &mut Expr) -> Result<()> {
        let t = self.peek();
        let at = match t.kind {
            Kind::Number | Kind::Duration => {
                self.bump();
                let v = self.number_literal(t)?.value;
                self.at_timestamp(e, v)?
            }
            Kind::Add | Kind::Sub => {
                self.bump();
                let n = self.peek();
                if !matches!(n.kind, Kind::Number | Kind::Duration) {
                    return Err(self.unexpected("", ""));
                }
                self.bump();
                let v = self.number_literal(n)?.value;
                let v = if t.kind == Kind::Sub { -v } else { v };
                self.at_timestamp(e, v)?
            }
            Kind::Start | Kind::End => {
                self.bump();
                self.expect(Kind::LeftParen, "", "")?;
                self.expect(Kind::RightParen, "", "")?;
                if t.kind == Kind::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                }
            }
            _ => return Err(self.unexpected("@", "timestamp")),
        };
        let end = self.prev_end;
        let span = e.span();
        let (slot, span_end) = match e {
            Expr::VectorSelector(v) => (&mut v.at, &mut v.span.end),
            Expr::MatrixSelector(m) => (&mut m.selector.at, &mut m.span.end),
            Expr::Subquery(s) => (&mut s.at, &mut s.span.end),
            _ => {
                return Err(self.error(
                    span,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ));
            }
        };
        if slot.is_some() {
            return Err(self.error(span, "@ <timestamp> may not be set multiple times"));
        }
        *slot = Some(at);
        *span_end = end;
        Ok(())
    }

    fn at_timestamp(&self, e: &Expr, secs: f64) -> Result<AtModifier> {
        if !secs.is_finite() || secs >= i64::MAX as f64 || secs <= i64::MIN as f64 {
            return Err(self.error(
                e.span(),
                format!(
                    "timestamp out of bounds for @ modifier: {}",
                    format_float_f6(secs)
                ),
            ));
        }
        // Prometheus' timestamp.FromFloatSeconds: rounded to the millisecond.
        Ok(AtModifier::Timestamp((secs * 1000.0).round() as i64))
    }

    fn set_anchored_smoothed(&self, e: &mut Expr, anchored: bool) -> Result<()> {
        let name = if anchored { "anchored" } else { "smoothed" };
        let span = e.span();
        let sel = match e {
            Expr::VectorSelector(v) => v,
            Expr::MatrixSelector(m) => &mut m.selector,
            Expr::Subquery(_) => {
                return Err(self.error(
                    span,
                    format!("{name} modifier is not supported for subqueries"),
                ));
            }
            _ => return Err(self.error(span, format!("{name} modifier not implemented"))),
        };
        if anchored {
            sel.anchored = true;
        } else {
            sel.smoothed = true;
        }
        if sel.anchored && sel.smoothed {
            return Err(self.error(
                span,
                "anchored and smoothed modifiers cannot be used together",
            ));
        }
        Ok(())
    }
}

fn binary_op(k: Kind) -> Option<BinaryOp> {
    Some(match k {
        Kind::Add => BinaryOp::Add,
        Kind::Sub => BinaryOp::Sub,
        Kind::Mul => BinaryOp::Mul,
        Kind::Div => BinaryOp::Div,
        Kind::Mod => BinaryOp::Mod,
        Kind::Pow => BinaryOp::Pow,
        Kind::Atan2 => BinaryOp::Atan2,
        Kind::Eqlc => BinaryOp::Eql,
        Kind::Neq => BinaryOp::Neq,
        Kind::Gtr => BinaryOp::Gtr,
        Kind::Lss => BinaryOp::Lss,
        Kind::Gte => BinaryOp::Gte,
        Kind::Lte => BinaryOp::Lte,
        Kind::TrimUpper => BinaryOp::TrimUpper,
        Kind::TrimLower => BinaryOp::TrimLower,
        Kind::Land => BinaryOp::And,
        Kind::Lor => BinaryOp::Or,
        Kind::Lunless => BinaryOp::Unless,
        _ => return None,
    })
}

fn match_type(k: Kind) -> Option<MatchType> {
    Some(match k {
        Kind::Eql => MatchType::Equal,
        Kind::Neq => MatchType::NotEqual,
        Kind::EqlRegex => MatchType::Regex,
        Kind::NeqRegex => MatchType::NotRegex,
        _ => return None,
    })
}

fn duration_precedence(op: DurationOp) -> u8 {
    match op {
        DurationOp::Add | DurationOp::Sub => 1,
        DurationOp::Mul | DurationOp::Div | DurationOp::Mod => 2,
        DurationOp::Pow => 3,
    }
}

fn starts_duration(k: Kind) -> bool {
    matches!(
        k,
        Kind::Number
            | Kind::Duration
            | Kind::Add
            | Kind::Sub
            | Kind::LeftParen
            | Kind::Step
            | Kind::Range
            | Kind::MaxOf
            | Kind::MinOf
    )
}

fn out_of_range(secs: f64) -> bool {
    !(-MAX_DURATION_SECS..=MAX_DURATION_SECS).contains(&secs)
}

/// Seconds to milliseconds as Prometheus does: rounded to nanoseconds, then truncated to ms.
fn seconds_to_ms(secs: f64) -> i64 {
    let ns = (secs * 1e9).round();
    (ns as i64) / 1_000_000
}

/// Tokens that can name a metric at the start of an expression (Prometheus' `metric_identifier`).
fn is_metric_identifier(k: Kind) -> bool {
    matches!(
        k,
        Kind::Identifier
            | Kind::MetricIdentifier
            | Kind::Aggregator(_)
            | Kind::By
            | Kind::Without
            | Kind::Fill
            | Kind::FillLeft
            | Kind::FillRight
            | Kind::Land
            | Kind::Lor
            | Kind::Lunless
            | Kind::Offset
            | Kind::Start
            | Kind::End
            | Kind::Step
            | Kind::Range
            | Kind::Anchored
            | Kind::Smoothed
            | Kind::MaxOf
            | Kind::MinOf
    )
}

/// Tokens accepted as a label name in grouping clauses (Prometheus' `maybe_label`).
fn is_maybe_label(k: Kind) -> bool {
    is_metric_identifier(k)
        || matches!(
            k,
            Kind::Bool
                | Kind::GroupLeft
                | Kind::GroupRight
                | Kind::Ignoring
                | Kind::On
                | Kind::Atan2
        )
}
