//! Prometheus relabeling: `relabel_configs`, `metric_relabel_configs` and
//! `write_relabel_configs` rules and their application to a label set.
//!
//! Owns the rule model (actions, defaults, validation with Prometheus'
//! messages), fully anchored regexes, Go `regexp.Expand` template expansion,
//! the `hashmod` hash, and a label builder with the iteration order of
//! Prometheus' `labels.Builder` (which decides who wins when `labelmap` maps
//! two labels to one name). It does not own where labels come from (targets:
//! [`crate::target`]; samples: the scrape loop).
//!
//! Label names are validated as Prometheus 3 does by default (UTF-8 names:
//! any non-empty string).

use std::fmt;

use ember_index::{Label, Labels};
use md5::{Digest, Md5};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A regex matched against the whole input, as Prometheus' `relabel.Regexp`
/// (compiled as `^(?s:…)$`), keeping the text the user wrote.
#[derive(Clone)]
pub struct Regex {
    re: regex::Regex,
    source: String,
}

impl Regex {
    pub fn new(source: &str) -> Result<Regex, regex::Error> {
        let re = regex::Regex::new(&format!("^(?s:{source})$"))?;
        Ok(Regex {
            re,
            source: source.to_string(),
        })
    }

    /// The pattern as written in the configuration, without the anchors.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// Expands `template` (`$1`, `${1}`, `$name`, `$$`) with this regex's
    /// match of `input`, or `None` if it does not match.
    pub fn expand(&self, template: &str, input: &str) -> Option<String> {
        let caps = self.re.captures(input)?;
        let mut out = String::new();
        expand_go(&self.re, &caps, template, &mut out);
        Some(out)
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Regex) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

impl Default for Regex {
    fn default() -> Regex {
        // `(.*)` always compiles.
        Regex::new(DEFAULT_REGEX).unwrap_or_else(|_| unreachable!("default regex compiles"))
    }
}

impl<'de> Deserialize<'de> for Regex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Regex, D::Error> {
        // A visitor so a bad pattern is reported at its own line.
        struct V;
        impl Visitor<'_> for V {
            type Value = Regex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a regular expression")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Regex, E> {
                Regex::new(s).map_err(|e| {
                    E::custom(format!(
                        "invalid regular expression {s:?}: {}",
                        one_line(&e)
                    ))
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Regex, E> {
                // `regex:` with no value is the empty regex in Prometheus.
                self.visit_str("")
            }
        }
        d.deserialize_any(V)
    }
}

fn one_line(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// Go's `regexp.Expand`: `$$` is a literal `$`; `$name` takes the longest run
/// of letters, digits and `_`; `${name}` is braced; a number (no leading zero)
/// is a group index, anything else a group name; unknown or unmatched groups
/// expand to nothing; a malformed reference leaves the `$` as text.
fn expand_go(re: &regex::Regex, caps: &regex::Captures<'_>, template: &str, out: &mut String) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = extract_name(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let group = match group_number(name) {
            Some(n) => caps.get(n),
            None => re
                .capture_names()
                .position(|n| n == Some(name))
                .and_then(|i| caps.get(i)),
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
    }
    out.push_str(rest);
}

/// The name after a `$`, and the text after it.
fn extract_name(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if braced {
        let after = after.strip_prefix('}')?;
        Some((name, after))
    } else {
        Some((name, after))
    }
}

/// Go reads a name as a group number when it is all ASCII digits, below 1e8,
/// without a leading zero.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || name.len() > 8 {
        return None;
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    name.parse().ok()
}

pub const DEFAULT_REGEX: &str = "(.*)";
pub const DEFAULT_SEPARATOR: &str = ";";
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// What a rule does (Prometheus' `relabel.Action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Case-insensitive, as Prometheus.
    pub fn parse(s: &str) -> Option<Action> {
        let all = [
            Action::Replace,
            Action::Keep,
            Action::Drop,
            Action::KeepEqual,
            Action::DropEqual,
            Action::HashMod,
            Action::LabelMap,
            Action::LabelDrop,
            Action::LabelKeep,
            Action::Lowercase,
            Action::Uppercase,
        ];
        let lower = s.to_lowercase();
        all.into_iter().find(|a| a.as_str() == lower)
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Action;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a relabel action")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Action, E> {
                Action::parse(s).ok_or_else(|| E::custom(format!("unknown relabel action {s:?}")))
            }
        }
        d.deserialize_str(V)
    }
}

/// One relabeling rule, with Prometheus' defaults for fields left out.
#[derive(Clone, Debug, PartialEq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: Regex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> RelabelConfig {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            regex: Regex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action: Action::Replace,
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelabelConfig {
    source_labels: Option<Vec<String>>,
    separator: Option<String>,
    regex: Option<Regex>,
    modulus: Option<u64>,
    target_label: Option<String>,
    replacement: Option<String>,
    action: Option<Action>,
}

impl<'de> Deserialize<'de> for RelabelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RelabelConfig, D::Error> {
        let raw = RawRelabelConfig::deserialize(d)?;
        let def = RelabelConfig::default();
        let cfg = RelabelConfig {
            source_labels: raw.source_labels.unwrap_or_default(),
            separator: raw.separator.unwrap_or(def.separator),
            regex: raw.regex.unwrap_or(def.regex),
            modulus: raw.modulus.unwrap_or(0),
            target_label: raw.target_label.unwrap_or_default(),
            replacement: raw.replacement.unwrap_or(def.replacement),
            action: raw.action.unwrap_or_default(),
        };
        cfg.validate().map_err(de::Error::custom)?;
        Ok(cfg)
    }
}

impl RelabelConfig {
    /// Prometheus' `relabel.Config.Validate` under UTF-8 name validation.
    pub fn validate(&self) -> Result<(), String> {
        use Action::*;
        let a = self.action;
        let name = a.as_str();
        if a == HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(
            a,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && self.target_label.is_empty()
        {
            return Err(format!(
                "relabel configuration for {name} action requires 'target_label' value"
            ));
        }
        if matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual)
            && self.replacement != DEFAULT_REPLACEMENT
        {
            return Err(format!("'replacement' can not be set for {name} action"));
        }
        if a == LabelMap && self.replacement.is_empty() {
            return Err(format!(
                "{:?} is invalid 'replacement' for {name} action",
                self.replacement
            ));
        }
        if matches!(a, DropEqual | KeepEqual)
            && (self.regex.as_str() != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{name} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{name} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }
}

/// A label set under construction, with the semantics of Prometheus'
/// `labels.Builder`: a base set, additions in the order they were made, and
/// deletions; setting an empty value deletes.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    base: Vec<Label>,
    add: Vec<Label>,
    del: Vec<String>,
}

impl Builder {
    pub fn new(base: &Labels) -> Builder {
        Builder {
            base: base.iter().cloned().collect(),
            add: Vec::new(),
            del: Vec::new(),
        }
    }

    pub fn get(&self, name: &str) -> &str {
        if let Some(l) = self.add.iter().find(|l| l.name == name) {
            return &l.value;
        }
        if self.del.iter().any(|d| d == name) {
            return "";
        }
        self.base
            .iter()
            .find(|l| l.name == name)
            .map_or("", |l| l.value.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.del(name);
            return;
        }
        if let Some(l) = self.add.iter_mut().find(|l| l.name == name) {
            l.value = value.to_string();
            return;
        }
        self.add.push(Label::new(name, value));
    }

    pub fn del(&mut self, name: &str) {
        self.add.retain(|l| l.name != name);
        self.del.push(name.to_string());
    }

    /// The current labels in `labels.Builder.Range` order: surviving base
    /// labels (sorted), then additions in insertion order. A snapshot, so the
    /// caller may modify the builder while walking it.
    pub fn snapshot(&self) -> Vec<Label> {
        let mut out: Vec<Label> = self
            .base
            .iter()
            .filter(|l| !self.del.contains(&l.name) && !self.add.iter().any(|a| a.name == l.name))
            .cloned()
            .collect();
        out.extend(self.add.iter().cloned());
        out
    }

    /// The label set. Names are unique by construction, so this cannot fail.
    pub fn labels(&self) -> Labels {
        Labels::new(self.snapshot()).unwrap_or_default()
    }
}

/// Applies `rules` in order to `labels`. `None` means a rule dropped the set;
/// an empty set is also returned as `None`, as a target or series with no
/// labels left cannot be kept.
pub fn process(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    let mut b = Builder::new(labels);
    if !process_builder(&mut b, rules) {
        return None;
    }
    let out = b.labels();
    if out.is_empty() { None } else { Some(out) }
}

/// Applies `rules` to a builder; false if a rule dropped it.
pub fn process_builder(b: &mut Builder, rules: &[RelabelConfig]) -> bool {
    rules.iter().all(|r| apply(r, b))
}

fn apply(cfg: &RelabelConfig, b: &mut Builder) -> bool {
    let val = cfg
        .source_labels
        .iter()
        .map(|n| b.get(n))
        .collect::<Vec<_>>()
        .join(&cfg.separator);
    match cfg.action {
        Action::Drop => return !cfg.regex.is_match(&val),
        Action::Keep => return cfg.regex.is_match(&val),
        Action::DropEqual => return b.get(&cfg.target_label) != val,
        Action::KeepEqual => return b.get(&cfg.target_label) == val,
        Action::Replace => {
            // Prometheus' fast path: with the default regex and no `$` in
            // either template, an empty input sets the replacement verbatim.
            if val.is_empty()
                && cfg.regex.as_str() == DEFAULT_REGEX
                && !cfg.target_label.contains('$')
                && !cfg.replacement.contains('$')
            {
                let (t, r) = (cfg.target_label.clone(), cfg.replacement.clone());
                b.set(&t, &r);
                return true;
            }
            let Some(caps) = cfg.regex.re.captures(&val) else {
                return true;
            };
            let mut target = String::new();
            expand_go(&cfg.regex.re, &caps, &cfg.target_label, &mut target);
            if target.is_empty() {
                // Not a valid label name under UTF-8 validation.
                return true;
            }
            let mut res = String::new();
            expand_go(&cfg.regex.re, &caps, &cfg.replacement, &mut res);
            if res.is_empty() {
                b.del(&target);
            } else {
                b.set(&target, &res);
            }
        }
        Action::Lowercase => b.set(&cfg.target_label, &val.to_lowercase()),
        Action::Uppercase => b.set(&cfg.target_label, &val.to_uppercase()),
        Action::HashMod => {
            let m = hashmod(&val, cfg.modulus).to_string();
            b.set(&cfg.target_label, &m);
        }
        Action::LabelMap => {
            for l in b.snapshot() {
                if let Some(name) = cfg.regex.expand(&cfg.replacement, &l.name) {
                    b.set(&name, &l.value);
                }
            }
        }
        Action::LabelDrop => {
            for l in b.snapshot() {
                if cfg.regex.is_match(&l.name) {
                    b.del(&l.name);
                }
            }
        }
        Action::LabelKeep => {
            for l in b.snapshot() {
                if !cfg.regex.is_match(&l.name) {
                    b.del(&l.name);
                }
            }
        }
    }
    true
}

/// Prometheus' `hashmod`: MD5 of the joined value, its last 8 bytes read as a
/// big-endian u64, modulo `modulus` (0 yields 0; validation refuses it).
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    let sum = Md5::digest(value.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&sum[8..16]);
    u64::from_be_bytes(tail).checked_rem(modulus).unwrap_or(0)
}

#[cfg(test)]
mod tests;
