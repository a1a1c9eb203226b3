//! The promqltest runner end to end: scripts in, `N passed, N failed, N skipped` out.
//!
//! The engine here is a deliberately tiny fake that stores loaded series and answers only a bare
//! metric name (latest sample within the 5m lookback, hidden by a staleness marker) and a number
//! literal. It exists to exercise the runner — pass, fail, expected failure, skip, annotations,
//! counting — and says nothing about Ember's real PromQL evaluator.

use std::path::{Path, PathBuf};

use ember_query::promqltest::{
    QueryOutcome, RunOptions, SkipReason, TestEngine, parse_script, run_file, run_files_with,
    run_script,
};
use ember_query::value::{Sample, Series, Value, is_stale_nan};

const LOOKBACK_MS: i64 = 300_000;

#[derive(Default)]
struct FakeEngine {
    series: Vec<Series>,
    queries: usize,
}

impl FakeEngine {
    fn eval(&self, expr: &str, t: i64) -> Result<(Value, Vec<String>), String> {
        let expr = expr.trim();
        if let Ok(v) = expr.parse::<f64>() {
            return Ok((Value::Scalar { t, v }, Vec::new()));
        }
        let is_name = expr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if expr.is_empty() || !is_name {
            return Err(format!("fake engine cannot evaluate {expr:?}"));
        }
        let samples = self
            .series
            .iter()
            .filter(|s| s.labels.metric_name() == Some(expr))
            .filter_map(|s| {
                let &(_, v) = s
                    .samples
                    .iter()
                    .rev()
                    .find(|&&(st, _)| st <= t && st > t - LOOKBACK_MS)?;
                (!is_stale_nan(v)).then(|| Sample {
                    labels: s.labels.clone(),
                    t,
                    v,
                })
            })
            .collect();
        // One annotated metric, to drive `expect warn` through the runner.
        let warnings = if expr == "noisy" {
            vec!["PromQL warning: noisy metric (1:1)".to_string()]
        } else {
            Vec::new()
        };
        Ok((Value::Vector(samples), warnings))
    }
}

impl TestEngine for FakeEngine {
    fn clear(&mut self) -> Result<(), String> {
        self.series.clear();
        Ok(())
    }

    fn load(&mut self, series: &[Series]) -> Result<(), String> {
        for s in series {
            match self.series.iter_mut().find(|e| e.labels == s.labels) {
                Some(e) => {
                    e.samples.extend_from_slice(&s.samples);
                    e.samples.sort_by_key(|p| p.0);
                }
                None => self.series.push(s.clone()),
            }
        }
        Ok(())
    }

    fn instant(&mut self, expr: &str, t_ms: i64) -> Result<QueryOutcome, String> {
        self.queries += 1;
        let (value, warnings) = self.eval(expr, t_ms)?;
        Ok(QueryOutcome {
            value,
            warnings,
            infos: Vec::new(),
        })
    }

    fn range(
        &mut self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryOutcome, String> {
        self.queries += 1;
        let mut out: Vec<Series> = Vec::new();
        let mut t = start;
        while t <= end {
            let points = match self.eval(expr, t)?.0 {
                Value::Scalar { v, .. } => vec![Sample {
                    labels: Default::default(),
                    t,
                    v,
                }],
                Value::Vector(v) => v,
                _ => unreachable!("the fake only makes scalars and vectors"),
            };
            for p in points {
                match out.iter_mut().find(|s| s.labels == p.labels) {
                    Some(s) => s.samples.push((t, p.v)),
                    None => out.push(Series {
                        labels: p.labels,
                        samples: vec![(t, p.v)],
                    }),
                }
            }
            t += step;
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(QueryOutcome::new(Value::Matrix(out)))
    }
}

fn run(text: &str) -> ember_query::promqltest::FileReport {
    run_script(
        "inline.test",
        text,
        &mut FakeEngine::default(),
        &RunOptions::default(),
    )
}

#[test]
fn passing_script_with_lookback_and_staleness() {
    // `m` is sampled at 0s, 10s, 20s; the 30s sample is a staleness marker; 40s is 4.
    let report = run(r#"
load 10s
  m{job="a"} 1 2 3 stale 4
  m{job="b"} 10 _x3 40

# Latest sample at or before t.
eval instant at 25s m
  m{job="a"} 3
  m{job="b"} 10

# The staleness marker at 30s hides job="a"; job="b" is still within 5m of its 0s sample.
eval instant at 35s m
  m{job="b"} 10

# 5m after its last sample a series drops out (the lookback window is left-open).
eval instant at 340s m

eval instant at 339s m
  m{job="a"} 4
  m{job="b"} 40

eval range from 0 to 40s step 10s m
  m{job="a"} 1 2 3 _ 4
  m{job="b"} 10 10 10 10 40

eval instant at 0 42
  42
"#);
    assert_eq!(
        (report.passed, report.failed, report.skipped),
        (6, 0, 0),
        "{:#?}",
        report.failures
    );
}

#[test]
fn wrong_expectations_fail_with_file_line_and_both_sides() {
    let report = run(
        "load 1m\n  up 1\n\neval instant at 0 up\n  up 2\n\neval instant at 0 up\n  up 1\n  down 1\n",
    );
    assert_eq!((report.passed, report.failed), (0, 2));
    let first = report.failures[0].to_string();
    assert!(
        first.starts_with("inline.test:4: eval instant at 0 up\n"),
        "{first}"
    );
    assert!(
        first.contains("expected:\n    up{} 2\n  got:\n    up{} 1"),
        "{first}"
    );
    assert!(
        report.failures[1]
            .message
            .contains("expected series down{} not found")
    );
}

#[test]
fn tolerance_applies_end_to_end() {
    let report = run(
        "load 1m\n  x 1000000\n\neval instant at 0 x\n  x 1000001\n\neval instant at 0 x\n  x 1000003\n",
    );
    // 1/2000001 < 1e-6 passes; 3/2000003 does not.
    assert_eq!((report.passed, report.failed), (1, 1));
}

#[test]
fn expected_failures() {
    let report = run(r#"
eval instant at 0 rate(x[5m])
  expect fail

eval instant at 0 rate(x[5m])
  expect fail regex: cannot evaluate

eval_fail instant at 0 rate(x[5m])
  expected_fail_message wrong message

eval instant at 0 1
  expect fail
"#);
    assert_eq!(
        (report.passed, report.failed),
        (2, 2),
        "{:#?}",
        report.failures
    );
    let lines: Vec<usize> = report.failures.iter().map(|f| f.line).collect();
    assert_eq!(lines, vec![8, 11]);
    assert!(
        report.failures[1]
            .message
            .contains("expected the query to fail")
    );
}

#[test]
fn an_unexpected_query_error_is_a_failure() {
    let report = run("eval instant at 0 sum(x)\n");
    assert_eq!(report.failed, 1);
    assert!(
        report.failures[0]
            .message
            .starts_with("query failed: fake engine cannot evaluate")
    );
}

#[test]
fn annotations_end_to_end() {
    let report = run(r#"
load 1m
  noisy 1

eval instant at 0 noisy
  expect warn msg: PromQL warning: noisy metric (1:1)
  noisy 1

eval instant at 0 noisy
  expect no_warn
  noisy 1

eval instant at 0 noisy
  noisy 1
"#);
    assert_eq!((report.passed, report.failed), (2, 1));
    assert_eq!(report.failures[0].line, 9);
}

#[test]
fn histogram_scripts_are_skipped_and_counted() {
    let mut engine = FakeEngine::default();
    let report = run_script(
        "h.test",
        r#"
load 1m
  f 1

eval instant at 0 h
  h {{schema:0 sum:1 count:1}}

load_with_nhcb 1m
  f_bucket{le="1"} 1
  f_bucket{le="+Inf"} 2

eval instant at 0 f
  f 1

clear

load 1m
  f 1

eval instant at 0 f
  f 1
"#,
        &mut engine,
        &RunOptions::default(),
    );
    assert_eq!((report.passed, report.failed, report.skipped), (1, 0, 2));
    let reasons: Vec<SkipReason> = report.skips.iter().map(|s| s.reason).collect();
    assert_eq!(
        reasons,
        vec![SkipReason::HistogramExpected, SkipReason::NhcbLoaded]
    );
    // Skipped evals never reach the engine: one instant query plus its range-mode check ran.
    assert_eq!(engine.queries, 2);
}

#[test]
fn summary_over_files_prints_failures_and_the_final_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let a = write(
        "a.test",
        "load 1m\n  up 1\n\neval instant at 0 up\n  up 1\n\neval instant at 0 up\n  up {{count:1}}\n",
    );
    let b = write(
        "b.test",
        "load 1m\n  up 1\n\neval instant at 1m up\n  up 5\n",
    );
    let c = write(
        "c.test",
        "load 1m\n  up 1\n\neval instant at 0 up\n  expect fail\n\nnot a command\n",
    );
    let mut out = Vec::new();
    let summary = run_files_with(
        &[&a, &b, &c],
        &mut FakeEngine::default(),
        &RunOptions::default(),
        &mut out,
    );
    let out = String::from_utf8(out).unwrap();
    // a: 1 pass + 1 skip; b: 1 fail; c: does not parse (one failure, nothing runs).
    assert_eq!(
        (summary.passed(), summary.failed(), summary.skipped()),
        (1, 2, 1)
    );
    assert!(!summary.success());
    assert!(
        out.contains(&format!("{}:4: eval instant at 1m up", b.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}:7: (script)", c.display())),
        "{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some("1 passed, 2 failed, 1 skipped"),
        "{out}"
    );
    assert_eq!(summary.to_string(), "1 passed, 2 failed, 1 skipped");

    let ok = run_file(&a, &mut FakeEngine::default());
    assert!(ok.success());
}

/// The project's own corpus must always parse, even before an engine can pass it.
#[test]
fn corpus_scripts_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "corpus missing under {}", dir.display());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let script =
            parse_script(&f.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!script.commands.is_empty(), "{} is empty", f.display());
    }
}
