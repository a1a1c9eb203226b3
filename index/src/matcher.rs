//! Label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.
//!
//! Owns the matching rule for a single label value with Prometheus semantics:
//! regexes are fully anchored and `.` matches newline, and the empty string
//! stands for an absent label (so `job=""` selects series without `job`).
//! It does not own how matchers combine over an index; that is
//! [`crate::MemPostings::postings_for_matchers`]. Pattern analysis lives in
//! `fast_regex`.

use std::fmt;
use std::sync::Arc;

use crate::Error;
use crate::fast_regex::{FastRegex, Glob};
use crate::labels::{write_label_name, write_quoted};

/// The four PromQL matcher operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchType {
    /// The PromQL operator: `=`, `!=`, `=~` or `!~`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }

    /// True for `!=` and `!~`.
    pub fn is_negative(self) -> bool {
        matches!(self, MatchType::NotEqual | MatchType::NotRegex)
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compiled label matcher. Cloning is cheap (the compiled regex is shared).
#[derive(Clone)]
pub struct Matcher {
    kind: MatchType,
    name: String,
    value: String,
    /// `Some` exactly for the regex kinds.
    re: Option<Arc<FastRegex>>,
    /// Cached `matches("")`: consulted for every matcher of every selector.
    matches_empty: bool,
}

impl Matcher {
    /// Builds a matcher, compiling the pattern for `=~`/`!~`. Regexes are
    /// anchored at both ends and `.` matches `\n`, as in Prometheus
    /// (`^(?s:…)$`). An empty name is accepted (it names a label no series
    /// has), as in Prometheus.
    pub fn new(
        kind: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Matcher, Error> {
        let name = name.into();
        let value = value.into();
        let re = match kind {
            MatchType::Regex | MatchType::NotRegex => Some(Arc::new(FastRegex::new(&value)?)),
            MatchType::Equal | MatchType::NotEqual => None,
        };
        let mut m = Matcher {
            kind,
            name,
            value,
            re,
            matches_empty: false,
        };
        m.matches_empty = m.matches("");
        Ok(m)
    }

    /// `name="value"`; infallible.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher::new(MatchType::Equal, name, value).expect("equality matchers cannot fail")
    }

    /// `name!="value"`; infallible.
    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher::new(MatchType::NotEqual, name, value).expect("equality matchers cannot fail")
    }

    /// `name=~"pattern"`.
    pub fn regex(name: impl Into<String>, pattern: impl Into<String>) -> Result<Matcher, Error> {
        Matcher::new(MatchType::Regex, name, pattern)
    }

    /// `name!~"pattern"`.
    pub fn not_regex(
        name: impl Into<String>,
        pattern: impl Into<String>,
    ) -> Result<Matcher, Error> {
        Matcher::new(MatchType::NotRegex, name, pattern)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The literal value, or the regex pattern as written.
    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn kind(&self) -> MatchType {
        self.kind
    }

    /// Whether a label value matches. Pass `""` for a series that lacks the
    /// label: PromQL treats an empty value and an absent label alike.
    pub fn matches(&self, value: &str) -> bool {
        match (self.kind, &self.re) {
            (MatchType::Equal, _) => value == self.value,
            (MatchType::NotEqual, _) => value != self.value,
            (MatchType::Regex, Some(re)) => re.is_match(value),
            (MatchType::NotRegex, Some(re)) => !re.is_match(value),
            (_, None) => unreachable!("regex matchers always carry a compiled pattern"),
        }
    }

    /// Whether this matcher accepts series that do not have the label.
    pub fn matches_empty(&self) -> bool {
        self.matches_empty
    }

    /// The matcher with the opposite operator (`=` ↔ `!=`, `=~` ↔ `!~`),
    /// sharing the compiled pattern.
    pub fn inverse(&self) -> Matcher {
        let kind = match self.kind {
            MatchType::Equal => MatchType::NotEqual,
            MatchType::NotEqual => MatchType::Equal,
            MatchType::Regex => MatchType::NotRegex,
            MatchType::NotRegex => MatchType::Regex,
        };
        Matcher {
            kind,
            name: self.name.clone(),
            value: self.value.clone(),
            re: self.re.clone(),
            matches_empty: !self.matches_empty,
        }
    }

    /// For regex kinds whose pattern matches a small finite set of strings
    /// (literals, literal alternations, `foo(a|b)`…): that set, sorted.
    /// The positive form of the match is membership in this set.
    pub fn set_matches(&self) -> Option<&[String]> {
        match self.re.as_deref() {
            Some(FastRegex::Set(s)) => Some(s),
            _ => None,
        }
    }

    /// For regex kinds: a literal every matching value starts with, if the
    /// pattern has one ("" if not). Lets an index range-scan sorted values.
    pub fn regex_prefix(&self) -> &str {
        match self.re.as_deref() {
            Some(FastRegex::Set(s)) => common_prefix(s),
            Some(FastRegex::Glob(g)) => g.head(),
            _ => "",
        }
    }

    /// True if matching runs the general regex engine (no fast path applies).
    pub fn uses_regex_engine(&self) -> bool {
        matches!(self.re.as_deref(), Some(FastRegex::Regex(_)))
    }

    /// The glob form, when the pattern is literals around `.*`/`.+` runs.
    pub(crate) fn glob(&self) -> Option<&Glob> {
        match self.re.as_deref() {
            Some(FastRegex::Glob(g)) => Some(g),
            _ => None,
        }
    }
}

fn common_prefix(set: &[String]) -> &str {
    // The set is sorted, so the common prefix of all is that of first and last.
    let (Some(first), Some(last)) = (set.first(), set.last()) else {
        return "";
    };
    let n = first
        .char_indices()
        .zip(last.chars())
        .find(|((_, a), b)| a != b)
        .map_or(first.len().min(last.len()), |((i, _), _)| i);
    &first[..n]
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.kind == other.kind && self.name == other.name && self.value == other.value
    }
}

impl Eq for Matcher {}

impl fmt::Display for Matcher {
    /// `name="value"`, `name=~"re"`; names that are not classic identifiers
    /// are quoted (`"service.name"="x"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_label_name(f, &self.name)?;
        f.write_str(self.kind.as_str())?;
        write_quoted(f, &self.value)
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matcher({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchType, v: &str) -> Matcher {
        Matcher::new(kind, "l", v).unwrap()
    }

    #[test]
    fn empty_matching_matchers_accept_absent_labels() {
        use MatchType::*;
        for (kind, v) in [
            (Equal, ""),
            (NotEqual, "x"),
            (Regex, ".*"),
            (Regex, "|a"),
            (Regex, "a?"),
            (NotRegex, ".+"),
            (NotRegex, "a"),
        ] {
            assert!(m(kind, v).matches_empty(), "{kind}{v:?}");
            assert!(m(kind, v).matches(""));
        }
        for (kind, v) in [
            (Equal, "x"),
            (NotEqual, ""),
            (Regex, ".+"),
            (Regex, "a"),
            (NotRegex, ".*"),
            (NotRegex, ""),
        ] {
            assert!(!m(kind, v).matches_empty(), "{kind}{v:?}");
        }
    }

    #[test]
    fn regex_is_fully_anchored() {
        let r = m(MatchType::Regex, "foo");
        assert!(r.matches("foo"));
        assert!(!r.matches("xfoo"));
        assert!(!r.matches("foox"));
        let r = m(MatchType::Regex, "a|b");
        assert!(!r.matches("ab"));
        let r = m(MatchType::Regex, "fo+");
        assert!(r.uses_regex_engine());
        assert!(!r.matches("foox"));
        assert!(!r.matches("xfoo"));
        // Alternation binds looser than the anchors we add.
        let r = m(MatchType::Regex, "a+|b+");
        assert!(!r.matches("ab"));
    }

    #[test]
    fn regex_dot_matches_newline() {
        assert!(m(MatchType::Regex, "a.b").matches("a\nb"));
        assert!(m(MatchType::Regex, ".*").matches("\n"));
        assert!(m(MatchType::Regex, "x[0-9]*.").matches("x12\n"));
    }

    #[test]
    fn not_regex_negates() {
        let r = m(MatchType::NotRegex, "a.*");
        assert!(!r.matches("abc"));
        assert!(r.matches("ba"));
        assert!(r.matches(""));
    }

    #[test]
    fn invalid_regex_is_an_error() {
        let e = Matcher::new(MatchType::Regex, "l", "a(").unwrap_err();
        assert!(matches!(e, Error::InvalidRegex { ref pattern, .. } if pattern == "a("));
        assert!(Matcher::new(MatchType::NotRegex, "l", "*").is_err());
        // Equality values are never parsed.
        assert!(Matcher::new(MatchType::Equal, "l", "a(").is_ok());
    }

    #[test]
    fn fast_paths_skip_the_regex_engine() {
        for p in ["foo", "a|b|c", "foo.*", ".*foo", ".*foo.*", ".*", ".+", ""] {
            assert!(!m(MatchType::Regex, p).uses_regex_engine(), "{p}");
        }
        assert_eq!(
            m(MatchType::Regex, "b|a").set_matches(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        assert_eq!(m(MatchType::Regex, "foo.*").regex_prefix(), "foo");
        assert_eq!(m(MatchType::Regex, "api-(x|y)").regex_prefix(), "api-");
    }

    #[test]
    fn inverse_flips_operator_and_empty_matching() {
        let r = m(MatchType::Regex, "a|");
        let inv = r.inverse();
        assert_eq!(inv.kind(), MatchType::NotRegex);
        assert!(!inv.matches_empty());
        assert!(!inv.matches("a"));
        assert!(inv.matches("b"));
    }

    #[test]
    fn display_uses_promql_syntax() {
        assert_eq!(Matcher::equal("job", "a\"b").to_string(), r#"job="a\"b""#);
        assert_eq!(m(MatchType::NotEqual, "x").to_string(), r#"l!="x""#);
        assert_eq!(m(MatchType::Regex, "a\\d").to_string(), r#"l=~"a\\d""#);
        assert_eq!(m(MatchType::NotRegex, "a").to_string(), r#"l!~"a""#);
        assert_eq!(
            Matcher::equal("service.name", "x").to_string(),
            r#""service.name"="x""#
        );
    }
}
