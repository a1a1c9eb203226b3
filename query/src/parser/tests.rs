//! Parser behaviour: trees (shown as s-expressions so that grouping is visible), durations and
//! modifiers, and the error messages and positions Prometheus gives for bad queries.

use super::{parse, parse_metric_selector};
use crate::ast::*;

/// A compact rendering that shows the tree's shape: `(+ a (* b c))`.
fn sexpr(e: &Expr) -> String {
    match e {
        Expr::NumberLiteral(n) => format!("{}", n.value),
        Expr::StringLiteral(s) => format!("{:?}", s.value),
        Expr::VectorSelector(v) => selector(v),
        Expr::MatrixSelector(m) => format!("{}[{}]", selector(&m.selector), dur(&m.range)),
        Expr::Subquery(s) => format!(
            "(subquery {} {} {}{}{})",
            sexpr(&s.expr),
            dur(&s.range),
            s.step.as_ref().map_or("-".into(), dur),
            s.offset
                .as_ref()
                .map_or(String::new(), |o| format!(" offset {}", dur(o))),
            at(&s.at)
        ),
        Expr::Unary(u) => format!("(u{} {})", u.op.as_str(), sexpr(&u.expr)),
        Expr::Binary(b) => {
            let mut op = b.op.as_str().to_string();
            if b.return_bool {
                op.push_str(" bool");
            }
            if let Some(m) = &b.matching {
                if m.on || !m.labels.is_empty() {
                    op.push_str(&format!(
                        " {}({})",
                        if m.on { "on" } else { "ignoring" },
                        m.labels.join(",")
                    ));
                }
                match m.card {
                    VectorMatchCardinality::ManyToOne => {
                        op.push_str(&format!(" group_left({})", m.include.join(",")))
                    }
                    VectorMatchCardinality::OneToMany => {
                        op.push_str(&format!(" group_right({})", m.include.join(",")))
                    }
                    _ => {}
                }
            }
            format!("({op} {} {})", sexpr(&b.lhs), sexpr(&b.rhs))
        }
        Expr::Aggregate(a) => {
            let mut s = format!("({}", a.op.as_str());
            if a.without || !a.grouping.is_empty() {
                s.push_str(&format!(
                    " {}({})",
                    if a.without { "without" } else { "by" },
                    a.grouping.join(",")
                ));
            }
            if let Some(p) = &a.param {
                s.push_str(&format!(" {}", sexpr(p)));
            }
            format!("{s} {})", sexpr(&a.expr))
        }
        Expr::Call(c) => {
            let args: Vec<String> = c.args.iter().map(sexpr).collect();
            format!("{}({})", c.func.name, args.join(", "))
        }
        Expr::Paren(p) => format!("[{}]", sexpr(&p.expr)),
    }
}

fn selector(v: &VectorSelector) -> String {
    let ms: Vec<String> = v
        .matchers
        .iter()
        .map(|m| format!("{}{}{:?}", m.name(), m.kind().as_str(), m.value()))
        .collect();
    let mut s = format!("{{{}}}", ms.join(","));
    if let Some(o) = &v.offset {
        s.push_str(&format!(" offset {}", dur(o)));
    }
    s.push_str(&at(&v.at));
    s
}

fn at(a: &Option<AtModifier>) -> String {
    match a {
        None => String::new(),
        Some(AtModifier::Timestamp(ms)) => format!(" @{ms}ms"),
        Some(AtModifier::Start) => " @start".into(),
        Some(AtModifier::End) => " @end".into(),
    }
}

fn dur(d: &Duration) -> String {
    match (d.ms, d.is_query_dependent()) {
        (Some(ms), _) => format!("{ms}ms"),
        (None, true) => "dyn".into(),
        (None, false) => "err".into(),
    }
}

fn tree(q: &str) -> String {
    sexpr(&parse(q).unwrap_or_else(|e| panic!("{q}: {e}")))
}

fn err(q: &str) -> String {
    match parse(q) {
        Ok(e) => panic!("{q} parsed as {}", sexpr(&e)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn binary_precedence_and_associativity_follow_prometheus() {
    assert_eq!(
        tree("a + b * c"),
        r#"(+ {__name__="a"} (* {__name__="b"} {__name__="c"}))"#
    );
    assert_eq!(
        tree("a - b - c"),
        r#"(- (- {__name__="a"} {__name__="b"}) {__name__="c"})"#
    );
    assert_eq!(tree("2 ^ 3 ^ 2"), "(^ 2 (^ 3 2))");
    assert_eq!(
        tree("a or b and c unless d"),
        r#"(or {__name__="a"} (unless (and {__name__="b"} {__name__="c"}) {__name__="d"}))"#
    );
    assert_eq!(
        tree("a > b + 1"),
        r#"(> {__name__="a"} (+ {__name__="b"} 1))"#
    );
    assert_eq!(
        tree("a atan2 b * c"),
        r#"(* (atan2 {__name__="a"} {__name__="b"}) {__name__="c"})"#
    );
}

#[test]
fn unary_minus_binds_looser_than_power_and_folds_into_literals() {
    assert_eq!(tree("-2 ^ 2"), "(u- (^ 2 2))");
    assert_eq!(tree("-1"), "-1");
    assert_eq!(tree("- 1 + 2"), "(+ -1 2)");
    assert_eq!(tree("-a * b"), r#"(* (u- {__name__="a"}) {__name__="b"})"#);
    assert_eq!(tree("2 ^ -1"), "(^ 2 -1)");
    assert_eq!(tree("+a"), r#"(u+ {__name__="a"})"#);
    assert_eq!(tree("-(1)"), "(u- [1])");
}

#[test]
fn number_literals_follow_go_parsing() {
    assert_eq!(tree("0x1F"), "31");
    assert_eq!(tree("017"), "15");
    assert_eq!(tree("1_000"), "1000");
    assert_eq!(tree("1e3"), "1000");
    assert_eq!(tree(".5"), "0.5");
    assert_eq!(tree("Inf"), "inf");
    assert_eq!(tree("-inf"), "-inf");
    assert_eq!(tree("NaN"), "NaN");
    assert_eq!(tree("5m"), "300");
    assert_eq!(tree("1h30m"), "5400");
    // Whole seconds stay exact however large (Go's Duration.Seconds).
    assert_eq!(tree("5557527777s"), "5557527777");
    // Printing goes through nanoseconds in a float, as Prometheus' printer does, and loses the
    // same millisecond.
    assert_eq!(
        parse("5557527777s").unwrap().to_string(),
        "64323d5h42m56s999ms"
    );
}

#[test]
fn selectors_carry_matchers_with_the_name_last() {
    assert_eq!(
        tree(r#"up{job="a", instance!="b", x=~"c.*", y!~'d'}"#),
        r#"{job="a",instance!="b",x=~"c.*",y!~"d",__name__="up"}"#
    );
    assert_eq!(
        tree(r#"{"my.metric", x="y"}"#),
        r#"{__name__="my.metric",x="y"}"#
    );
    assert_eq!(tree(r#"{"my.label"="v"}"#), r#"{my.label="v"}"#);
    assert_eq!(tree("foo:bar:rate5m"), r#"{__name__="foo:bar:rate5m"}"#);
    assert_eq!(tree(r#"x{a="b",}"#), r#"{a="b",__name__="x"}"#);
    // Keywords are metric names where a selector is expected.
    assert_eq!(tree("sum"), r#"{__name__="sum"}"#);
    assert_eq!(tree("by{a=\"b\"}"), r#"{a="b",__name__="by"}"#);
    assert_eq!(
        tree("offset offset 5m"),
        r#"{__name__="offset"} offset 300000ms"#
    );
    // Escapes.
    assert_eq!(
        tree(r#"x{a="\n\t\"\u00e9"}"#),
        "{a=\"\\n\\t\\\"é\",__name__=\"x\"}"
    );
    assert_eq!(tree(r#"x{a=`\d+`}"#), r#"{a="\\d+",__name__="x"}"#);
}

#[test]
fn ranges_subqueries_and_modifiers_attach_to_the_nearest_selector() {
    assert_eq!(tree("x[5m]"), r#"{__name__="x"}[300000ms]"#);
    assert_eq!(
        tree("x[5m] offset 1m"),
        r#"{__name__="x"} offset 60000ms[300000ms]"#
    );
    assert_eq!(tree("x offset -1h"), r#"{__name__="x"} offset -3600000ms"#);
    assert_eq!(tree("x offset 0"), r#"{__name__="x"}"#);
    assert_eq!(tree("x @ 100"), r#"{__name__="x"} @100000ms"#);
    assert_eq!(tree("x @ 1.2345"), r#"{__name__="x"} @1235ms"#);
    assert_eq!(tree("x @ -5"), r#"{__name__="x"} @-5000ms"#);
    assert_eq!(tree("x @ start()"), r#"{__name__="x"} @start"#);
    assert_eq!(
        tree("x[1m] @ end() offset 5s"),
        r#"{__name__="x"} offset 5000ms @end[60000ms]"#
    );
    assert_eq!(
        tree("rate(x[5m])[1h:1m] offset 10m"),
        r#"(subquery rate({__name__="x"}[300000ms]) 3600000ms 60000ms offset 600000ms)"#
    );
    assert_eq!(tree("x[1h:]"), r#"(subquery {__name__="x"} 3600000ms -)"#);
    assert_eq!(
        tree("(a + b)[5m:30s]"),
        r#"(subquery [(+ {__name__="a"} {__name__="b"})] 300000ms 30000ms)"#
    );
    assert_eq!(
        tree("-x offset 5m"),
        r#"(u- {__name__="x"} offset 300000ms)"#
    );
    assert_eq!(
        tree("a + b offset 5m"),
        r#"(+ {__name__="a"} {__name__="b"} offset 300000ms)"#
    );
    // A literal after offset takes only a sign: the power applies to the selector.
    assert_eq!(
        tree("x offset -2 ^ 2"),
        r#"(^ {__name__="x"} offset -2000ms 2)"#
    );
    assert_eq!(tree("x[300]"), r#"{__name__="x"}[300000ms]"#);
    assert_eq!(tree("x[1.5]"), r#"{__name__="x"}[1500ms]"#);
}

#[test]
fn duration_arithmetic_is_computed_when_it_does_not_depend_on_the_query() {
    assert_eq!(tree("x[5m + 1m]"), r#"{__name__="x"}[360000ms]"#);
    assert_eq!(tree("x[2 * 1m]"), r#"{__name__="x"}[120000ms]"#);
    assert_eq!(tree("x[(1h)]"), r#"{__name__="x"}[3600000ms]"#);
    assert_eq!(tree("x[step() * 4]"), r#"{__name__="x"}[dyn]"#);
    assert_eq!(tree("x[max_of(1m, range())]"), r#"{__name__="x"}[dyn]"#);
    assert_eq!(
        tree("x[1m:step()]"),
        r#"(subquery {__name__="x"} 60000ms dyn)"#
    );
    assert_eq!(
        tree("x offset (1h * 2)"),
        r#"{__name__="x"} offset 7200000ms"#
    );
    assert_eq!(tree("x offset -step()"), r#"{__name__="x"} offset dyn"#);
    assert_eq!(tree("x[2 ^ 3 ^ 0]"), r#"{__name__="x"}[2000ms]"#);
    // Negative results are evaluation-time errors, so the value is left unresolved.
    assert_eq!(tree("x[1m - 2m]"), r#"{__name__="x"}[err]"#);
    assert_eq!(
        parse("x[1m - 2m]")
            .map(|e| match e {
                Expr::MatrixSelector(m) => m.range.resolve(DurationContext::default(), false),
                _ => unreachable!(),
            })
            .unwrap(),
        Err("2:9: duration must be greater than 0".into())
    );
}

#[test]
fn aggregations_take_grouping_before_or_after_and_parameters_first() {
    assert_eq!(tree("sum by (job) (x)"), r#"(sum by(job) {__name__="x"})"#);
    assert_eq!(
        tree("sum(x) without (a, b,)"),
        r#"(sum without(a,b) {__name__="x"})"#
    );
    assert_eq!(tree("topk(3, x)"), r#"(topk 3 {__name__="x"})"#);
    assert_eq!(
        tree("count_values(\"v\", x)"),
        r#"(count_values "v" {__name__="x"})"#
    );
    assert_eq!(tree("sum by () (x)"), r#"(sum {__name__="x"})"#);
    assert_eq!(tree("SUM BY (Job) (x)"), r#"(sum by(Job) {__name__="x"})"#);
    assert_eq!(
        tree("sum by (by, on, \"a.b\") (x)"),
        r#"(sum by(by,on,a.b) {__name__="x"})"#
    );
    assert_eq!(tree("limitk(2, x)"), r#"(limitk 2 {__name__="x"})"#);
}

#[test]
fn vector_matching_modifiers_are_parsed_and_set_operators_are_many_to_many() {
    assert_eq!(
        tree("a * on (x) group_left (y) b"),
        r#"(* on(x) group_left(y) {__name__="a"} {__name__="b"})"#
    );
    assert_eq!(
        tree("a / ignoring (x) group_right b"),
        r#"(/ ignoring(x) group_right() {__name__="a"} {__name__="b"})"#
    );
    assert_eq!(tree("a > bool 1"), r#"(> bool {__name__="a"} 1)"#);
    assert_eq!(tree("1 == bool 2"), "(== bool 1 2)");
    let e = parse("a and on (x) b").unwrap();
    let Expr::Binary(b) = e else { panic!() };
    assert_eq!(b.matching.unwrap().card, VectorMatchCardinality::ManyToMany);
    // Matching is dropped when an operand is a scalar.
    let Expr::Binary(b) = parse("a + 1").unwrap() else {
        panic!()
    };
    assert!(b.matching.is_none());
    let Expr::Binary(b) = parse("a + fill(0) b").unwrap() else {
        panic!()
    };
    let m = b.matching.unwrap();
    assert_eq!((m.fill.lhs, m.fill.rhs), (Some(0.0), Some(0.0)));
    let Expr::Binary(b) = parse("a + fill_right(-1) fill_left(2) b").unwrap() else {
        panic!()
    };
    let m = b.matching.unwrap();
    assert_eq!((m.fill.lhs, m.fill.rhs), (Some(2.0), Some(-1.0)));
}

#[test]
fn function_calls_resolve_against_the_table() {
    assert_eq!(tree("rate(x[5m])"), r#"rate({__name__="x"}[300000ms])"#);
    assert_eq!(tree("time()"), "time()");
    assert_eq!(tree("round(x)"), r#"round({__name__="x"})"#);
    assert_eq!(tree("round(x, 0.5)"), r#"round({__name__="x"}, 0.5)"#);
    assert_eq!(
        tree(r#"label_join(x, "d", ",", "a", "b", "c")"#),
        r#"label_join({__name__="x"}, "d", ",", "a", "b", "c")"#
    );
    assert_eq!(tree("step()"), "step()");
    assert_eq!(tree("# comment\nabs(x) # more"), r#"abs({__name__="x"})"#);
}

#[test]
fn spans_cover_the_source_text() {
    let q = "sum by (a) (rate(x{y=\"z\"}[5m] offset 1m))  + on(b) y";
    let e = parse(q).unwrap();
    let Expr::Binary(b) = &e else { panic!() };
    assert_eq!(
        &q[b.lhs.span().start..b.lhs.span().end],
        "sum by (a) (rate(x{y=\"z\"}[5m] offset 1m))"
    );
    let Expr::Aggregate(a) = &*b.lhs else {
        panic!()
    };
    let Expr::Call(c) = &*a.expr else { panic!() };
    assert_eq!(
        &q[c.span.start..c.span.end],
        "rate(x{y=\"z\"}[5m] offset 1m)"
    );
    assert_eq!(
        &q[c.args[0].span().start..c.args[0].span().end],
        "x{y=\"z\"}[5m] offset 1m"
    );
    assert_eq!(e.span(), Span::new(0, q.len()));
}

#[test]
fn syntax_errors_read_like_prometheus() {
    let cases = [
        (
            "",
            "unknown position: parse error: no expression found in input",
        ),
        (
            "# just a comment",
            "1:1: parse error: no expression found in input",
        ),
        ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
        ("1 +", "1:4: parse error: unexpected end of input"),
        ("1 + * 2", "1:5: parse error: unexpected <op:*>"),
        ("sum(foo", "1:8: parse error: unclosed left parenthesis"),
        ("foo)", "1:5: parse error: unexpected right parenthesis ')'"),
        (
            "foo{",
            "1:5: parse error: unexpected end of input inside braces",
        ),
        ("foo[5m", "1:7: parse error: unclosed left bracket"),
        (
            "foo[",
            "1:5: parse error: unexpected end of input in duration expression",
        ),
        (
            "foo{a=\"b\" c=\"d\"}",
            "1:11: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\"",
        ),
        (
            "foo{a}",
            "1:6: parse error: unexpected \"}\" in label matching, expected label matching operator",
        ),
        (
            "foo{a=b}",
            "1:7: parse error: unexpected identifier \"b\" in label matching, expected string",
        ),
        (
            "foo{=\"b\"}",
            "1:5: parse error: unexpected \"=\" in label matching, expected identifier or \"}\"",
        ),
        (
            "sum by foo (x)",
            "1:8: parse error: unexpected identifier \"foo\" in grouping opts, expected \"(\"",
        ),
        (
            "sum by (a b) (x)",
            "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\"",
        ),
        (
            "foo offset",
            "1:11: parse error: unexpected end of input in offset, expected number, duration, step(), or range()",
        ),
        (
            "foo @",
            "1:6: parse error: unexpected end of input in @, expected timestamp",
        ),
        ("foo[5m:1m:1m]", "1:10: parse error: unexpected colon ':'"),
        (
            "foo[5m 1m]",
            "1:8: parse error: unexpected duration \"1m\" in subquery or range, expected \":\" or \"]\"",
        ),
        (
            "rate(x[5m],)",
            "1:11: parse error: trailing commas not allowed in function call args",
        ),
        (
            "a + group_left b",
            "1:5: parse error: unexpected <group_left>",
        ),
        ("\"abc", "1:1: parse error: unterminated quoted string"),
        (
            "foo{a=\"\\q\"}",
            "1:7: parse error: unknown escape sequence U+0071 'q'",
        ),
        (
            "1x",
            "1:1: parse error: bad number or duration syntax: \"1\"",
        ),
        (
            "foo\n  + bar baz",
            "2:9: parse error: unexpected identifier \"baz\"",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(err(q), want, "query {q:?}");
    }
}

#[test]
fn semantic_errors_read_like_prometheus() {
    let cases = [
        (
            "foo(x)",
            "1:1: parse error: unknown function with name \"foo\"",
        ),
        (
            "rate(x)",
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
        ),
        (
            "rate()",
            "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 0",
        ),
        (
            "round(x, 1, 2)",
            "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3",
        ),
        (
            "label_join(x)",
            "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 1",
        ),
        (
            "topk(x)",
            "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1",
        ),
        (
            "sum()",
            "1:1: parse error: no arguments for aggregate expression provided",
        ),
        (
            "sum(x, y)",
            "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1, got 2",
        ),
        (
            "topk(\"a\", x)",
            "1:6: parse error: expected type scalar in aggregation parameter, got string",
        ),
        (
            "sum(x[5m])",
            "1:5: parse error: expected type instant vector in aggregation expression, got range vector",
        ),
        (
            "1 > 2",
            "1:3: parse error: comparisons between scalars must use BOOL modifier",
        ),
        (
            "a + bool b",
            "1:3: parse error: bool modifier can only be used on comparison operators",
        ),
        (
            "a and 1",
            "1:1: parse error: set operator \"and\" not allowed in binary scalar expression",
        ),
        (
            "a + on(x) 1",
            "1:1: parse error: vector matching only allowed between instant vectors",
        ),
        (
            "a and on(x) group_left b",
            "1:1: parse error: no grouping allowed for \"and\" operation",
        ),
        (
            "a * on(x) group_left(x) b",
            "1:3: parse error: label \"x\" must not occur in ON and GROUP clause at once",
        ),
        (
            "x[5m] + 1",
            "1:1: parse error: binary expression must contain only scalar and instant vector types",
        ),
        (
            "-x[5m]",
            "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
        ),
        (
            "x[5m][10m:1m]",
            "1:1: parse error: subquery is only allowed on instant vector, got matrix instead",
        ),
        (
            "{}",
            "1:1: parse error: vector selector must contain at least one non-empty matcher",
        ),
        (
            "{a=~\".*\"}",
            "1:1: parse error: vector selector must contain at least one non-empty matcher",
        ),
        (
            "foo{__name__=\"bar\"}",
            "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"",
        ),
        (
            "sum(x)[5m]",
            "1:7: parse error: ranges only allowed for vector selectors",
        ),
        (
            "x offset 5m [5m]",
            "1:13: parse error: no offset modifiers allowed before range",
        ),
        (
            "x @ 5 [5m]",
            "1:7: parse error: no @ modifiers allowed before range",
        ),
        (
            "x offset 5m offset 1m",
            "1:1: parse error: offset may not be set multiple times",
        ),
        (
            "x @ 1 @ 2",
            "1:1: parse error: @ <timestamp> may not be set multiple times",
        ),
        (
            "sum(x) offset 5m",
            "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
        ),
        (
            "1 @ 5",
            "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
        ),
        ("x[0s]", "1:3: parse error: duration must be greater than 0"),
        (
            "x[-1m]",
            "1:3: parse error: duration must be greater than 0",
        ),
        ("x[5m / 0]", "1:6: parse error: division by zero"),
        (
            "x @ Inf",
            "1:1: parse error: timestamp out of bounds for @ modifier: +Inf",
        ),
        (
            "sum by (\"\") (x)",
            "1:9: parse error: invalid label name for grouping: \"\"",
        ),
        (
            "1e999",
            "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e999\": value out of range",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(err(q), want, "query {q:?}");
    }
}

#[test]
fn metric_selectors_for_match_parameters() {
    let m = parse_metric_selector(r#"up{job="a"}"#).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!((m[1].name(), m[1].value()), ("__name__", "up"));
    assert!(parse_metric_selector("{__name__=~\"a.*\"}").is_ok());
    assert_eq!(
        parse_metric_selector("rate(x[5m])")
            .unwrap_err()
            .to_string(),
        "1:5: parse error: unexpected \"(\""
    );
    assert_eq!(
        parse_metric_selector("{}").unwrap_err().to_string(),
        "1:1: parse error: vector selector must contain at least one non-empty matcher"
    );
    assert!(parse_metric_selector("").is_err());
}

#[test]
fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    // Run where a stack overflow would abort the test: a 2 MiB thread, like tokio's blocking pool.
    let run = |q: String| {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse(&q).map(|_| ()).map_err(|e| e.to_string()))
            .unwrap()
            .join()
            .expect("no stack overflow")
    };
    let deep = 100_000;
    for q in [
        format!("{}1{}", "(".repeat(deep), ")".repeat(deep)),
        format!("{}1", "-".repeat(deep)),
        format!("{}x{}", "abs(".repeat(deep), ")".repeat(deep)),
        format!("x{}", " or x".repeat(deep)),
        format!("x[{}1m{}]", "(".repeat(deep), ")".repeat(deep)),
    ] {
        let e = run(q).unwrap_err();
        assert!(
            e.contains("expression nested more than 256 levels deep"),
            "{e}"
        );
    }
    // Realistic nesting is far below the limit.
    assert!(run(format!("{}x{}", "abs(".repeat(100), ")".repeat(100))).is_ok());
    assert!(run(format!("x{}", " or x".repeat(200))).is_ok());
}
