//! `label_replace` and `label_join` on one series' labels.
//!
//! Owns: argument validation with Prometheus' error texts, RE2 matching of the whole source value
//! (`^(?s:regex)$`), Go's `$1`/`${name}` template expansion, and writing the destination label
//! (an empty result removes it, since an empty value means "absent"). Does not own iterating over
//! series, keeping `__name__` when it is the destination, or rejecting duplicate label sets
//! afterwards (the evaluator's).

use ember_index::{Label, Labels};
use regex::Regex;

use super::FunctionError;
use super::goregex;

/// Prometheus 3 validates label names with the UTF-8 scheme: any non-empty (UTF-8) string.
pub fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// `labels` with `name` set to `value`, or removed when `value` is empty.
fn with_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut pairs: Vec<Label> = labels.iter().filter(|l| l.name != name).cloned().collect();
    pairs.push(Label::new(name, value));
    Labels::new(pairs).expect("names were valid and unique, and `name` is non-empty")
}

/// A validated `label_replace(v, dst, replacement, src, regex)` call, applied per series.
#[derive(Clone, Debug)]
pub struct LabelReplace {
    dst: String,
    replacement: String,
    src: String,
    regex: Regex,
}

impl LabelReplace {
    /// Compiles the regex (first, as Prometheus checks it first) and validates `dst`. Both
    /// errors fail the query even if the vector is empty.
    pub fn new(
        dst: &str,
        replacement: &str,
        src: &str,
        regex: &str,
    ) -> Result<LabelReplace, FunctionError> {
        let compiled = goregex::compile_anchored(regex)
            .map_err(|_| FunctionError::InvalidRegex(regex.to_string()))?;
        if !is_valid_label_name(dst) {
            return Err(FunctionError::InvalidDestinationLabel {
                function: "label_replace",
                name: dst.to_string(),
            });
        }
        Ok(LabelReplace {
            dst: dst.to_string(),
            replacement: replacement.to_string(),
            src: src.to_string(),
            regex: compiled,
        })
    }

    /// The new labels when the regex matches the whole `src` value (a missing label is the
    /// empty string), `None` when it does not (the series is left unchanged).
    pub fn apply(&self, labels: &Labels) -> Option<Labels> {
        let value = labels.get(&self.src).unwrap_or("");
        let caps = self.regex.captures(value)?;
        let result = goregex::expand(&self.replacement, &self.regex, &caps);
        Some(with_label(labels, &self.dst, &result))
    }
}

/// `label_replace` on one label set: the changed labels, or the same labels if the regex does
/// not match.
pub fn label_replace(
    labels: &Labels,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &str,
) -> Result<Labels, FunctionError> {
    let call = LabelReplace::new(dst, replacement, src, regex)?;
    Ok(call.apply(labels).unwrap_or_else(|| labels.clone()))
}

/// A validated `label_join(v, dst, separator, src...)` call, applied per series.
#[derive(Clone, Debug)]
pub struct LabelJoin {
    dst: String,
    separator: String,
    srcs: Vec<String>,
}

impl LabelJoin {
    /// Validates the source names (first) and `dst`.
    pub fn new(dst: &str, separator: &str, srcs: &[&str]) -> Result<LabelJoin, FunctionError> {
        if let Some(bad) = srcs.iter().find(|s| !is_valid_label_name(s)) {
            return Err(FunctionError::InvalidSourceLabel(bad.to_string()));
        }
        if !is_valid_label_name(dst) {
            return Err(FunctionError::InvalidDestinationLabel {
                function: "label_join",
                name: dst.to_string(),
            });
        }
        Ok(LabelJoin {
            dst: dst.to_string(),
            separator: separator.to_string(),
            srcs: srcs.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// The labels with `dst` set to the source values (missing ones empty) joined by the
    /// separator; with no sources, or only empty values and an empty separator, `dst` is removed.
    pub fn apply(&self, labels: &Labels) -> Labels {
        let values: Vec<&str> = self
            .srcs
            .iter()
            .map(|s| labels.get(s).unwrap_or(""))
            .collect();
        with_label(labels, &self.dst, &values.join(&self.separator))
    }
}

/// `label_join` on one label set.
pub fn label_join(
    labels: &Labels,
    dst: &str,
    separator: &str,
    srcs: &[&str],
) -> Result<Labels, FunctionError> {
    Ok(LabelJoin::new(dst, separator, srcs)?.apply(labels))
}
