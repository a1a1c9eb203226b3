//! Running parsed scripts against any PromQL engine behind [`TestEngine`], and reporting.
//!
//! Owns: the engine seam, command execution in order (a fresh database per file, `clear`,
//! `load` expansion onto the interval grid), the per-eval procedure
//! Prometheus follows (expected failure, annotations, result, then for instant queries the
//! range-mode cross-check), and the pass/fail/skip accounting and printed report.
//! Does not own: the grammar (`script`), notation (`series`), comparison rules (`compare`) or
//! the skip policy (`skip`).
//!
//! Not reproduced from Prometheus' runner: re-running instant queries with an `@` modifier added
//! to every selector (that needs the PromQL AST printer), and its syntax check of each `eval`
//! expression at parse time (an unparsable expression surfaces as a query error instead).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use crate::value::{Sample, Series, Value};

use super::compare::{
    check_annotations, check_failure, check_sorted, compare_value, render_expected, render_value,
};
use super::script::{
    Command, CommandKind, Eval, Grid, Load, QUERY_CONTEXT_FUNCS, Query, parse_script,
};
use super::series::SeqValue;
use super::skip::{SkipReason, Taint};

/// The engine under test. Timestamps are milliseconds since the epoch; scripts start at 0.
pub trait TestEngine {
    /// Start from an empty database.
    fn clear(&mut self) -> Result<(), String>;
    /// Add samples (already expanded from series notation; stale markers as the staleness NaN
    /// [`crate::value::STALE_NAN_BITS`]). Series arrive in script order, samples in time order.
    fn load(&mut self, series: &[Series]) -> Result<(), String>;
    /// `Err` means the query failed, with its error message.
    fn instant(&mut self, expr: &str, t_ms: i64) -> Result<QueryOutcome, String>;
    fn range(
        &mut self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutcome, String>;
}

/// A successful query's value and annotations (rendered as the API renders them, position
/// suffix included, since `expect warn msg:` matches that text).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutcome {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl QueryOutcome {
    /// An outcome without annotations.
    pub fn new(value: Value) -> QueryOutcome {
        QueryOutcome {
            value,
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub line: usize,
    pub command: String,
    pub reason: SkipReason,
}

/// One failed eval (or a command that could not run: a script parse error, a failed load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub file: String,
    pub line: usize,
    pub command: String,
    pub message: String,
    pub expected: Option<String>,
    pub got: Option<String>,
}

impl fmt::Display for Failure {
    /// `file:line: command`, then the reason, then expected and got, indented.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:{}: {}", self.file, self.line, self.command)?;
        write!(f, "  {}", self.message)?;
        for (title, body) in [("expected", &self.expected), ("got", &self.got)] {
            if let Some(body) = body {
                write!(f, "\n  {title}:")?;
                for l in body.lines() {
                    write!(f, "\n    {l}")?;
                }
            }
        }
        Ok(())
    }
}

/// The outcome of one file. `failed` counts failing evals plus commands that could not run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    pub file: String,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub failures: Vec<Failure>,
    pub skips: Vec<Skip>,
}

impl FileReport {
    pub fn success(&self) -> bool {
        self.failed == 0
    }
}

/// The outcome of several files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: Vec<FileReport>,
}

impl Summary {
    pub fn passed(&self) -> usize {
        self.files.iter().map(|f| f.passed).sum()
    }
    pub fn failed(&self) -> usize {
        self.files.iter().map(|f| f.failed).sum()
    }
    pub fn skipped(&self) -> usize {
        self.files.iter().map(|f| f.skipped).sum()
    }
    /// Whether nothing failed: the exit status of `ember promql-test`.
    pub fn success(&self) -> bool {
        self.failed() == 0
    }
    /// Skipped evals per reason.
    pub fn skips_by_reason(&self) -> BTreeMap<SkipReason, usize> {
        let mut out = BTreeMap::new();
        for s in self.files.iter().flat_map(|f| &f.skips) {
            *out.entry(s.reason).or_insert(0) += 1;
        }
        out
    }
}

impl fmt::Display for Summary {
    /// The final report line: `N passed, N failed, N skipped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }
}

/// Knobs for a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Re-run each passing instant query as a range query from `t-1m` to `t+1m` with a 1m step
    /// and compare its middle step with the same expectation, as Prometheus does. On by default.
    pub range_mode_check: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            range_mode_check: true,
        }
    }
}

/// Runs one file with default options. Does not print.
pub fn run_file(path: impl AsRef<Path>, engine: &mut dyn TestEngine) -> FileReport {
    run_file_with(path, engine, &RunOptions::default())
}

pub fn run_file_with(
    path: impl AsRef<Path>,
    engine: &mut dyn TestEngine,
    opts: &RunOptions,
) -> FileReport {
    let path = path.as_ref();
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => run_script(&name, &text, engine, opts),
        Err(e) => {
            let mut report = FileReport {
                file: name.clone(),
                ..FileReport::default()
            };
            report.fail(0, "(file)", format!("cannot read file: {e}"), None, None);
            report
        }
    }
}

/// Runs several files with default options, printing every failure and the summary to stdout.
pub fn run_files<P: AsRef<Path>>(paths: &[P], engine: &mut dyn TestEngine) -> Summary {
    let stdout = std::io::stdout();
    run_files_with(paths, engine, &RunOptions::default(), &mut stdout.lock())
}

/// Runs several files, writing every failure as it happens, then a skip breakdown, then the
/// final `N passed, N failed, N skipped` line to `out`.
pub fn run_files_with<P: AsRef<Path>>(
    paths: &[P],
    engine: &mut dyn TestEngine,
    opts: &RunOptions,
    out: &mut dyn Write,
) -> Summary {
    let mut summary = Summary::default();
    for p in paths {
        let report = run_file_with(p, engine, opts);
        for f in &report.failures {
            // A broken pipe must not abort the run: the summary is still returned.
            let _ = writeln!(out, "{f}\n");
        }
        summary.files.push(report);
    }
    let by_reason = summary.skips_by_reason();
    if !by_reason.is_empty() {
        let parts: Vec<String> = by_reason
            .iter()
            .map(|(r, n)| format!("{n} ({r})"))
            .collect();
        let _ = writeln!(out, "skipped: {}", parts.join(", "));
    }
    let _ = writeln!(out, "{summary}");
    summary
}

/// Parses and runs one script from memory. `file` names it in reports.
pub fn run_script(
    file: &str,
    text: &str,
    engine: &mut dyn TestEngine,
    opts: &RunOptions,
) -> FileReport {
    let mut report = FileReport {
        file: file.to_string(),
        ..FileReport::default()
    };
    let script = match parse_script(file, text) {
        Ok(s) => s,
        Err(e) => {
            report.fail(
                e.line,
                "(script)",
                format!("parse error: {}", e.message),
                None,
                None,
            );
            return report;
        }
    };
    // Every file starts from an empty database, as each Prometheus test gets fresh storage.
    if let Err(e) = engine.clear() {
        report.fail(
            0,
            "(start)",
            format!("clearing the database failed: {e}"),
            None,
            None,
        );
        return report;
    }
    let mut taint = Taint::default();
    for cmd in &script.commands {
        match &cmd.kind {
            CommandKind::Clear => {
                taint = Taint::default();
                if let Err(e) = engine.clear() {
                    report.abort(cmd, format!("clear failed: {e}"));
                    return report;
                }
            }
            CommandKind::Load(load) => {
                taint.add_load(load);
                if let Err(e) = engine.load(&expand_load(load)) {
                    report.abort(cmd, format!("load failed: {e}"));
                    return report;
                }
            }
            CommandKind::Eval(eval) => {
                if let Some(reason) = taint.skip_reason(eval) {
                    report.skipped += 1;
                    report.skips.push(Skip {
                        line: cmd.line,
                        command: cmd.text.clone(),
                        reason,
                    });
                    continue;
                }
                match run_eval(engine, eval, opts) {
                    Ok(()) => report.passed += 1,
                    Err(m) => {
                        let expected = render_expected(eval, expectation_grid(eval));
                        report.fail(cmd.line, &cmd.text, m.message, Some(expected), m.got);
                    }
                }
            }
        }
    }
    report
}

impl FileReport {
    fn fail(
        &mut self,
        line: usize,
        command: &str,
        message: String,
        expected: Option<String>,
        got: Option<String>,
    ) {
        self.failed += 1;
        self.failures.push(Failure {
            file: self.file.clone(),
            line,
            command: command.to_string(),
            message,
            expected,
            got,
        });
    }

    /// A command that the rest of the file depends on failed: record it and stop, since every
    /// later eval would be judged against the wrong data.
    fn abort(&mut self, cmd: &Command, message: String) {
        let message = format!("{message} (rest of the file not run)");
        self.fail(cmd.line, &cmd.text, message, None, None);
    }
}

/// Lays a load's values on its interval grid from t=0; `_` and histograms add no sample, and
/// series left with no samples are not sent at all (storage would not know them either).
pub fn expand_load(load: &Load) -> Vec<Series> {
    load.series
        .iter()
        .filter_map(|s| {
            let samples: Vec<(i64, f64)> = s
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    SeqValue::Value(v) => Some((i as i64 * load.interval_ms, *v)),
                    SeqValue::Omitted | SeqValue::Histogram => None,
                })
                .collect();
            (!samples.is_empty()).then(|| Series {
                labels: s.labels.clone(),
                samples,
            })
        })
        .collect()
}

/// The grid expected range-vector values are laid out on.
fn expectation_grid(eval: &Eval) -> Option<Grid> {
    match eval.query {
        Query::Range(g) => Some(g),
        Query::Instant { .. } => eval.range_vector,
    }
}

struct Mismatch {
    message: String,
    got: Option<String>,
}

impl Mismatch {
    fn new(message: impl Into<String>, got: Option<&Value>) -> Mismatch {
        Mismatch {
            message: message.into(),
            got: got.map(render_value),
        }
    }
}

fn run_eval(engine: &mut dyn TestEngine, eval: &Eval, opts: &RunOptions) -> Result<(), Mismatch> {
    let grid = expectation_grid(eval);
    let (result, t_ms) = match eval.query {
        Query::Range(g) => (
            engine.range(&eval.expr, g.start_ms, g.end_ms, g.step_ms),
            None,
        ),
        Query::Instant { t_ms } => {
            // With `expect range vector`, Prometheus evaluates at the grid's end, not at `at`.
            let t = eval.range_vector.map_or(t_ms, |g| g.end_ms);
            (engine.instant(&eval.expr, t), Some(t))
        }
    };
    let outcome = match (result, &eval.fail) {
        (Err(msg), Some(matchers)) => {
            return check_failure(matchers, &msg).map_err(|m| Mismatch {
                message: m,
                got: Some(format!("error: {msg}")),
            });
        }
        (Err(msg), None) => {
            return Err(Mismatch {
                message: format!("query failed: {msg}"),
                got: Some(format!("error: {msg}")),
            });
        }
        (Ok(o), Some(_)) => {
            return Err(Mismatch::new(
                "expected the query to fail, but it succeeded",
                Some(&o.value),
            ));
        }
        (Ok(o), None) => o,
    };
    check_annotations(eval, &outcome.warnings, &outcome.infos)
        .map_err(|m| Mismatch::new(m, Some(&outcome.value)))?;
    compare_value(eval, grid, &outcome.value)
        .map_err(|m| Mismatch::new(m, Some(&outcome.value)))?;
    match t_ms {
        Some(t)
            if opts.range_mode_check
                && eval.range_vector.is_none()
                && eval.expected_string.is_none()
                && !QUERY_CONTEXT_FUNCS.is_match(&eval.expr) =>
        {
            range_mode_check(engine, eval, t, &outcome.value)
        }
        _ => Ok(()),
    }
}

/// Prometheus' check that an instant query gives the same answer in range mode: evaluate from
/// `t-1m` to `t+1m` every minute and compare the step at `t` with the same expectation.
fn range_mode_check(
    engine: &mut dyn TestEngine,
    eval: &Eval,
    t: i64,
    instant: &Value,
) -> Result<(), Mismatch> {
    const MINUTE: i64 = 60_000;
    let outcome = engine
        .range(&eval.expr, t - MINUTE, t + MINUTE, MINUTE)
        .map_err(|e| Mismatch {
            message: format!("in range mode (t-1m to t+1m, step 1m): query failed: {e}"),
            got: Some(format!("error: {e}")),
        })?;
    if eval.ordered {
        // Range results are always sorted by labels, so the order cannot be checked there.
        return Ok(());
    }
    let in_range_mode =
        |m: String| Mismatch::new(format!("in range mode: {m}"), Some(&outcome.value));
    let Value::Matrix(series) = &outcome.value else {
        return Err(in_range_mode(
            "the range query did not return a matrix".into(),
        ));
    };
    check_sorted(series).map_err(in_range_mode)?;
    let at_t: Vec<Sample> = series
        .iter()
        .filter_map(|s| {
            let &(_, v) = s.samples.iter().find(|&&(st, _)| st == t)?;
            Some(Sample {
                labels: s.labels.clone(),
                t,
                v,
            })
        })
        .collect();
    let value = match instant {
        Value::Scalar { .. } => match at_t.first() {
            Some(s) => Value::Scalar { t, v: s.v },
            None => return Err(in_range_mode(format!("no point at t={t}ms"))),
        },
        _ => Value::Vector(at_t),
    };
    compare_value(eval, None, &value)
        .map_err(|m| Mismatch::new(format!("in range mode: {m}"), Some(&value)))
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
