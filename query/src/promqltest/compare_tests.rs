use super::*;
use crate::promqltest::script::{CommandKind, parse_script};
use crate::value::STALE_NAN_BITS;

fn eval(text: &str) -> Eval {
    let s = parse_script("t", text).unwrap_or_else(|e| panic!("{e}"));
    match s.commands.into_iter().next().map(|c| c.kind) {
        Some(CommandKind::Eval(e)) => *e,
        other => panic!("not an eval: {other:?}"),
    }
}

fn ls(s: &str) -> Labels {
    crate::promqltest::parse_labels(s).unwrap()
}

fn sample(l: &str, v: f64) -> Sample {
    Sample {
        labels: ls(l),
        t: 0,
        v,
    }
}

fn series(l: &str, pts: &[(i64, f64)]) -> Series {
    Series {
        labels: ls(l),
        samples: pts.to_vec(),
    }
}

fn grid_of(e: &Eval) -> Option<Grid> {
    match e.query {
        crate::promqltest::script::Query::Range(g) => Some(g),
        _ => e.range_vector,
    }
}

fn check(e: &Eval, v: Value) -> Result<(), String> {
    compare_value(e, grid_of(e), &v)
}

// --- tolerance -----------------------------------------------------------------------------

#[test]
fn tolerance_is_relative_to_the_sum_of_magnitudes() {
    // |a-b| / (|a|+|b|) < 1e-6: for a = 1 the boundary is b ≈ 1 + 2e-6, not 1 + 1e-6.
    assert!(almost_equal(1.0, 1.0 + 1.9e-6, EPSILON));
    assert!(!almost_equal(1.0, 1.0 + 2.1e-6, EPSILON));
    assert!(almost_equal(1e9, 1e9 + 1_900.0, EPSILON));
    assert!(!almost_equal(1e9, 1e9 + 2_100.0, EPSILON));
    assert!(almost_equal(-1.0, -1.0 - 1.9e-6, EPSILON));
    // Symmetric.
    assert!(almost_equal(1.0 + 1.9e-6, 1.0, EPSILON));
}

#[test]
fn zero_must_match_almost_exactly() {
    assert!(almost_equal(0.0, 0.0, EPSILON));
    assert!(almost_equal(0.0, -0.0, EPSILON));
    assert!(!almost_equal(0.0, 1e-300, EPSILON));
    assert!(!almost_equal(1e-300, 0.0, EPSILON));
    // Below the smallest normal the absolute rule applies: tiny subnormal differences pass.
    assert!(almost_equal(1e-310, 1e-310 + 1e-320, EPSILON));
}

#[test]
fn nan_equals_nan_including_the_stale_marker() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    assert!(almost_equal(f64::NAN, f64::NAN, EPSILON));
    assert!(almost_equal(stale, f64::NAN, EPSILON));
    assert!(!almost_equal(f64::NAN, 1.0, EPSILON));
    assert!(!almost_equal(0.0, f64::NAN, EPSILON));
}

#[test]
fn infinities_equal_only_themselves() {
    assert!(almost_equal(f64::INFINITY, f64::INFINITY, EPSILON));
    assert!(almost_equal(f64::NEG_INFINITY, f64::NEG_INFINITY, EPSILON));
    assert!(!almost_equal(f64::INFINITY, f64::NEG_INFINITY, EPSILON));
    assert!(!almost_equal(f64::INFINITY, f64::MAX, EPSILON));
    assert!(!almost_equal(f64::MAX, -f64::MAX, EPSILON));
}

// --- instant vectors -------------------------------------------------------------------------

#[test]
fn instant_vector_is_an_unordered_set() {
    let e = eval("eval instant at 0 x\n  x{a=\"1\"} 1\n  x{a=\"2\"} 2\n");
    let swapped = Value::Vector(vec![sample(r#"x{a="2"}"#, 2.0), sample(r#"x{a="1"}"#, 1.0)]);
    assert_eq!(check(&e, swapped), Ok(()));
}

#[test]
fn ordered_eval_checks_positions() {
    let e = eval("eval instant at 0 x\n  expect ordered\n  x{a=\"1\"} 1\n  x{a=\"2\"} 2\n");
    let in_order = Value::Vector(vec![sample(r#"x{a="1"}"#, 1.0), sample(r#"x{a="2"}"#, 2.0)]);
    assert_eq!(check(&e, in_order), Ok(()));
    let swapped = Value::Vector(vec![sample(r#"x{a="2"}"#, 2.0), sample(r#"x{a="1"}"#, 1.0)]);
    let err = check(&e, swapped).unwrap_err();
    assert!(err.contains("position 2 but it was at position 1"), "{err}");
}

#[test]
fn instant_vector_value_missing_and_extra_series() {
    let e = eval("eval instant at 0 x\n  x 1\n");
    assert!(
        check(&e, Value::Vector(vec![sample("x", 1.5)]))
            .unwrap_err()
            .contains("expected 1")
    );
    assert!(
        check(&e, Value::Vector(vec![]))
            .unwrap_err()
            .contains("not found")
    );
    let extra = Value::Vector(vec![sample("x", 1.0), sample("y", 1.0)]);
    assert!(
        check(&e, extra)
            .unwrap_err()
            .contains("unexpected series y")
    );
    let twice = Value::Vector(vec![sample("x", 1.0), sample("x", 1.0)]);
    assert!(check(&e, twice).unwrap_err().contains("twice"));
}

#[test]
fn expected_nan_and_inf_match_in_vectors() {
    let e = eval("eval instant at 0 x\n  {a=\"n\"} NaN\n  {a=\"i\"} -Inf\n");
    let v = Value::Vector(vec![
        sample(r#"{a="n"}"#, f64::NAN),
        sample(r#"{a="i"}"#, f64::NEG_INFINITY),
    ]);
    assert_eq!(check(&e, v), Ok(()));
}

#[test]
fn empty_expectation_accepts_empty_vector_and_matrix_only() {
    let e = eval("eval instant at 0 nothing\n");
    assert_eq!(check(&e, Value::Vector(vec![])), Ok(()));
    assert_eq!(check(&e, Value::Matrix(vec![])), Ok(()));
    assert!(check(&e, Value::Scalar { t: 0, v: 1.0 }).is_err());
}

// --- scalars and strings -------------------------------------------------------------------

#[test]
fn scalar_expectation_needs_a_scalar_within_tolerance() {
    let e = eval("eval instant at 0 1\n  1\n");
    assert_eq!(check(&e, Value::Scalar { t: 0, v: 1.0000001 }), Ok(()));
    assert!(check(&e, Value::Scalar { t: 0, v: 1.1 }).is_err());
    let err = check(&e, Value::Vector(vec![sample("{}", 1.0)])).unwrap_err();
    assert!(
        err.contains("expected a scalar but got an instant vector"),
        "{err}"
    );
}

#[test]
fn expect_string_compares_exactly() {
    let e = eval("eval instant at 0 \"a\"\n  expect string \"a\"\n");
    assert_eq!(
        check(
            &e,
            Value::String {
                t: 0,
                s: "a".into()
            }
        ),
        Ok(())
    );
    assert!(
        check(
            &e,
            Value::String {
                t: 0,
                s: "a ".into()
            }
        )
        .is_err()
    );
    assert!(check(&e, Value::Vector(vec![])).is_err());
    // Without `expect string`, Prometheus compares a string result with the empty string.
    let plain = eval("eval instant at 0 \"\"\n");
    assert_eq!(
        check(
            &plain,
            Value::String {
                t: 0,
                s: String::new()
            }
        ),
        Ok(())
    );
    assert!(
        check(
            &plain,
            Value::String {
                t: 0,
                s: "x".into()
            }
        )
        .is_err()
    );
}

// --- matrices ------------------------------------------------------------------------------

#[test]
fn range_result_is_compared_on_the_step_grid_with_gaps() {
    let e = eval("eval range from 0 to 3m step 1m x\n  x 1 _ 3 4\n");
    let ok = Value::Matrix(vec![series(
        "x",
        &[(0, 1.0), (120_000, 3.0), (180_000, 4.0)],
    )]);
    assert_eq!(check(&e, ok), Ok(()));
    let shifted = Value::Matrix(vec![series(
        "x",
        &[(0, 1.0), (60_000, 3.0), (180_000, 4.0)],
    )]);
    assert!(
        check(&e, shifted)
            .unwrap_err()
            .contains("at t=2m but it is at t=1m")
    );
    let extra_point = Value::Matrix(vec![series(
        "x",
        &[(0, 1.0), (60_000, 2.0), (120_000, 3.0), (180_000, 4.0)],
    )]);
    assert!(
        check(&e, extra_point)
            .unwrap_err()
            .contains("expected 3 points")
    );
    let wrong = Value::Matrix(vec![series(
        "x",
        &[(0, 1.0), (120_000, 3.5), (180_000, 4.0)],
    )]);
    assert!(check(&e, wrong).unwrap_err().contains("expected 3 at t=2m"));
}

#[test]
fn more_expected_points_than_the_range_holds_is_a_failure() {
    let e = eval("eval range from 0 to 1m step 1m x\n  x 1 2 3\n");
    let v = Value::Matrix(vec![series("x", &[(0, 1.0), (60_000, 2.0)])]);
    assert!(check(&e, v).unwrap_err().contains("cannot hold"));
}

#[test]
fn range_results_must_be_sorted_by_labels() {
    let e = eval("eval range from 0 to 0 step 1m x\n  x{a=\"1\"} 1\n  x{a=\"2\"} 1\n");
    let sorted = vec![
        series(r#"x{a="1"}"#, &[(0, 1.0)]),
        series(r#"x{a="2"}"#, &[(0, 1.0)]),
    ];
    assert_eq!(check(&e, Value::Matrix(sorted.clone())), Ok(()));
    let unsorted: Vec<Series> = sorted.into_iter().rev().collect();
    assert!(
        check(&e, Value::Matrix(unsorted))
            .unwrap_err()
            .contains("sorted")
    );
}

#[test]
fn range_missing_and_unexpected_series() {
    let e = eval("eval range from 0 to 0 step 1m x\n  x 1\n");
    assert!(
        check(&e, Value::Matrix(vec![]))
            .unwrap_err()
            .contains("not found")
    );
    let extra = Value::Matrix(vec![series("x", &[(0, 1.0)]), series("y", &[(0, 1.0)])]);
    assert!(
        check(&e, extra)
            .unwrap_err()
            .contains("unexpected series y")
    );
}

#[test]
fn ordered_expectation_against_a_matrix_fails() {
    let e = eval("eval range from 0 to 0 step 1m x\n  expect ordered\n  x 1\n");
    let v = Value::Matrix(vec![series("x", &[(0, 1.0)])]);
    assert!(check(&e, v).unwrap_err().contains("ordered"));
}

#[test]
fn instant_range_vector_needs_expect_range_vector() {
    let with = eval(
        "eval instant at 1m m[1m]\n  expect range vector from 20s to 1m step 20s\n  m 1 _ 3\n",
    );
    let v = Value::Matrix(vec![series("m", &[(20_000, 1.0), (60_000, 3.0)])]);
    assert_eq!(check(&with, v.clone()), Ok(()));
    let without = eval("eval instant at 1m m[1m]\n  m 1\n");
    assert!(
        check(&without, v)
            .unwrap_err()
            .contains("expect range vector")
    );
}

// --- annotations and failures ----------------------------------------------------------------

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

#[test]
fn annotations_are_ignored_without_expect_lines() {
    let e = eval("eval instant at 0 x\n");
    assert_eq!(
        check_annotations(&e, &strings(&["w"]), &strings(&["i"])),
        Ok(())
    );
}

#[test]
fn expect_warn_requires_a_match_and_every_warning_to_be_expected() {
    let e = eval("eval instant at 0 x\n  expect warn msg: PromQL warning: a (1:1)\n");
    assert_eq!(
        check_annotations(&e, &strings(&["PromQL warning: a (1:1)"]), &[]),
        Ok(())
    );
    assert!(
        check_annotations(&e, &[], &[])
            .unwrap_err()
            .contains("none were found")
    );
    let other = check_annotations(&e, &strings(&["PromQL warning: b (1:1)"]), &[]).unwrap_err();
    assert!(other.contains("matching message"), "{other}");
    let extra = strings(&["PromQL warning: a (1:1)", "PromQL warning: b"]);
    assert!(
        check_annotations(&e, &extra, &[])
            .unwrap_err()
            .contains("unexpected warn")
    );
}

#[test]
fn plain_expect_info_accepts_any_info() {
    let e = eval("eval instant at 0 x\n  expect info\n");
    assert_eq!(check_annotations(&e, &[], &strings(&["x", "y"])), Ok(()));
    assert!(check_annotations(&e, &[], &[]).is_err());
}

#[test]
fn no_warn_and_no_info_forbid_annotations() {
    let e = eval("eval instant at 0 x\n  expect no_warn\n  expect no_info\n");
    assert_eq!(check_annotations(&e, &[], &[]), Ok(()));
    assert!(check_annotations(&e, &strings(&["w"]), &[]).is_err());
    assert!(check_annotations(&e, &[], &strings(&["i"])).is_err());
}

#[test]
fn legacy_eval_warn_only_requires_presence() {
    let e = eval("eval_warn instant at 0 x\n");
    assert!(check_annotations(&e, &[], &[]).is_err());
    assert_eq!(check_annotations(&e, &strings(&["anything"]), &[]), Ok(()));
}

#[test]
fn failure_messages_are_matched_exactly_or_by_search() {
    let exact = [TextMatch::Exact("boom".into())];
    assert_eq!(check_failure(&exact, "boom"), Ok(()));
    assert!(check_failure(&exact, "boom!").is_err());
    let re = [TextMatch::Regex(
        regex::Regex::new("same label.?set").unwrap(),
    )];
    assert_eq!(
        check_failure(&re, "vector cannot contain metrics with the same labelset"),
        Ok(())
    );
    assert_eq!(check_failure(&[], "anything"), Ok(()));
}

#[test]
fn rendering_uses_prometheus_spellings() {
    assert_eq!(fmt_f64(f64::INFINITY), "+Inf");
    assert_eq!(fmt_f64(f64::NEG_INFINITY), "-Inf");
    assert_eq!(fmt_f64(f64::NAN), "NaN");
    assert_eq!(fmt_f64(0.5), "0.5");
    assert_eq!(fmt_ms(90_000), "1m30s");
    assert_eq!(fmt_ms(-60_000), "-1m");
    assert_eq!(fmt_ms(10_053), "10s53ms");
    let e = eval("eval range from 0 to 1m step 1m x\n  x 1 _\n");
    assert_eq!(render_expected(&e, grid_of(&e)), "x{} 1@0s _@1m");
    let v = Value::Matrix(vec![series("x", &[(0, 1.0)])]);
    assert_eq!(render_value(&v), "x{} 1@0s");
}
