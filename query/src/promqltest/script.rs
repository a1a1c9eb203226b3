//! The promqltest script grammar: a file becomes a list of [`Command`]s, each carrying its
//! 1-based line number and original text so failures can be reported as `file:line: command`.
//!
//! Owns: commands (`load`, `load_with_nhcb`, `clear`, `eval instant`, `eval range`, the legacy
//! `eval_fail`/`eval_warn`/`eval_info`/`eval_ordered` forms), the lines of an eval block
//! (`expect …`, `expect string`, `expect range vector`, `expected_fail_message`/`_regexp`,
//! expected series and scalar lines), and validation of their combinations.
//! Does not own: series notation (`series`), running or comparing (`runner`, `compare`), and the
//! PromQL expression itself — it is kept as text; Prometheus also syntax-checks it while parsing
//! the script, which here only happens when the engine runs it.
//!
//! Block structure follows Prometheus exactly: lines are trimmed, a line starting with `#` is a
//! comment and — as in Prometheus — counts as a blank line, and a blank line ends a `load` or
//! `eval` block. A scalar expected line, `expected_fail_message` and `expected_fail_regexp` also
//! end their block.

use std::sync::LazyLock;

use ember_index::Labels;
use regex::Regex;

use super::labels::{parse_metric_prefix, unquote};
use super::series::{
    SeqValue, expand_start_timestamps, parse_duration, parse_go_number, parse_series_line,
};

/// A script parse error, displayed as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ScriptError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// A parsed script.
#[derive(Debug)]
pub struct Script {
    pub name: String,
    pub commands: Vec<Command>,
}

/// One command with where it came from.
#[derive(Debug)]
pub struct Command {
    /// 1-based line of the command's first line.
    pub line: usize,
    /// The command line as written (trimmed), e.g. `eval instant at 1m foo`.
    pub text: String,
    pub kind: CommandKind,
}

#[derive(Debug)]
pub enum CommandKind {
    Clear,
    Load(Load),
    Eval(Box<Eval>),
}

/// `load <interval>` (or `load_with_nhcb <interval>`) and its series.
#[derive(Debug)]
pub struct Load {
    pub interval_ms: i64,
    /// `load_with_nhcb`: Prometheus also derives native histograms with custom buckets from the
    /// classic histogram series; Ember has no native histograms, so the runner skips what follows.
    pub with_nhcb: bool,
    pub series: Vec<LoadSeries>,
}

#[derive(Debug)]
pub struct LoadSeries {
    pub line: usize,
    pub labels: Labels,
    /// Position `i` is at `i * interval_ms`.
    pub values: Vec<SeqValue>,
    /// Offsets (ms, relative to each sample) from a preceding `metric@st …` line.
    pub start_timestamps: Option<Vec<Option<i64>>>,
}

/// A time grid: `from <start> to <end> step <step>`, all in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Instant { t_ms: i64 },
    Range(Grid),
}

/// How an error message or annotation is matched.
#[derive(Debug, Clone)]
pub enum TextMatch {
    /// No `msg:`/`regex:` given: anything matches.
    Any,
    /// `msg:` — exact equality (after trimming the expectation).
    Exact(String),
    /// `regex:` — an unanchored search, like Go's `MatchString`.
    Regex(Regex),
}

impl TextMatch {
    pub fn matches(&self, s: &str) -> bool {
        match self {
            TextMatch::Any => true,
            TextMatch::Exact(m) => m == s,
            TextMatch::Regex(r) => r.is_match(s),
        }
    }
}

impl std::fmt::Display for TextMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextMatch::Any => f.write_str("anything"),
            TextMatch::Exact(m) => write!(f, "message {m:?}"),
            TextMatch::Regex(r) => write!(f, "pattern {:?}", r.as_str()),
        }
    }
}

/// What an eval expects of one annotation kind (warnings or infos).
#[derive(Debug, Clone, Default)]
pub struct AnnotationRule {
    /// Legacy `eval_warn`/`eval_info`: at least one must be present.
    pub required: bool,
    /// `expect warn …` lines: each must match some annotation, and then every annotation must
    /// match some line.
    pub matchers: Vec<TextMatch>,
    /// `expect no_warn`/`no_info`: none may be present.
    pub forbidden: bool,
}

/// The expected result lines.
#[derive(Debug, Clone)]
pub enum Expected {
    /// Series lines (possibly none: an empty result).
    Series(Vec<ExpectedSeries>),
    /// A bare number line: the query returns a scalar.
    Scalar(f64),
}

#[derive(Debug, Clone)]
pub struct ExpectedSeries {
    pub line: usize,
    pub labels: Labels,
    pub values: Vec<SeqValue>,
}

/// An `eval` command.
#[derive(Debug, Clone)]
pub struct Eval {
    pub expr: String,
    pub query: Query,
    /// `Some` when the query must fail; every matcher must accept the error message.
    pub fail: Option<Vec<TextMatch>>,
    pub warn: AnnotationRule,
    pub info: AnnotationRule,
    pub ordered: bool,
    pub expected: Expected,
    /// `expect string "…"`.
    pub expected_string: Option<String>,
    /// `expect range vector from … to … step …`: an instant query returning a range vector,
    /// whose points are laid out on this grid. Prometheus then evaluates at the grid's end.
    pub range_vector: Option<Grid>,
}

impl Eval {
    /// Whether any expected value is a native histogram.
    pub fn expects_histograms(&self) -> bool {
        match &self.expected {
            Expected::Series(s) => s
                .iter()
                .any(|s| s.values.iter().any(|v| matches!(v, SeqValue::Histogram))),
            Expected::Scalar(_) => false,
        }
    }
}

static EVAL_INSTANT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$").unwrap()
});
static EVAL_RANGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
    )
    .unwrap()
});
static LOAD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^load(?:_(with_nhcb))?\s+(.+?)$").unwrap());
static EXPECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
        .unwrap()
});
static EXPECT_RANGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$").unwrap()
});
/// Functions whose value depends on the query's range, so the range-mode cross-check of an
/// instant query cannot apply.
pub(crate) static QUERY_CONTEXT_FUNCS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(start|end|range|step)\(\)").unwrap());

/// Parses a script. `name` is used in error messages (usually the file path).
pub fn parse_script(name: &str, text: &str) -> Result<Script, ScriptError> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') { "" } else { l }
        })
        .collect();
    let mut p = Parser {
        name,
        lines: &lines,
        i: 0,
    };
    let mut commands = Vec::new();
    while p.i < lines.len() {
        let line = lines[p.i];
        if line.is_empty() {
            p.i += 1;
            continue;
        }
        let start = p.i;
        let first = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let kind = if first == "clear" {
            if line != "clear" {
                return Err(p.err(start, format!("unexpected text after clear: {line:?}")));
            }
            p.i += 1;
            CommandKind::Clear
        } else if first.starts_with("load") {
            CommandKind::Load(p.load()?)
        } else if first.starts_with("eval") {
            CommandKind::Eval(Box::new(p.eval()?))
        } else {
            return Err(p.err(start, format!("invalid command {line:?}")));
        };
        commands.push(Command {
            line: start + 1,
            text: line.to_string(),
            kind,
        });
    }
    Ok(Script {
        name: name.to_string(),
        commands,
    })
}

struct Parser<'a> {
    name: &'a str,
    lines: &'a [&'a str],
    /// Index of the next unread line.
    i: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, idx: usize, message: impl Into<String>) -> ScriptError {
        ScriptError {
            file: self.name.to_string(),
            line: idx + 1,
            message: message.into(),
        }
    }

    /// The next line of the current block, if the block goes on.
    fn next_body_line(&mut self) -> Option<(usize, &'a str)> {
        let idx = self.i;
        let line = *self.lines.get(idx)?;
        if line.is_empty() {
            return None;
        }
        self.i += 1;
        Some((idx, line))
    }

    fn load(&mut self) -> Result<Load, ScriptError> {
        let head = self.i;
        let line = self.lines[head];
        self.i += 1;
        let caps = LOAD.captures(line).ok_or_else(|| {
            self.err(
                head,
                "invalid load command, expected `load[_with_nhcb] <interval>`",
            )
        })?;
        let interval_ms = parse_duration(&caps[2])
            .map_err(|e| self.err(head, format!("invalid load interval: {e}")))?;
        if interval_ms <= 0 {
            return Err(self.err(head, "load interval must be positive"));
        }
        let mut load = Load {
            interval_ms,
            with_nhcb: caps.get(1).is_some(),
            series: Vec::new(),
        };
        // A `metric@st …` line waits for the sample line of the same series that must follow.
        let mut pending_st: Option<(usize, Labels, Vec<Option<i64>>)> = None;
        while let Some((idx, line)) = self.next_body_line() {
            let (labels, rest) = parse_metric_prefix(line).map_err(|e| {
                self.err(idx, format!("invalid series {line:?}: {e}{}", hint(line)))
            })?;
            if let Some(st) = rest.strip_prefix("@st") {
                if let Some((st_idx, ..)) = pending_st {
                    return Err(self.err(st_idx, "@st line has no following sample line"));
                }
                if !st.starts_with(char::is_whitespace) {
                    return Err(self.err(idx, "expected whitespace after @st"));
                }
                let offsets = expand_start_timestamps(st).map_err(|e| self.err(idx, e))?;
                pending_st = Some((idx, labels, offsets));
                continue;
            }
            let (labels, values) = parse_series_line(line).map_err(|e| {
                self.err(idx, format!("invalid series {line:?}: {e}{}", hint(line)))
            })?;
            let start_timestamps = match pending_st.take() {
                None => None,
                Some((st_idx, st_labels, offsets)) => {
                    if st_labels != labels {
                        return Err(self.err(
                            st_idx,
                            "@st series does not match the following sample line",
                        ));
                    }
                    if offsets.len() != values.len() {
                        return Err(self.err(
                            st_idx,
                            format!(
                                "@st line has {} values but the sample line has {}",
                                offsets.len(),
                                values.len()
                            ),
                        ));
                    }
                    Some(offsets)
                }
            };
            let series = LoadSeries {
                line: idx + 1,
                labels,
                values,
                start_timestamps,
            };
            // Within one load a repeated series replaces the earlier definition, as Prometheus'
            // per-load map keyed by label hash does.
            match load.series.iter_mut().find(|s| s.labels == series.labels) {
                Some(existing) => *existing = series,
                None => load.series.push(series),
            }
        }
        if let Some((st_idx, ..)) = pending_st {
            return Err(self.err(st_idx, "@st line has no following sample line"));
        }
        Ok(load)
    }

    fn eval(&mut self) -> Result<Eval, ScriptError> {
        let head = self.i;
        let line = self.lines[head];
        self.i += 1;
        let bad_time = |what: &str, e: String| self.err(head, format!("invalid {what}: {e}"));
        let (modifier, expr, query) = if let Some(c) = EVAL_INSTANT.captures(line) {
            let at = c.get(2).ok_or_else(|| {
                self.err(
                    head,
                    "eval instant needs `at <time>` followed by an expression",
                )
            })?;
            let t_ms = parse_duration(at.as_str()).map_err(|e| bad_time("timestamp", e))?;
            (c.get(1), c.get(3), Query::Instant { t_ms })
        } else if let Some(c) = EVAL_RANGE.captures(line) {
            let grid = self.grid(head, &c[2], &c[3], &c[4])?;
            (c.get(1), c.get(5), Query::Range(grid))
        } else {
            return Err(self.err(
                head,
                "invalid eval command, expected `eval[_fail|_warn|_info|_ordered] instant at <time> \
                 <expr>` or `eval[_fail|_warn|_info] range from <time> to <time> step <duration> <expr>`",
            ));
        };
        let is_instant = matches!(query, Query::Instant { .. });
        let mut eval = Eval {
            expr: expr.map_or("", |m| m.as_str()).to_string(),
            query,
            fail: None,
            warn: AnnotationRule::default(),
            info: AnnotationRule::default(),
            ordered: false,
            expected: Expected::Series(Vec::new()),
            expected_string: None,
            range_vector: None,
        };
        match modifier.map(|m| m.as_str()) {
            Some("fail") => eval.fail = Some(Vec::new()),
            Some("warn") => eval.warn.required = true,
            Some("info") => eval.info.required = true,
            Some("ordered") => eval.ordered = true,
            _ => {}
        }
        let legacy_fail = eval.fail.is_some();
        let mut expect_fail_lines = 0;
        let mut series: Vec<ExpectedSeries> = Vec::new();
        while let Some((idx, line)) = self.next_body_line() {
            let legacy_msg = line.strip_prefix("expected_fail_message");
            let legacy_re = line.strip_prefix("expected_fail_regexp");
            if legacy_fail && (legacy_msg.is_some() || legacy_re.is_some()) {
                let m = match (legacy_msg, legacy_re) {
                    (Some(m), _) => TextMatch::Exact(m.trim().to_string()),
                    (_, Some(r)) => TextMatch::Regex(Regex::new(r.trim()).map_err(|e| {
                        self.err(idx, format!("invalid expected_fail_regexp: {e}"))
                    })?),
                    _ => unreachable!(),
                };
                eval.fail.get_or_insert_with(Vec::new).push(m);
                break; // As in Prometheus, this line ends the block.
            }
            if line.starts_with("expect range vector") {
                if !is_instant {
                    return Err(
                        self.err(idx, "expect range vector is only valid for instant queries")
                    );
                }
                let c = EXPECT_RANGE.captures(line).ok_or_else(|| {
                    self.err(
                        idx,
                        "expected `expect range vector from <time> to <time> step <duration>`",
                    )
                })?;
                eval.range_vector = Some(self.grid(idx, &c[1], &c[2], &c[3])?);
                continue;
            }
            if line.starts_with("expect string") {
                if !is_instant {
                    return Err(self.err(idx, "expect string is only valid for instant queries"));
                }
                eval.expected_string = Some(expect_string(line).map_err(|e| self.err(idx, e))?);
                continue;
            }
            if line.split_whitespace().next() == Some("expect") {
                self.expect_line(idx, line, &mut eval, &mut expect_fail_lines)?;
                continue;
            }
            if let Ok(v) = parse_go_number(line) {
                eval.expected = Expected::Scalar(v);
                series.clear();
                break; // As in Prometheus, a scalar line ends the block.
            }
            let (labels, values) = parse_series_line(line).map_err(|e| {
                self.err(
                    idx,
                    format!("invalid expected result {line:?}: {e}{}", hint(line)),
                )
            })?;
            if is_instant && eval.range_vector.is_none() && values.len() != 1 {
                return Err(self.err(
                    idx,
                    if values.is_empty() {
                        "expected result line has no value".to_string()
                    } else {
                        "expecting multiple values in an instant evaluation is not allowed; \
                         use `expect range vector` for a range-vector result"
                            .to_string()
                    },
                ));
            }
            if series.iter().any(|s| s.labels == labels) {
                return Err(self.err(idx, format!("duplicate expected series {labels}")));
            }
            series.push(ExpectedSeries {
                line: idx + 1,
                labels,
                values,
            });
        }
        if !series.is_empty() {
            eval.expected = Expected::Series(series);
        }
        Ok(eval)
    }

    fn expect_line(
        &self,
        idx: usize,
        line: &str,
        eval: &mut Eval,
        fail_lines: &mut usize,
    ) -> Result<(), ScriptError> {
        let c = EXPECT.captures(line).ok_or_else(|| {
            self.err(
                idx,
                "invalid expect line, expected `expect <fail|warn|info|no_warn|no_info|ordered> \
                 [msg|regex: <text>]`",
            )
        })?;
        let kind = &c[1];
        let matcher = match (c.get(2).map(|m| m.as_str()), c.get(3)) {
            (Some("msg"), Some(m)) => TextMatch::Exact(m.as_str().trim().to_string()),
            (Some(_), Some(m)) => {
                let pattern = m.as_str().trim();
                TextMatch::Regex(Regex::new(pattern).map_err(|e| {
                    self.err(
                        idx,
                        format!("invalid regex {pattern:?} for expect {kind}: {e}"),
                    )
                })?)
            }
            _ => TextMatch::Any,
        };
        if matches!(kind, "ordered" | "no_warn" | "no_info") && !matches!(matcher, TextMatch::Any) {
            return Err(self.err(idx, format!("expect {kind} takes no msg: or regex:")));
        }
        match kind {
            "fail" => {
                *fail_lines += 1;
                eval.fail.get_or_insert_with(Vec::new).push(matcher);
            }
            "warn" => eval.warn.matchers.push(matcher),
            "info" => eval.info.matchers.push(matcher),
            "no_warn" => eval.warn.forbidden = true,
            "no_info" => eval.info.forbidden = true,
            _ => eval.ordered = true,
        }
        let conflict = if *fail_lines > 1 {
            Some("multiple expect fail lines are not allowed")
        } else if !eval.warn.matchers.is_empty() && eval.warn.forbidden {
            Some("warn and no_warn cannot be used together")
        } else if !eval.info.matchers.is_empty() && eval.info.forbidden {
            Some("info and no_info cannot be used together")
        } else {
            None
        };
        match conflict {
            Some(m) => Err(self.err(idx, format!("invalid expect lines: {m}"))),
            None => Ok(()),
        }
    }

    fn grid(&self, idx: usize, from: &str, to: &str, step: &str) -> Result<Grid, ScriptError> {
        let d = |what: &str, s: &str| {
            parse_duration(s).map_err(|e| self.err(idx, format!("invalid {what}: {e}")))
        };
        let grid = Grid {
            start_ms: d("start time", from)?,
            end_ms: d("end time", to)?,
            step_ms: d("step", step)?,
        };
        if grid.end_ms < grid.start_ms {
            return Err(self.err(
                idx,
                format!("end time ({to}) is before start time ({from})"),
            ));
        }
        Ok(grid)
    }
}

/// `expect string "Foo"` or `` expect string `Foo` ``.
fn expect_string(line: &str) -> Result<String, String> {
    let quoted = line
        .strip_prefix("expect string")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or("expect string needs a quoted string literal")?;
    if !(quoted.starts_with('"') || quoted.starts_with('`')) {
        return Err("expect string takes a double- or back-quoted string literal".to_string());
    }
    unquote(quoted).map_err(|e| format!("invalid expect string literal: {e}"))
}

/// A hint for the commonest script mistake: a command directly under a block without the blank
/// line that ends the block.
fn hint(line: &str) -> &'static str {
    let first = line.split_whitespace().next().unwrap_or("");
    if first.starts_with("eval") || first.starts_with("load") || first == "clear" {
        " (a blank line must end the previous block)"
    } else {
        ""
    }
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
