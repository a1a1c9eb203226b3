use std::collections::HashMap;

use super::*;
use crate::promqltest::parse_labels;
use crate::value::STALE_NAN_BITS;

/// Answers from a table keyed by expression, and records what it was asked.
#[derive(Default)]
struct Canned {
    instant: HashMap<String, Result<QueryOutcome, String>>,
    range: HashMap<String, Result<QueryOutcome, String>>,
    calls: Vec<String>,
    loaded: Vec<Series>,
    fail_load: bool,
}

impl Canned {
    fn instant(mut self, expr: &str, r: Result<QueryOutcome, String>) -> Self {
        self.instant.insert(expr.to_string(), r);
        self
    }
    fn range(mut self, expr: &str, r: Result<QueryOutcome, String>) -> Self {
        self.range.insert(expr.to_string(), r);
        self
    }
}

impl TestEngine for Canned {
    fn clear(&mut self) -> Result<(), String> {
        self.calls.push("clear".into());
        self.loaded.clear();
        Ok(())
    }
    fn load(&mut self, series: &[Series]) -> Result<(), String> {
        self.calls.push(format!("load {}", series.len()));
        if self.fail_load {
            return Err("disk full".into());
        }
        self.loaded.extend_from_slice(series);
        Ok(())
    }
    fn instant(&mut self, expr: &str, t_ms: i64) -> Result<QueryOutcome, String> {
        self.calls.push(format!("instant {expr} @{t_ms}"));
        self.instant
            .get(expr)
            .cloned()
            .unwrap_or(Err(format!("no answer for {expr}")))
    }
    fn range(&mut self, expr: &str, s: i64, e: i64, step: i64) -> Result<QueryOutcome, String> {
        self.calls.push(format!("range {expr} {s}..{e}/{step}"));
        self.range
            .get(expr)
            .cloned()
            .unwrap_or(Err(format!("no answer for {expr}")))
    }
}

fn vector(pairs: &[(&str, f64)]) -> Result<QueryOutcome, String> {
    Ok(QueryOutcome::new(Value::Vector(
        pairs
            .iter()
            .map(|&(l, v)| Sample {
                labels: parse_labels(l).unwrap(),
                t: 0,
                v,
            })
            .collect(),
    )))
}

fn matrix(rows: &[(&str, &[(i64, f64)])]) -> Result<QueryOutcome, String> {
    Ok(QueryOutcome::new(Value::Matrix(
        rows.iter()
            .map(|&(l, pts)| Series {
                labels: parse_labels(l).unwrap(),
                samples: pts.to_vec(),
            })
            .collect(),
    )))
}

fn no_range_mode() -> RunOptions {
    RunOptions {
        range_mode_check: false,
    }
}

fn run(text: &str, engine: &mut Canned, opts: &RunOptions) -> FileReport {
    run_script("t.test", text, engine, opts)
}

#[test]
fn load_lays_values_on_the_interval_grid_and_keeps_stale_markers() {
    let mut e = Canned::default();
    let r = run(
        "load 30s\n  a 1 _ stale 4\n  b _ _\n",
        &mut e,
        &no_range_mode(),
    );
    assert!(r.success());
    assert_eq!(
        e.calls,
        vec!["clear", "load 1"],
        "series without samples are not sent"
    );
    let a = &e.loaded[0];
    let ts: Vec<i64> = a.samples.iter().map(|s| s.0).collect();
    assert_eq!(ts, vec![0, 60_000, 90_000]);
    assert_eq!(a.samples[1].1.to_bits(), STALE_NAN_BITS);
}

#[test]
fn each_file_starts_from_a_clear_database_and_clear_clears() {
    let mut e = Canned::default();
    run("load 1m\n  a 1\n\nclear\n", &mut e, &no_range_mode());
    assert_eq!(e.calls, vec!["clear", "load 1", "clear"]);
}

#[test]
fn pass_fail_and_counts() {
    let mut e = Canned::default()
        .instant("a", vector(&[("a", 1.0)]))
        .instant("b", vector(&[("b", 2.0)]));
    let r = run(
        "eval instant at 0 a\n  a 1\n\neval instant at 0 b\n  b 3\n",
        &mut e,
        &no_range_mode(),
    );
    assert_eq!((r.passed, r.failed, r.skipped), (1, 1, 0));
    let f = &r.failures[0];
    assert_eq!((f.file.as_str(), f.line), ("t.test", 4));
    assert_eq!(f.command, "eval instant at 0 b");
    assert_eq!(f.expected.as_deref(), Some("b{} 3"));
    assert_eq!(f.got.as_deref(), Some("b{} 2"));
    let shown = f.to_string();
    assert!(
        shown.starts_with("t.test:4: eval instant at 0 b\n  expected 3 for b{} but got 2"),
        "{shown}"
    );
    assert!(
        shown.contains("\n  expected:\n    b{} 3\n  got:\n    b{} 2"),
        "{shown}"
    );
}

#[test]
fn query_error_fails_unless_expected() {
    let mut e = Canned::default().instant("bad", Err("parse error: boom".into()));
    let r = run(
        "eval instant at 0 bad\n\neval instant at 0 bad\n  expect fail\n\n\
         eval instant at 0 bad\n  expect fail msg: parse error: boom\n\n\
         eval instant at 0 bad\n  expect fail regex: ^other\n",
        &mut e,
        &no_range_mode(),
    );
    assert_eq!((r.passed, r.failed), (2, 2));
    assert!(
        r.failures[0]
            .message
            .contains("query failed: parse error: boom")
    );
    assert_eq!(r.failures[1].line, 9);
    assert!(r.failures[1].message.contains("pattern \"^other\""));
}

#[test]
fn expected_failure_that_succeeds_is_a_failure() {
    let mut e = Canned::default().instant("a", vector(&[("a", 1.0)]));
    let r = run("eval_fail instant at 0 a\n", &mut e, &no_range_mode());
    assert_eq!(r.failed, 1);
    assert!(r.failures[0].message.contains("expected the query to fail"));
    assert_eq!(r.failures[0].expected.as_deref(), Some("a query error"));
}

#[test]
fn annotations_are_checked_before_values() {
    let mut out = vector(&[("a", 1.0)]).unwrap();
    out.warnings.push("PromQL warning: w".into());
    let mut e = Canned::default().instant("a", Ok(out));
    let r = run(
        "eval instant at 0 a\n  expect no_warn\n  a 1\n\neval instant at 0 a\n  expect warn\n  a 1\n",
        &mut e,
        &no_range_mode(),
    );
    assert_eq!((r.passed, r.failed), (1, 1));
    assert!(
        r.failures[0]
            .message
            .contains("unexpected warn annotations")
    );
}

#[test]
fn histogram_nhcb_and_start_timestamp_skips_are_counted_and_reset_by_clear() {
    let mut e = Canned::default().instant("f", vector(&[("f", 1.0)]));
    let text = "\
load 1m
  f 1
  h {{count:1}} {{count:2}}

eval instant at 0 f
  f 1

eval instant at 0 histogram_count(h)
  {} 1

clear

load 1m
  f 1

eval instant at 0 h
  h {{count:1}}

eval instant at 0 f
  f 1

load_with_nhcb 1m
  f_bucket{le=\"1\"} 1

eval instant at 0 f
  f 1

clear

load 1m
  f 1
  f@st _
  f _

eval instant at 0 f
  f 1
";
    let r = run(text, &mut e, &no_range_mode());
    assert_eq!(
        (r.passed, r.failed, r.skipped),
        (2, 0, 4),
        "{:?}",
        r.failures
    );
    let reasons: Vec<(usize, SkipReason)> = r.skips.iter().map(|s| (s.line, s.reason)).collect();
    assert_eq!(
        reasons,
        vec![
            (8, SkipReason::HistogramLoaded),
            (16, SkipReason::HistogramExpected),
            (25, SkipReason::NhcbLoaded),
            (35, SkipReason::StartTimestampsLoaded),
        ]
    );
    // The float part of a histogram load is still loaded; the histogram samples are not.
    assert!(e.calls.contains(&"load 1".to_string()));
}

#[test]
fn parse_error_is_one_failure_naming_the_line() {
    let mut e = Canned::default();
    let r = run("load 1m\n  a 1\n\nbogus\n", &mut e, &no_range_mode());
    assert_eq!((r.passed, r.failed), (0, 1));
    assert_eq!(r.failures[0].line, 4);
    assert!(
        e.calls.is_empty(),
        "nothing runs when the script does not parse"
    );
}

#[test]
fn failed_load_aborts_the_file() {
    let mut e = Canned {
        fail_load: true,
        ..Canned::default()
    };
    let r = run(
        "load 1m\n  a 1\n\neval instant at 0 a\n  a 1\n",
        &mut e,
        &no_range_mode(),
    );
    assert_eq!((r.passed, r.failed), (0, 1));
    assert!(r.failures[0].message.contains("load failed: disk full"));
    assert!(!e.calls.iter().any(|c| c.starts_with("instant")));
}

#[test]
fn range_eval_passes_its_grid_to_the_engine() {
    let mut e = Canned::default().range("x", matrix(&[("x", &[(0, 1.0), (60_000, 2.0)])]));
    let r = run(
        "eval range from 0 to 1m step 1m x\n  x 1 2\n",
        &mut e,
        &RunOptions::default(),
    );
    assert_eq!(r.passed, 1, "{:?}", r.failures);
    assert_eq!(e.calls.last().unwrap(), "range x 0..60000/60000");
}

#[test]
fn expect_range_vector_evaluates_at_the_grid_end() {
    let mut e =
        Canned::default().instant("m[1m]", matrix(&[("m", &[(30_000, 1.0), (60_000, 2.0)])]));
    let r = run(
        "eval instant at 5m m[1m]\n  expect range vector from 30s to 1m step 30s\n  m 1 2\n",
        &mut e,
        &RunOptions::default(),
    );
    assert_eq!(r.passed, 1, "{:?}", r.failures);
    assert_eq!(
        e.calls[1..],
        ["instant m[1m] @60000"],
        "no range-mode check for range vectors"
    );
}

#[test]
fn range_mode_check_compares_the_middle_step() {
    let text = "eval instant at 2m x\n  x 5\n";
    let good = matrix(&[("x", &[(60_000, 4.0), (120_000, 5.0), (180_000, 6.0)])]);
    let mut e = Canned::default()
        .instant("x", vector(&[("x", 5.0)]))
        .range("x", good);
    let r = run(text, &mut e, &RunOptions::default());
    assert_eq!(r.passed, 1, "{:?}", r.failures);
    assert_eq!(e.calls[2], "range x 60000..180000/60000");

    let bad = matrix(&[("x", &[(60_000, 4.0), (120_000, 7.0)])]);
    let mut e = Canned::default()
        .instant("x", vector(&[("x", 5.0)]))
        .range("x", bad);
    let r = run(text, &mut e, &RunOptions::default());
    assert_eq!(r.failed, 1);
    assert!(
        r.failures[0]
            .message
            .starts_with("in range mode: expected 5"),
        "{:?}",
        r.failures
    );
}

#[test]
fn range_mode_check_handles_scalars_and_is_skipped_where_prometheus_skips_it() {
    let mut e = Canned::default()
        .instant("1", Ok(QueryOutcome::new(Value::Scalar { t: 0, v: 1.0 })))
        .range(
            "1",
            matrix(&[("{}", &[(-60_000, 1.0), (0, 1.0), (60_000, 1.0)])]),
        )
        .instant(
            "time() - step()",
            Ok(QueryOutcome::new(Value::Scalar { t: 0, v: 0.0 })),
        )
        .instant(
            "\"s\"",
            Ok(QueryOutcome::new(Value::String {
                t: 0,
                s: "s".into(),
            })),
        );
    let r = run(
        "eval instant at 0 1\n  1\n\neval instant at 0 time() - step()\n  0\n\n\
         eval instant at 0 \"s\"\n  expect string \"s\"\n",
        &mut e,
        &RunOptions::default(),
    );
    assert_eq!((r.passed, r.failed), (3, 0), "{:?}", r.failures);
    let ranges: Vec<&String> = e.calls.iter().filter(|c| c.starts_with("range")).collect();
    assert_eq!(ranges, vec!["range 1 -60000..60000/60000"]);
}

#[test]
fn summary_counts_and_final_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.test");
    let bad = dir.path().join("bad.test");
    std::fs::write(
        &good,
        "eval instant at 0 a\n  a 1\n\neval instant at 0 h\n  h {{count:1}}\n",
    )
    .unwrap();
    std::fs::write(&bad, "eval instant at 0 a\n  a 2\n").unwrap();
    let mut e = Canned::default().instant("a", vector(&[("a", 1.0)]));
    let mut out = Vec::new();
    let s = run_files_with(&[&good, &bad], &mut e, &no_range_mode(), &mut out);
    assert_eq!((s.passed(), s.failed(), s.skipped()), (1, 1, 1));
    assert!(!s.success());
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains(&format!("{}:1: eval instant at 0 a", bad.display())),
        "{out}"
    );
    assert!(
        out.contains("skipped: 1 (native histogram in expected result)"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("1 passed, 1 failed, 1 skipped"));
}

#[test]
fn unreadable_file_is_a_failure() {
    let mut e = Canned::default();
    let r = run_file("/nonexistent/promqltest/x.test", &mut e);
    assert_eq!(r.failed, 1);
    assert!(r.failures[0].message.contains("cannot read file"));
}
