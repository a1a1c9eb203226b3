//! Label sets: the identity of a series.
//!
//! Owns [`Label`] and [`Labels`]: validation (non-empty, duplicate-free names;
//! UTF-8), canonical ordering (sorted by name, Prometheus' `labels.Compare`
//! order between sets), the PromQL rule that an empty value is the same as an
//! absent label, a run- and platform-stable hash, and the Prometheus text form.
//! It does not own interning or any series registry; callers that keep many
//! sets alive decide how to share strings.

use std::fmt;

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::Error;

/// Name of the label carrying the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Separator byte used by [`Labels::stable_hash`]. 0xff never occurs in UTF-8,
/// so `{a="bc"}` and `{ab="c"}` cannot produce the same byte stream.
const HASH_SEP: u8 = 0xff;

/// One `name="value"` pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    // Field order matters: the derived `Ord` compares name first, then value,
    // which is exactly the per-pair step of Prometheus' `labels.Compare`.
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A validated label set, sorted by name, with unique non-empty names and no
/// empty values.
///
/// The derived ordering is lexicographic over the sorted pairs and, when one
/// set is a prefix of the other, puts the shorter first: Prometheus'
/// `labels.Compare`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels {
    // A boxed slice rather than a Vec: label sets are immutable once built, and
    // the head keeps one per series, so neither spare capacity nor the
    // capacity word is worth paying for.
    labels: Box<[Label]>,
}

impl Labels {
    /// Builds a label set: sorts by name, drops labels whose value is empty
    /// (in PromQL an empty value means "absent"), and rejects empty names and
    /// duplicate names. Duplicates are detected before empty values are
    /// dropped, so `a=""` next to `a="x"` is still an error: the input was
    /// malformed, whichever pair would have survived.
    pub fn new(mut labels: Vec<Label>) -> Result<Labels, Error> {
        if labels.iter().any(|l| l.name.is_empty()) {
            return Err(Error::EmptyLabelName);
        }
        // Decoders (block index, WAL, remote write) mostly hand over sets that are already
        // strictly sorted, which also rules out duplicates: check that first and skip the sort.
        if !labels.windows(2).all(|w| w[0].name < w[1].name) {
            // Sorting by name alone makes duplicates adjacent; the stable sort is
            // irrelevant for correctness because duplicates are an error anyway.
            labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
            if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
                return Err(Error::DuplicateLabelName(w[0].name.clone()));
            }
        }
        labels.retain(|l| !l.value.is_empty());
        Ok(Labels {
            labels: labels.into_boxed_slice(),
        })
    }

    /// Builds a label set from `(name, value)` pairs; see [`Labels::new`].
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Labels, Error> {
        Labels::new(
            pairs
                .into_iter()
                .map(|(n, v)| Label::new(n.as_ref(), v.as_ref()))
                .collect(),
        )
    }

    /// Builds a label set from raw byte pairs, as read by the WAL and
    /// remote-write decoders, rejecting anything that is not UTF-8.
    pub fn from_bytes_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Labels, Error> {
        let mut labels = Vec::new();
        for (n, v) in pairs {
            let name =
                std::str::from_utf8(n).map_err(|_| Error::InvalidUtf8 { what: "label name" })?;
            let value = std::str::from_utf8(v).map_err(|_| Error::InvalidUtf8 {
                what: "label value",
            })?;
            labels.push(Label::new(name, value));
        }
        Labels::new(labels)
    }

    /// The empty label set.
    pub fn empty() -> Labels {
        Labels::default()
    }

    /// Value of label `name`, or `None` if the set has no such label.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.labels[i].value.as_str())
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    /// Labels in name order, as a slice.
    pub fn as_slice(&self) -> &[Label] {
        &self.labels
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A copy without the labels named in `names` (e.g. dropping `__name__`
    /// after a PromQL function).
    pub fn without(&self, names: &[&str]) -> Labels {
        Labels {
            labels: self
                .labels
                .iter()
                .filter(|l| !names.contains(&l.name.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// A copy with only the labels named in `names`.
    pub fn keep_only(&self, names: &[&str]) -> Labels {
        Labels {
            labels: self
                .labels
                .iter()
                .filter(|l| names.contains(&l.name.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// xxh3-64 over `name 0xff value 0xff …` in name order. The result depends
    /// only on the labels' bytes, so it is identical across runs, processes and
    /// platforms and may be persisted or used for sharding.
    pub fn stable_hash(&self) -> u64 {
        stable_hash_of_pairs(
            self.labels
                .iter()
                .map(|l| (l.name.as_bytes(), l.value.as_bytes())),
        )
    }
}

/// [`Labels::stable_hash`] of the set these raw `(name, value)` pairs spell, without building it: pairs
/// with an empty value are skipped, as [`Labels::new`] drops them. For pairs already in name order with
/// unique names, the result equals the hash of the validated set, which lets decoders find a known series
/// from the bytes they received.
pub fn stable_hash_of_pairs<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone) -> u64 {
    // Most label sets are well under this size: hash them in one shot from
    // a stack buffer (cheaper than streaming state setup, no allocation).
    const STACK: usize = 512;
    let pairs = pairs.filter(|(_, v)| !v.is_empty());
    let total: usize = pairs.clone().map(|(n, v)| n.len() + v.len() + 2).sum();
    if total <= STACK {
        let mut buf = [0u8; STACK];
        let mut n = 0;
        for (name, value) in pairs {
            for part in [name, value] {
                buf[n..n + part.len()].copy_from_slice(part);
                n += part.len();
                buf[n] = HASH_SEP;
                n += 1;
            }
        }
        xxh3_64(&buf[..n])
    } else {
        // Streaming xxh3 yields the same digest as one-shot over the
        // concatenation, so the two paths agree.
        let mut h = Xxh3::new();
        for (name, value) in pairs {
            h.update(name);
            h.update(&[HASH_SEP]);
            h.update(value);
            h.update(&[HASH_SEP]);
        }
        h.digest()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.labels.iter()
    }
}

/// True if `s` is a name that needs no quoting in the classic (pre-UTF-8)
/// Prometheus syntax: `[a-zA-Z_][a-zA-Z0-9_]*`, plus `:` for metric names.
fn is_legacy_name(s: &str, allow_colon: bool) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || (allow_colon && c == ':') => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':'))
}

/// Writes `s` as a double-quoted string with Go-`strconv.Quote`-like escapes,
/// so the output parses back in PromQL.
pub(crate) fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\x{:02x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Writes a label name, quoting it when it is not a classic identifier
/// (Prometheus 3 allows any UTF-8 name).
pub(crate) fn write_label_name(f: &mut impl fmt::Write, name: &str) -> fmt::Result {
    if is_legacy_name(name, false) {
        f.write_str(name)
    } else {
        write_quoted(f, name)
    }
}

impl fmt::Display for Labels {
    /// `up{instance="a", job="b"}`; `{a="b"}` without a metric name; a metric
    /// name that is not a classic identifier goes inside the braces quoted,
    /// `{"my.metric", a="b"}`, as in Prometheus 3.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        let mut first = true;
        match name {
            Some(n) if is_legacy_name(n, true) => {
                f.write_str(n)?;
                f.write_str("{")?;
            }
            Some(n) => {
                f.write_str("{")?;
                write_quoted(f, n)?;
                first = false;
            }
            None => f.write_str("{")?,
        }
        for l in self.labels.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write_label_name(f, &l.name)?;
            f.write_str("=")?;
            write_quoted(f, &l.value)?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn new_sorts_by_name() {
        let l = ls(&[("job", "x"), ("__name__", "up"), ("a", "1")]);
        let names: Vec<_> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "a", "job"]);
    }

    #[test]
    fn new_drops_empty_values() {
        let l = ls(&[("a", ""), ("b", "x")]);
        assert_eq!(l.len(), 1);
        assert_eq!(l.get("a"), None);
        assert_eq!(l, ls(&[("b", "x")]));
    }

    #[test]
    fn new_rejects_empty_name() {
        assert_eq!(Labels::from_pairs([("", "x")]), Err(Error::EmptyLabelName));
        // Even with an empty value: the name is malformed regardless.
        assert_eq!(Labels::from_pairs([("", "")]), Err(Error::EmptyLabelName));
    }

    #[test]
    fn new_rejects_duplicate_names_even_if_one_value_is_empty() {
        assert_eq!(
            Labels::from_pairs([("a", "1"), ("b", "2"), ("a", "3")]),
            Err(Error::DuplicateLabelName("a".into()))
        );
        assert_eq!(
            Labels::from_pairs([("a", ""), ("a", "3")]),
            Err(Error::DuplicateLabelName("a".into()))
        );
    }

    #[test]
    fn from_bytes_pairs_rejects_invalid_utf8_naming_the_field() {
        let bad: &[u8] = &[0x66, 0xff];
        assert_eq!(
            Labels::from_bytes_pairs([(bad, b"v".as_slice())]),
            Err(Error::InvalidUtf8 { what: "label name" })
        );
        assert_eq!(
            Labels::from_bytes_pairs([(b"n".as_slice(), bad)]),
            Err(Error::InvalidUtf8 {
                what: "label value"
            })
        );
        let ok = Labels::from_bytes_pairs([(b"n".as_slice(), "vä".as_bytes())]).unwrap();
        assert_eq!(ok.get("n"), Some("vä"));
    }

    #[test]
    fn utf8_label_names_are_accepted() {
        let l = ls(&[("näme.with dots", "v")]);
        assert_eq!(l.get("näme.with dots"), Some("v"));
    }

    #[test]
    fn ordering_matches_prometheus_compare() {
        // Pairwise name, then value; a prefix sorts first.
        assert!(ls(&[("a", "1")]) < ls(&[("a", "2")]));
        assert!(ls(&[("a", "2")]) < ls(&[("b", "1")]));
        assert!(ls(&[("a", "1")]) < ls(&[("a", "1"), ("b", "1")]));
        assert!(ls(&[("a", "1"), ("c", "1")]) > ls(&[("a", "1"), ("b", "9")]));
        assert!(Labels::empty() < ls(&[("a", "1")]));
    }

    #[test]
    fn stable_hash_is_a_fixed_function_of_the_bytes() {
        // Pinned value: xxh3_64 of the documented byte layout. If this changes,
        // persisted hashes and shard assignment change with it.
        let l = ls(&[("b", "2"), ("a", "1")]);
        assert_eq!(l.stable_hash(), xxh3_64(b"a\xff1\xffb\xff2\xff"));
        assert_eq!(Labels::empty().stable_hash(), xxh3_64(b""));
        // Separator prevents boundary ambiguity.
        assert_ne!(
            ls(&[("a", "bc")]).stable_hash(),
            ls(&[("ab", "c")]).stable_hash()
        );
    }

    #[test]
    fn stable_hash_streaming_path_agrees_with_one_shot() {
        let long = "x".repeat(2000);
        let l = ls(&[("a", long.as_str()), ("b", "y")]);
        let mut bytes = Vec::new();
        for lab in l.iter() {
            bytes.extend_from_slice(lab.name.as_bytes());
            bytes.push(0xff);
            bytes.extend_from_slice(lab.value.as_bytes());
            bytes.push(0xff);
        }
        assert_eq!(l.stable_hash(), xxh3_64(&bytes));
    }

    #[test]
    fn hash_of_raw_pairs_skips_empty_values_like_labels_new() {
        let raw: [(&[u8], &[u8]); 3] = [(b"a", b"1"), (b"b", b""), (b"c", b"3")];
        let l = ls(&[("a", "1"), ("b", ""), ("c", "3")]);
        assert_eq!(stable_hash_of_pairs(raw.iter().copied()), l.stable_hash());
        let long = "x".repeat(2000);
        let raw: [(&[u8], &[u8]); 2] = [(b"a", long.as_bytes()), (b"b", b"")];
        let l = ls(&[("a", long.as_str())]);
        assert_eq!(stable_hash_of_pairs(raw.iter().copied()), l.stable_hash());
    }

    #[test]
    fn display_puts_metric_name_outside_braces() {
        let l = ls(&[("__name__", "up"), ("job", "b"), ("instance", "a")]);
        assert_eq!(l.to_string(), r#"up{instance="a", job="b"}"#);
        assert_eq!(ls(&[("__name__", "up")]).to_string(), "up{}");
        assert_eq!(ls(&[("a", "b")]).to_string(), r#"{a="b"}"#);
        assert_eq!(Labels::empty().to_string(), "{}");
    }

    #[test]
    fn display_escapes_values_and_quotes_utf8_names() {
        let l = ls(&[("a", "x\"y\\z\nw")]);
        assert_eq!(l.to_string(), r#"{a="x\"y\\z\nw"}"#);
        let l = ls(&[("__name__", "my.metric"), ("service.name", "s")]);
        assert_eq!(l.to_string(), r#"{"my.metric", "service.name"="s"}"#);
    }

    #[test]
    fn without_and_keep_only() {
        let l = ls(&[("__name__", "up"), ("job", "b"), ("instance", "a")]);
        assert_eq!(
            l.without(&["__name__"]),
            ls(&[("job", "b"), ("instance", "a")])
        );
        assert_eq!(l.keep_only(&["job"]), ls(&[("job", "b")]));
    }
}
