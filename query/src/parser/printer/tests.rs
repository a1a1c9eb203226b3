//! Printer tests on hand-built trees: one per printing rule.

use super::*;
use crate::ast::{
    AggregateOp, BinaryOp, DurationOp, FillValues, Span, UnaryOp, VectorMatchCardinality,
};
use crate::parser::functions::lookup;

// --- Hand-built trees, shaped as the parser shapes them. ---

fn num(value: f64) -> Expr {
    Expr::NumberLiteral(lit(value, false))
}

fn lit(value: f64, duration: bool) -> NumberLiteral {
    NumberLiteral {
        value,
        duration,
        span: Span::default(),
    }
}

fn string(value: &str) -> Expr {
    Expr::StringLiteral(StringLiteral {
        value: value.into(),
        span: Span::default(),
    })
}

/// A selector as the parser builds it: the name written before the braces also becomes the last
/// matcher.
fn selector(name: &str, mut matchers: Vec<Matcher>) -> VectorSelector {
    let name = (!name.is_empty()).then(|| name.to_string());
    if let Some(n) = &name {
        matchers.push(Matcher::equal(METRIC_NAME, n.as_str()));
    }
    VectorSelector {
        name,
        matchers,
        offset: None,
        at: None,
        anchored: false,
        smoothed: false,
        span: Span::default(),
    }
}

fn vs(name: &str) -> Expr {
    Expr::VectorSelector(selector(name, Vec::new()))
}

fn ms(ms: i64) -> Duration {
    Duration::from_ms(ms)
}

fn computed(expr: DurationExpr) -> Duration {
    Duration {
        ms: None,
        expr: Some(expr),
    }
}

fn matrix(sel: VectorSelector, range: Duration) -> Expr {
    Expr::MatrixSelector(MatrixSelector {
        selector: sel,
        range,
        span: Span::default(),
    })
}

fn subquery(expr: Expr, range: Duration, step: Option<Duration>) -> SubqueryExpr {
    SubqueryExpr {
        expr: Box::new(expr),
        range,
        step,
        offset: None,
        at: None,
        span: Span::default(),
    }
}

fn bin(op: BinaryOp, lhs: Expr, rhs: Expr) -> BinaryExpr {
    BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool: false,
        matching: None,
        span: Span::default(),
    }
}

fn matching(card: VectorMatchCardinality, on: bool, labels: &[&str]) -> VectorMatching {
    VectorMatching {
        card,
        on,
        labels: labels.iter().map(|s| s.to_string()).collect(),
        include: Vec::new(),
        fill: FillValues::default(),
    }
}

fn vector_bin(op: BinaryOp, m: VectorMatching) -> Expr {
    let mut b = bin(op, vs("a"), vs("b"));
    b.matching = Some(m);
    Expr::Binary(b)
}

fn agg(op: AggregateOp, grouping: &[&str], without: bool, param: Option<Expr>) -> Expr {
    Expr::Aggregate(AggregateExpr {
        op,
        expr: Box::new(vs("x")),
        param: param.map(Box::new),
        grouping: grouping.iter().map(|s| s.to_string()).collect(),
        without,
        span: Span::default(),
    })
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Call(Call {
        func: lookup(name).expect("known function"),
        args,
        span: Span::default(),
    })
}

fn paren(expr: Expr) -> Expr {
    Expr::Paren(ParenExpr {
        expr: Box::new(expr),
        span: Span::default(),
    })
}

fn d_lit(value: f64, duration: bool) -> DurationExpr {
    DurationExpr::Literal(lit(value, duration))
}

fn d_bin(op: DurationOp, lhs: DurationExpr, rhs: DurationExpr) -> DurationExpr {
    DurationExpr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}

fn d_neg(expr: DurationExpr) -> DurationExpr {
    DurationExpr::Neg {
        expr: Box::new(expr),
        span: Span::default(),
    }
}

fn d_paren(expr: DurationExpr) -> DurationExpr {
    DurationExpr::Paren {
        expr: Box::new(expr),
        span: Span::default(),
    }
}

fn d_ext(max: bool, lhs: DurationExpr, rhs: DurationExpr) -> DurationExpr {
    DurationExpr::Extremum {
        max,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        span: Span::default(),
    }
}

fn step() -> DurationExpr {
    DurationExpr::Step(Span::default())
}

fn s(e: impl Display) -> String {
    e.to_string()
}

// --- Literals. ---

#[test]
fn numbers_print_shortest_digits_without_exponent() {
    assert_eq!(s(num(1.0)), "1");
    assert_eq!(s(num(1.5)), "1.5");
    assert_eq!(s(num(-0.25)), "-0.25");
    assert_eq!(s(num(1e6)), "1000000");
    assert_eq!(s(num(1048576.0)), "1048576");
    assert_eq!(s(num(1e-7)), "0.0000001");
    assert_eq!(s(num(1e21)), "1000000000000000000000");
    assert_eq!(s(num(-0.0)), "-0");
}

#[test]
fn infinities_and_nan_print_as_go_names() {
    assert_eq!(s(num(f64::INFINITY)), "+Inf");
    assert_eq!(s(num(f64::NEG_INFINITY)), "-Inf");
    assert_eq!(s(num(f64::NAN)), "NaN");
}

#[test]
fn duration_literals_print_as_durations() {
    assert_eq!(s(lit(300.0, true)), "5m");
    assert_eq!(s(lit(5400.0, true)), "1h30m");
    assert_eq!(s(lit(0.5, true)), "500ms");
    assert_eq!(s(lit(-300.0, true)), "-5m");
    assert_eq!(s(lit(0.0, true)), "0s");
    assert_eq!(s(lit(7.0 * 86400.0, true)), "1w");
    assert_eq!(s(lit(300.0, false)), "300");
}

#[test]
fn strings_are_go_quoted_whatever_the_input_quotes() {
    assert_eq!(s(string("a")), r#""a""#);
    assert_eq!(s(string("it's \"x\"\n\\")), r#""it's \"x\"\n\\""#);
    assert_eq!(s(string("é☺\u{1}")), r#""é☺\x01""#);
}

// --- Selectors. ---

#[test]
fn selector_drops_the_name_matcher_that_repeats_the_name() {
    assert_eq!(s(vs("up")), "up");
    let sel = selector("up", vec![Matcher::equal("job", "a")]);
    assert_eq!(s(sel), r#"up{job="a"}"#);
}

#[test]
fn selector_sorts_matchers_by_their_text() {
    let sel = selector(
        "up",
        vec![
            Matcher::equal("job", "b"),
            Matcher::not_equal("instance", "x"),
            Matcher::equal("job", "a"),
        ],
    );
    assert_eq!(s(sel), r#"up{instance!="x",job="a",job="b"}"#);
}

#[test]
fn selector_without_name_keeps_the_name_matcher() {
    let sel = selector("", vec![Matcher::equal(METRIC_NAME, "a")]);
    assert_eq!(s(sel), r#"{__name__="a"}"#);
}

#[test]
fn selector_keeps_an_empty_name_matcher() {
    let sel = selector(
        "",
        vec![Matcher::equal(METRIC_NAME, ""), Matcher::equal("a", "x")],
    );
    assert_eq!(s(sel), r#"{__name__="",a="x"}"#);
}

#[test]
fn selector_keeps_a_name_matcher_that_differs_from_the_name() {
    let sel = selector("up", vec![Matcher::not_equal(METRIC_NAME, "up")]);
    assert_eq!(s(sel), r#"up{__name__!="up"}"#);
}

#[test]
fn quoted_metric_name_prints_as_name_matcher() {
    // `{"my.metric"}` parses to a `__name__` matcher with no name, printed as Prometheus does.
    let sel = selector("", vec![Matcher::equal(METRIC_NAME, "my.metric")]);
    assert_eq!(s(sel), r#"{__name__="my.metric"}"#);
}

#[test]
fn hand_built_non_legacy_name_is_quoted_inside_braces() {
    assert_eq!(s(vs("my.metric")), r#"{"my.metric"}"#);
    let sel = selector("my.metric", vec![Matcher::equal("a", "b")]);
    assert_eq!(s(sel), r#"{"my.metric",a="b"}"#);
}

#[test]
fn metric_names_with_colons_stay_bare() {
    assert_eq!(s(vs("task:errors:rate10s")), "task:errors:rate10s");
}

#[test]
fn label_names_that_are_not_identifiers_are_quoted() {
    let one = |name: &str| s(selector("", vec![Matcher::equal(name, "c")]));
    assert_eq!(one("a.b"), r#"{"a.b"="c"}"#);
    assert_eq!(one("0"), r#"{"0"="c"}"#);
    assert_eq!(one(""), r#"{""="c"}"#);
    assert_eq!(one("ü"), r#"{"ü"="c"}"#);
    assert_eq!(one("_0"), r#"{_0="c"}"#);
    // Colons are allowed in metric names only.
    assert_eq!(one("a:b"), r#"{"a:b"="c"}"#);
}

#[test]
fn matcher_operators_and_values_print_go_quoted() {
    let sel = selector(
        "a",
        vec![
            Matcher::regex("b", r"\d+").unwrap(),
            Matcher::not_regex("c", "x|y").unwrap(),
            Matcher::not_equal("d", "\"q\""),
        ],
    );
    assert_eq!(s(sel), r#"a{b=~"\\d+",c!~"x|y",d!="\"q\""}"#);
}

#[test]
fn offsets_print_as_signed_durations() {
    let mut sel = selector("a", Vec::new());
    sel.offset = Some(ms(60_000));
    assert_eq!(s(&sel), "a offset 1m");
    sel.offset = Some(ms(-420_000));
    assert_eq!(s(&sel), "a offset -7m");
    sel.offset = Some(ms(5_400_500));
    assert_eq!(s(&sel), "a offset 1h30m500ms");
}

#[test]
fn zero_offset_is_not_printed() {
    let mut sel = selector("a", Vec::new());
    sel.offset = Some(ms(0));
    assert_eq!(s(sel), "a");
}

#[test]
fn at_timestamp_prints_seconds_with_three_decimals() {
    let mut sel = selector("a", Vec::new());
    sel.at = Some(AtModifier::Timestamp(10_000));
    assert_eq!(s(&sel), "a @ 10.000");
    sel.at = Some(AtModifier::Timestamp(1_500));
    assert_eq!(s(&sel), "a @ 1.500");
    sel.at = Some(AtModifier::Timestamp(-1));
    assert_eq!(s(&sel), "a @ -0.001");
    sel.at = Some(AtModifier::Timestamp(1_700_000_000_123));
    assert_eq!(s(&sel), "a @ 1700000000.123");
}

#[test]
fn at_start_and_end_print_as_calls() {
    let mut sel = selector("a", Vec::new());
    sel.at = Some(AtModifier::Start);
    assert_eq!(s(&sel), "a @ start()");
    sel.at = Some(AtModifier::End);
    assert_eq!(s(&sel), "a @ end()");
}

#[test]
fn instant_selector_modifiers_print_at_then_anchored_then_offset() {
    let mut sel = selector("a", vec![Matcher::equal("b", "c")]);
    sel.offset = Some(ms(60_000));
    sel.at = Some(AtModifier::Start);
    sel.anchored = true;
    assert_eq!(s(&sel), r#"a{b="c"} @ start() anchored offset 1m"#);
    sel.anchored = false;
    sel.smoothed = true;
    assert_eq!(s(&sel), r#"a{b="c"} @ start() smoothed offset 1m"#);
}

#[test]
fn anchored_wins_when_both_extended_modifiers_are_set() {
    let mut sel = selector("a", Vec::new());
    sel.anchored = true;
    sel.smoothed = true;
    assert_eq!(s(sel), "a anchored");
}

// --- Ranges and subqueries. ---

#[test]
fn matrix_selector_prints_range_in_brackets() {
    assert_eq!(s(matrix(selector("a", Vec::new()), ms(300_000))), "a[5m]");
    let sel = selector("a", vec![Matcher::not_equal("b", "c")]);
    assert_eq!(s(matrix(sel, ms(90_000))), r#"a{b!="c"}[1m30s]"#);
}

#[test]
fn matrix_selector_moves_modifiers_after_the_range() {
    let mut sel = selector("a", vec![Matcher::equal("b", "c")]);
    sel.offset = Some(ms(60_000));
    sel.at = Some(AtModifier::Start);
    sel.anchored = true;
    assert_eq!(
        s(matrix(sel.clone(), ms(300_000))),
        r#"a{b="c"}[5m] anchored @ start() offset 1m"#
    );
    sel.anchored = false;
    sel.smoothed = true;
    sel.at = Some(AtModifier::Timestamp(10_000));
    sel.offset = Some(ms(-180_000));
    assert_eq!(
        s(matrix(sel, ms(720_000))),
        r#"a{b="c"}[12m] smoothed @ 10.000 offset -3m"#
    );
}

#[test]
fn subquery_prints_range_and_step() {
    let sq = subquery(vs("a"), ms(3_600_000), Some(ms(300_000)));
    assert_eq!(s(sq), "a[1h:5m]");
}

#[test]
fn subquery_without_step_keeps_the_colon() {
    let sq = subquery(vs("a"), ms(300_000), None);
    assert_eq!(s(sq), "a[5m:]");
}

#[test]
fn subquery_modifiers_print_at_then_offset() {
    let mut sq = subquery(vs("a"), ms(3_600_000), Some(ms(300_000)));
    sq.offset = Some(ms(60_000));
    sq.at = Some(AtModifier::End);
    assert_eq!(s(sq), "a[1h:5m] @ end() offset 1m");
}

#[test]
fn subquery_of_an_expression_appends_brackets() {
    let rate = call("rate", vec![matrix(selector("x", Vec::new()), ms(300_000))]);
    let sq = subquery(rate, ms(1_800_000), Some(ms(60_000)));
    assert_eq!(s(sq), "rate(x[5m])[30m:1m]");
}

// --- Duration expressions. ---

#[test]
fn duration_arithmetic_prints_with_spaced_operators() {
    let e = d_bin(DurationOp::Add, d_lit(300.0, true), d_lit(60.0, true));
    assert_eq!(
        s(matrix(selector("x", Vec::new()), computed(e))),
        "x[5m + 1m]"
    );
    let e = d_bin(DurationOp::Mul, step(), d_lit(4.0, false));
    assert_eq!(
        s(matrix(selector("x", Vec::new()), computed(e))),
        "x[step() * 4]"
    );
}

#[test]
fn duration_step_range_negation_and_parens() {
    let x = || selector("foo", Vec::new());
    assert_eq!(s(matrix(x(), computed(step()))), "foo[step()]");
    assert_eq!(s(matrix(x(), computed(d_neg(step())))), "foo[-step()]");
    assert_eq!(s(matrix(x(), computed(d_paren(step())))), "foo[(step())]");
    let range = DurationExpr::Range(Span::default());
    assert_eq!(s(matrix(x(), computed(d_neg(range)))), "foo[-range()]");
    let neg_paren = d_neg(d_paren(d_lit(5.0, false)));
    assert_eq!(s(&neg_paren), "-(5)");
    let mut sel = x();
    sel.offset = Some(computed(neg_paren));
    assert_eq!(s(sel), "foo offset -(5)");
}

#[test]
fn duration_min_of_and_max_of_print_as_calls() {
    let inner = d_bin(DurationOp::Pow, d_neg(step()), step());
    let e = d_bin(
        DurationOp::Sub,
        d_lit(200.0, false),
        d_ext(false, inner, d_lit(1.0, false)),
    );
    assert_eq!(s(&e), "200 - min_of(-step() ^ step(), 1)");
    let e = d_ext(true, DurationExpr::Range(Span::default()), d_lit(5.0, true));
    assert_eq!(s(e), "max_of(range(), 5s)");
}

#[test]
fn parenthesised_subquery_durations_are_kept() {
    let sq = subquery(
        vs("foo"),
        computed(d_paren(d_lit(300.0, true))),
        Some(computed(d_paren(d_lit(60.0, true)))),
    );
    assert_eq!(s(sq), "foo[(5m):(1m)]");
}

#[test]
fn duration_expression_offset_is_printed_even_when_computed() {
    let mut sel = selector("foo", Vec::new());
    sel.offset = Some(Duration {
        ms: Some(300_000),
        expr: Some(d_paren(d_lit(300.0, true))),
    });
    assert_eq!(s(sel), "foo offset (5m)");
}

// --- Operators. ---

#[test]
fn binary_operators_are_spaced() {
    assert_eq!(s(bin(BinaryOp::Add, num(1.0), num(2.0))), "1 + 2");
    assert_eq!(s(bin(BinaryOp::Atan2, vs("a"), vs("b"))), "a atan2 b");
    assert_eq!(s(bin(BinaryOp::TrimUpper, vs("a"), num(2.0))), "a </ 2");
}

#[test]
fn comparison_with_bool_prints_bool_after_operator() {
    let mut b = bin(BinaryOp::Gtr, vs("up"), num(0.0));
    b.return_bool = true;
    assert_eq!(s(b), "up > bool 0");
}

#[test]
fn plain_one_to_one_matching_prints_nothing() {
    let m = matching(VectorMatchCardinality::OneToOne, false, &[]);
    assert_eq!(s(vector_bin(BinaryOp::Sub, m)), "a - b");
    let m = matching(VectorMatchCardinality::ManyToMany, false, &[]);
    assert_eq!(s(vector_bin(BinaryOp::And, m)), "a and b");
}

#[test]
fn on_and_ignoring_print_spaced_label_lists() {
    let m = matching(VectorMatchCardinality::OneToOne, true, &["b", "c"]);
    assert_eq!(s(vector_bin(BinaryOp::Sub, m)), "a - on (b, c) b");
    let m = matching(VectorMatchCardinality::OneToOne, true, &[]);
    assert_eq!(s(vector_bin(BinaryOp::Sub, m)), "a - on () b");
    let m = matching(VectorMatchCardinality::OneToOne, false, &["x"]);
    assert_eq!(s(vector_bin(BinaryOp::Div, m)), "a / ignoring (x) b");
    let m = matching(VectorMatchCardinality::ManyToMany, true, &["x"]);
    assert_eq!(s(vector_bin(BinaryOp::Or, m)), "a or on (x) b");
}

#[test]
fn group_modifiers_print_their_labels_even_when_empty() {
    let mut m = matching(VectorMatchCardinality::ManyToOne, true, &["b"]);
    m.include = vec!["x".into(), "y".into()];
    assert_eq!(
        s(vector_bin(BinaryOp::Add, m)),
        "a + on (b) group_left (x, y) b"
    );
    let m = matching(VectorMatchCardinality::OneToMany, true, &["b"]);
    assert_eq!(
        s(vector_bin(BinaryOp::Add, m)),
        "a + on (b) group_right () b"
    );
}

#[test]
fn empty_ignoring_is_kept_only_before_a_group_modifier() {
    let m = matching(VectorMatchCardinality::ManyToOne, false, &[]);
    assert_eq!(
        s(vector_bin(BinaryOp::Sub, m)),
        "a - ignoring () group_left () b"
    );
}

#[test]
fn matching_labels_that_are_not_identifiers_are_quoted() {
    let mut m = matching(VectorMatchCardinality::OneToMany, true, &["legacy", "äää"]);
    m.include = vec!["ööö".into()];
    assert_eq!(
        s(vector_bin(BinaryOp::Div, m)),
        r#"a / on (legacy, "äää") group_right ("ööö") b"#
    );
}

#[test]
fn fill_modifiers_merge_when_both_sides_are_equal() {
    let with_fill = |lhs, rhs| {
        let mut m = matching(VectorMatchCardinality::OneToOne, false, &[]);
        m.fill = FillValues { lhs, rhs };
        s(vector_bin(BinaryOp::Add, m))
    };
    assert_eq!(with_fill(Some(-23.0), Some(-23.0)), "a + fill (-23) b");
    assert_eq!(with_fill(Some(-23.0), None), "a + fill_left (-23) b");
    assert_eq!(with_fill(None, Some(42.0)), "a + fill_right (42) b");
    assert_eq!(
        with_fill(Some(-23.0), Some(42.0)),
        "a + fill_left (-23) fill_right (42) b"
    );
    // `%v` formatting and Go's `==` on NaN.
    assert_eq!(with_fill(Some(1e6), Some(1e6)), "a + fill (1e+06) b");
    assert_eq!(
        with_fill(Some(f64::NAN), Some(f64::NAN)),
        "a + fill_left (NaN) fill_right (NaN) b"
    );
}

#[test]
fn fill_follows_group_modifier() {
    let mut m = matching(VectorMatchCardinality::ManyToOne, true, &["b"]);
    m.fill = FillValues {
        lhs: Some(-23.0),
        rhs: Some(-23.0),
    };
    assert_eq!(
        s(vector_bin(BinaryOp::Add, m)),
        "a + on (b) group_left () fill (-23) b"
    );
}

#[test]
fn unary_minus_is_written_against_its_operand() {
    let neg = |e| {
        Expr::Unary(UnaryExpr {
            op: UnaryOp::Minus,
            expr: Box::new(e),
            span: Span::default(),
        })
    };
    assert_eq!(s(neg(vs("x"))), "-x");
    let sum = Expr::Binary(bin(BinaryOp::Add, vs("a"), vs("b")));
    assert_eq!(s(neg(paren(sum))), "-(a + b)");
}

#[test]
fn parentheses_are_printed_where_the_tree_has_them() {
    let sum = Expr::Binary(bin(BinaryOp::Add, vs("a"), vs("b")));
    let prod = bin(BinaryOp::Mul, paren(sum), vs("c"));
    assert_eq!(s(prod), "(a + b) * c");
    assert_eq!(s(paren(paren(num(1.0)))), "((1))");
}

// --- Aggregations and calls. ---

#[test]
fn aggregation_without_grouping_has_no_space() {
    assert_eq!(s(agg(AggregateOp::Sum, &[], false, None)), "sum(x)");
}

#[test]
fn aggregation_grouping_goes_between_operator_and_arguments() {
    assert_eq!(
        s(agg(AggregateOp::Sum, &["a", "b"], false, None)),
        "sum by (a, b) (x)"
    );
    assert_eq!(
        s(agg(AggregateOp::Avg, &["instance"], true, None)),
        "avg without (instance) (x)"
    );
}

#[test]
fn empty_without_is_kept() {
    assert_eq!(
        s(agg(AggregateOp::Sum, &[], true, None)),
        "sum without () (x)"
    );
}

#[test]
fn grouping_labels_that_are_not_identifiers_are_quoted() {
    assert_eq!(
        s(agg(
            AggregateOp::Count,
            &["ööö", "job", "foo.bar"],
            false,
            None
        )),
        r#"count by ("ööö", job, "foo.bar") (x)"#
    );
}

#[test]
fn aggregation_parameter_comes_first() {
    assert_eq!(
        s(agg(AggregateOp::Topk, &[], false, Some(num(3.0)))),
        "topk(3, x)"
    );
    assert_eq!(
        s(agg(
            AggregateOp::CountValues,
            &["job"],
            false,
            Some(string("value"))
        )),
        r#"count_values by (job) ("value", x)"#
    );
    assert_eq!(
        s(agg(AggregateOp::Quantile, &[], true, Some(num(0.9)))),
        "quantile without () (0.9, x)"
    );
}

#[test]
fn calls_separate_arguments_with_comma_space() {
    let rate = call("rate", vec![matrix(selector("x", Vec::new()), ms(300_000))]);
    let sum = Expr::Aggregate(AggregateExpr {
        op: AggregateOp::Sum,
        expr: Box::new(rate),
        param: None,
        grouping: vec!["job".into()],
        without: false,
        span: Span::default(),
    });
    assert_eq!(s(sum), "sum by (job) (rate(x[5m]))");
    let lr = call(
        "label_replace",
        vec![
            vs("up"),
            string("dst"),
            string("$1"),
            string("src"),
            string("(.*)"),
        ],
    );
    assert_eq!(s(lr), r#"label_replace(up, "dst", "$1", "src", "(.*)")"#);
    assert_eq!(s(call("time", Vec::new())), "time()");
}
