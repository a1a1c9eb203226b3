//! Fully anchored regex matching with fast paths that skip the regex engine.
//!
//! Owns the analysis of a matcher's pattern (parsed with `regex-syntax` into
//! HIR) into one of three strategies:
//!
//! * [`FastRegex::Set`]: the pattern matches a small finite set of strings
//!   (`foo`, `a|b|c`, `foo(bar|baz)`, `colou?r`, `[ab]x`, `(?i)up`): a sorted
//!   set lookup. The postings index looks each member up directly.
//! * [`FastRegex::Glob`]: literals separated by "any characters" runs
//!   (`foo.*`, `.*foo`, `.*foo.*`, `.*`, `.+`, `a.*b.+c`): substring search.
//!   A literal head lets the postings index range-scan sorted values.
//! * [`FastRegex::Regex`]: anything else, compiled as `^(?s:…)$`.
//!
//! Semantics follow Prometheus: the pattern is parsed with "dot matches
//! newline" and must match the whole value. It does not own matcher types or
//! the empty-means-absent rule; see [`crate::matcher`].

use regex_syntax::hir::{Class, Hir, HirKind, Look};

use crate::Error;

/// Largest finite language turned into a set (Prometheus uses the same bound
/// for its set matches). Beyond this the lookup-per-member strategy stops
/// paying off against a scan.
const MAX_SET: usize = 256;

/// A run of "any character" in a glob: at least `min` characters, no upper
/// bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AnyRun {
    min: usize,
}

/// `head (any_i lit_i)*`: matches values that start with `head`, then, for
/// each part, skip at least `min` characters and find `lit`. The last part's
/// literal is anchored at the end of the value.
#[derive(Clone, Debug)]
pub(crate) struct Glob {
    head: String,
    parts: Vec<(AnyRun, String)>,
}

impl Glob {
    /// Literal every match starts with (may be empty).
    pub(crate) fn head(&self) -> &str {
        &self.head
    }

    /// `.*`: matches every value, including the empty one.
    pub(crate) fn is_match_all(&self) -> bool {
        self.head.is_empty()
            && self.parts.len() == 1
            && self.parts[0] == (AnyRun { min: 0 }, String::new())
    }

    /// `.+`: matches every non-empty value.
    pub(crate) fn is_match_non_empty(&self) -> bool {
        self.head.is_empty()
            && self.parts.len() == 1
            && self.parts[0] == (AnyRun { min: 1 }, String::new())
    }

    fn matches(&self, s: &str) -> bool {
        let Some(rest) = s.strip_prefix(self.head.as_str()) else {
            return false;
        };
        let (last_run, tail) = self.parts.last().expect("glob has at least one run");
        // The final literal is pinned to the end; strip it before the middle
        // search so the middle can never borrow its characters.
        let Some(mid) = rest.strip_suffix(tail.as_str()) else {
            return false;
        };
        let mut pos = 0;
        for (run, lit) in &self.parts[..self.parts.len() - 1] {
            match skip_chars(mid, pos, run.min) {
                Some(p) => pos = p,
                None => return false,
            }
            // Leftmost occurrence is always the best choice: every middle
            // literal is followed by an unbounded run, which can absorb any
            // characters an earlier choice would have left over.
            match mid[pos..].find(lit.as_str()) {
                Some(i) => pos += i + lit.len(),
                None => return false,
            }
        }
        skip_chars(mid, pos, last_run.min).is_some()
    }
}

/// Byte position `n` characters after `pos`, if the string has that many.
fn skip_chars(s: &str, pos: usize, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(pos);
    }
    let mut it = s[pos..].char_indices();
    for _ in 0..n - 1 {
        it.next()?;
    }
    it.next().map(|(i, c)| pos + i + c.len_utf8())
}

/// A compiled, fully anchored pattern.
#[derive(Clone, Debug)]
pub(crate) enum FastRegex {
    /// Sorted, duplicate-free finite language.
    Set(Vec<String>),
    Glob(Glob),
    Regex(regex::Regex),
}

impl FastRegex {
    pub(crate) fn new(pattern: &str) -> Result<FastRegex, Error> {
        let invalid = |message: String| Error::InvalidRegex {
            pattern: pattern.to_string(),
            message,
        };
        let hir = regex_syntax::ParserBuilder::new()
            .dot_matches_new_line(true)
            .build()
            .parse(pattern)
            .map_err(|e| invalid(e.to_string()))?;

        let core = strip_outer_anchors(&hir);
        if let Some(mut set) = finite_language(core, MAX_SET) {
            set.sort_unstable();
            set.dedup();
            return Ok(FastRegex::Set(set));
        }
        if let Some(glob) = glob(core) {
            return Ok(FastRegex::Glob(glob));
        }
        // Compile from the printed HIR, not the raw text: the pattern was
        // validated on its own, and re-printing guarantees that wrapping it in
        // an anchored group cannot change its meaning (e.g. a `(?x)` comment
        // swallowing the closing `)$`).
        let re = regex::Regex::new(&format!("^(?s:{hir})$")).map_err(|e| invalid(e.to_string()))?;
        Ok(FastRegex::Regex(re))
    }

    pub(crate) fn is_match(&self, s: &str) -> bool {
        match self {
            FastRegex::Set(set) => set.binary_search_by(|m| m.as_str().cmp(s)).is_ok(),
            FastRegex::Glob(g) => g.matches(s),
            FastRegex::Regex(re) => re.is_match(s),
        }
    }
}

/// Drops captures around the whole pattern and a leading `^` / trailing `$`
/// (text anchors): the match is anchored at both ends anyway.
fn strip_outer_anchors(hir: &Hir) -> &Hir {
    let mut h = hir;
    while let HirKind::Capture(c) = h.kind() {
        h = &c.sub;
    }
    h
}

fn is_text_anchor(h: &Hir, look: Look) -> bool {
    matches!(h.kind(), HirKind::Look(l) if *l == look)
}

/// The concatenation items of `h` with a leading start-of-text and trailing
/// end-of-text assertion removed (only at the outer level, where they are
/// implied by full anchoring).
fn concat_items(h: &Hir) -> &[Hir] {
    match h.kind() {
        HirKind::Concat(items) => {
            let mut items = items.as_slice();
            if items
                .first()
                .is_some_and(|f| is_text_anchor(f, Look::Start))
            {
                items = &items[1..];
            }
            if items.last().is_some_and(|l| is_text_anchor(l, Look::End)) {
                items = &items[..items.len() - 1];
            }
            items
        }
        HirKind::Look(Look::Start | Look::End) => &[],
        _ => std::slice::from_ref(h),
    }
}

/// All strings `h` matches, if there are at most `limit` of them.
fn finite_language(h: &Hir, limit: usize) -> Option<Vec<String>> {
    product(concat_items(h), limit)
}

fn product(items: &[Hir], limit: usize) -> Option<Vec<String>> {
    let mut acc = vec![String::new()];
    for item in items {
        let next = finite(item, limit)?;
        if acc.len().checked_mul(next.len())? > limit {
            return None;
        }
        acc = acc
            .iter()
            .flat_map(|a| next.iter().map(move |b| format!("{a}{b}")))
            .collect();
    }
    Some(acc)
}

fn finite(h: &Hir, limit: usize) -> Option<Vec<String>> {
    match h.kind() {
        HirKind::Empty => Some(vec![String::new()]),
        HirKind::Literal(lit) => Some(vec![String::from_utf8(lit.0.to_vec()).ok()?]),
        HirKind::Class(Class::Unicode(cls)) => {
            let mut count = 0usize;
            for r in cls.ranges() {
                count += (r.end() as usize) - (r.start() as usize) + 1;
                if count > limit {
                    return None;
                }
            }
            Some(
                cls.ranges()
                    .iter()
                    .flat_map(|r| (r.start()..=r.end()).map(String::from))
                    .collect(),
            )
        }
        HirKind::Class(Class::Bytes(_)) | HirKind::Look(_) => None,
        HirKind::Capture(c) => finite(&c.sub, limit),
        HirKind::Concat(items) => product(items, limit),
        HirKind::Alternation(alts) => {
            let mut out = Vec::new();
            for a in alts {
                out.extend(finite(a, limit)?);
                if out.len() > limit {
                    return None;
                }
            }
            Some(out)
        }
        HirKind::Repetition(rep) => {
            let max = rep.max?;
            // `x?`, `x{2}`, `x{1,3}`: union over counts of x repeated.
            if max > 8 {
                return None;
            }
            let sub = finite(&rep.sub, limit)?;
            let mut out = Vec::new();
            let mut power = vec![String::new()];
            for k in 0..=max {
                if k >= rep.min {
                    out.extend(power.iter().cloned());
                    if out.len() > limit {
                        return None;
                    }
                }
                if k < max {
                    if power.len().checked_mul(sub.len())? > limit {
                        // Longer repetitions only grow; stop if they are needed.
                        return None;
                    }
                    power = power
                        .iter()
                        .flat_map(|a| sub.iter().map(move |b| format!("{a}{b}")))
                        .collect();
                }
            }
            Some(out)
        }
    }
}

/// True for the class `.` becomes under "dot matches newline": every scalar.
fn is_any_char(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Class(Class::Unicode(cls)) => {
            let r = cls.ranges();
            r.len() == 1 && r[0].start() == '\0' && r[0].end() == char::MAX
        }
        _ => false,
    }
}

enum Token {
    Lit(String),
    /// At least `min` characters; at most `min` when `bounded`.
    Any {
        min: usize,
        bounded: bool,
    },
}

fn tokens(h: &Hir, out: &mut Vec<Token>) -> Option<()> {
    match h.kind() {
        HirKind::Empty => {}
        HirKind::Literal(lit) => out.push(Token::Lit(String::from_utf8(lit.0.to_vec()).ok()?)),
        HirKind::Capture(c) => tokens(&c.sub, out)?,
        HirKind::Concat(items) => {
            for i in items {
                tokens(i, out)?;
            }
        }
        _ if is_any_char(h) => out.push(Token::Any {
            min: 1,
            bounded: true,
        }),
        HirKind::Repetition(rep) if is_any_char(&rep.sub) => {
            let min = rep.min as usize;
            match rep.max {
                None => out.push(Token::Any {
                    min,
                    bounded: false,
                }),
                Some(max) if max == rep.min => out.push(Token::Any { min, bounded: true }),
                Some(_) => return None,
            }
        }
        _ => return None,
    }
    Some(())
}

/// Recognises literals separated by unbounded "any character" runs.
fn glob(h: &Hir) -> Option<Glob> {
    let mut toks = Vec::new();
    for item in concat_items(h) {
        tokens(item, &mut toks)?;
    }
    let mut head = String::new();
    let mut parts: Vec<(AnyRun, String, bool)> = Vec::new(); // (run, lit, run_unbounded)
    for t in toks {
        match t {
            Token::Lit(s) => match parts.last_mut() {
                Some((_, lit, _)) => lit.push_str(&s),
                None => head.push_str(&s),
            },
            Token::Any { min, bounded } => match parts.last_mut() {
                // Adjacent runs merge: `.+.*` is "at least one".
                Some((run, lit, unbounded)) if lit.is_empty() => {
                    run.min += min;
                    *unbounded |= !bounded;
                }
                _ => parts.push((AnyRun { min }, String::new(), !bounded)),
            },
        }
    }
    // A run of only `.`s has an upper bound the substring search cannot
    // express; and with no run at all the pattern is finite (handled above).
    if parts.is_empty() || parts.iter().any(|(_, _, unbounded)| !unbounded) {
        return None;
    }
    Some(Glob {
        head,
        parts: parts.into_iter().map(|(run, lit, _)| (run, lit)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(p: &str) -> &'static str {
        match FastRegex::new(p).unwrap() {
            FastRegex::Set(_) => "set",
            FastRegex::Glob(_) => "glob",
            FastRegex::Regex(_) => "regex",
        }
    }

    #[test]
    fn literal_and_alternations_become_sets() {
        for p in [
            "foo",
            "",
            "a|b|c",
            "foo|foobar",
            "(foo|bar)",
            "x(a|b)y",
            "colou?r",
            "[ab]c",
            "^foo$",
            "(?i)up",
        ] {
            assert_eq!(kind(p), "set", "{p}");
        }
        let FastRegex::Set(s) = FastRegex::new("b|a|b|ab").unwrap() else {
            panic!()
        };
        assert_eq!(s, ["a", "ab", "b"]);
    }

    #[test]
    fn wildcard_shapes_become_globs() {
        for p in [
            ".*", ".+", "foo.*", ".*foo", ".*foo.*", "a.*b", "a.+b.*c", "(foo).*", "^foo.*$",
            ".{2,}x",
        ] {
            assert_eq!(kind(p), "glob", "{p}");
        }
        assert!(matches!(FastRegex::new(".*").unwrap(), FastRegex::Glob(g) if g.is_match_all()));
        assert!(
            matches!(FastRegex::new(".+").unwrap(), FastRegex::Glob(g) if g.is_match_non_empty())
        );
    }

    #[test]
    fn everything_else_uses_the_engine() {
        for p in [
            "a+", "[a-z]+", "foo.", ".*(a|b)", "\\d{3}", "(?-s:.*)", "a\\b",
        ] {
            assert_eq!(kind(p), "regex", "{p}");
        }
    }

    #[test]
    fn dot_matches_newline_as_in_prometheus() {
        let g = FastRegex::new("a.*").unwrap();
        assert!(g.is_match("a\nb"));
        let r = FastRegex::new("a.[b]+").unwrap();
        assert!(matches!(r, FastRegex::Regex(_)));
        assert!(r.is_match("a\nb"));
    }

    #[test]
    fn extended_mode_comment_cannot_escape_anchoring() {
        // Wrapping the raw text would put `)$` inside the comment.
        let r = FastRegex::new("(?x)fo+ # comment").unwrap();
        assert!(r.is_match("foo"));
        assert!(!r.is_match("foox"));
    }

    #[test]
    fn glob_respects_minimum_lengths_and_anchors() {
        let g = FastRegex::new("a.+a").unwrap();
        assert!(!g.is_match("aa"));
        assert!(g.is_match("aba"));
        let g = FastRegex::new("ab.*ba").unwrap();
        assert!(!g.is_match("aba"), "head and tail must not overlap");
        assert!(g.is_match("abba"));
        let g = FastRegex::new(".+é.+").unwrap();
        assert!(g.is_match("éé\u{1F600}"));
        assert!(!g.is_match("éé"));
    }
}
