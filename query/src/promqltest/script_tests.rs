use super::*;

fn parse(text: &str) -> Script {
    parse_script("t.test", text).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> ScriptError {
    match parse_script("t.test", text) {
        Ok(s) => panic!("expected an error, parsed {:?}", s.commands),
        Err(e) => e,
    }
}

fn eval_of(cmd: &Command) -> &Eval {
    match &cmd.kind {
        CommandKind::Eval(e) => e,
        other => panic!("not an eval: {other:?}"),
    }
}

fn load_of(cmd: &Command) -> &Load {
    match &cmd.kind {
        CommandKind::Load(l) => l,
        other => panic!("not a load: {other:?}"),
    }
}

fn series_of(eval: &Eval) -> &[ExpectedSeries] {
    match &eval.expected {
        Expected::Series(s) => s,
        Expected::Scalar(v) => panic!("scalar {v}"),
    }
}

#[test]
fn commands_carry_one_based_line_numbers_and_text() {
    let s = parse(
        "# header comment\n\nload 1m\n  up 1 2\n\nclear\n\n  eval instant at 1m up  \n  up 2\n",
    );
    let got: Vec<(usize, &str)> = s
        .commands
        .iter()
        .map(|c| (c.line, c.text.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![(3, "load 1m"), (6, "clear"), (8, "eval instant at 1m up")]
    );
    assert!(matches!(s.commands[1].kind, CommandKind::Clear));
    assert_eq!(s.name, "t.test");
}

#[test]
fn load_parses_interval_and_series_with_their_lines() {
    let s = parse("load 10s53ms\n  a{x=\"1\"} 1 _ stale\n  b 0+1x2\n");
    let l = load_of(&s.commands[0]);
    assert_eq!(l.interval_ms, 10_053);
    assert!(!l.with_nhcb);
    assert_eq!(l.series.len(), 2);
    assert_eq!(l.series[0].line, 2);
    assert_eq!(l.series[0].labels.to_string(), r#"a{x="1"}"#);
    assert_eq!(l.series[0].values.len(), 3);
    assert_eq!(l.series[1].line, 3);
    assert_eq!(l.series[1].values.len(), 3);
}

#[test]
fn load_with_nhcb_is_flagged() {
    let s = parse("load_with_nhcb 5m\n  h_bucket{le=\"1\"} 1\n");
    assert!(load_of(&s.commands[0]).with_nhcb);
}

#[test]
fn repeated_series_in_one_load_replaces_the_earlier_definition() {
    let s = parse("load 1m\n  a 1 2 3\n  b 1\n  a 9\n");
    let l = load_of(&s.commands[0]);
    assert_eq!(l.series.len(), 2);
    assert_eq!(l.series[0].values, vec![SeqValue::Value(9.0)]);
    assert_eq!(l.series[0].line, 4);
}

#[test]
fn start_timestamp_lines_attach_to_the_following_series() {
    let s = parse("load 1m\n  c{t=\"a\"}@st _ -30s\n  c{t=\"a\"} _ 1\n");
    let l = load_of(&s.commands[0]);
    assert_eq!(l.series.len(), 1);
    assert_eq!(
        l.series[0].start_timestamps,
        Some(vec![None, Some(-30_000)])
    );

    let e = parse_err("load 1m\n  c@st _ 1m\n  d _ 1\n");
    assert_eq!((e.line, e.message.contains("does not match")), (2, true));
    let e = parse_err("load 1m\n  c@st 1m\n  c 1 2\n");
    assert_eq!(e.line, 2);
    assert!(
        e.message.contains("1 values but the sample line has 2"),
        "{e}"
    );
    let e = parse_err("load 1m\n  c 1\n  c@st 1m\n");
    assert_eq!(
        (e.line, e.message.contains("no following sample line")),
        (3, true)
    );
}

#[test]
fn eval_instant_parses_time_expression_and_expected_series() {
    let s =
        parse("eval instant at 1m30s sum by (a) (rate(x[5m]))\n  {a=\"1\"} 2\n  {a=\"2\"} -Inf\n");
    let e = eval_of(&s.commands[0]);
    assert_eq!(e.expr, "sum by (a) (rate(x[5m]))");
    assert_eq!(e.query, Query::Instant { t_ms: 90_000 });
    let want = series_of(e);
    assert_eq!(want.len(), 2);
    assert_eq!((want[0].line, want[1].line), (2, 3));
    assert_eq!(want[1].values, vec![SeqValue::Value(f64::NEG_INFINITY)]);
    assert!(e.fail.is_none() && !e.ordered);
}

#[test]
fn eval_range_parses_grid() {
    let s = parse("eval range from 0 to 2m step 30s requests * 2\n  {job=\"1\"} 1 _ 3 _x2\n");
    let e = eval_of(&s.commands[0]);
    assert_eq!(e.expr, "requests * 2");
    assert_eq!(
        e.query,
        Query::Range(Grid {
            start_ms: 0,
            end_ms: 120_000,
            step_ms: 30_000
        })
    );
    assert_eq!(series_of(e)[0].values.len(), 5);
}

#[test]
fn eval_with_no_result_lines_expects_an_empty_result() {
    let s = parse("eval instant at 0 nothing\n\neval instant at 0 x\n");
    assert_eq!(s.commands.len(), 2);
    assert!(series_of(eval_of(&s.commands[0])).is_empty());
}

#[test]
fn scalar_line_expects_a_scalar_and_ends_the_block() {
    let s = parse("eval instant at 0 1 + 1\n  2\n");
    assert!(matches!(eval_of(&s.commands[0]).expected, Expected::Scalar(v) if v == 2.0));
    // After a scalar line the block is over: the next line must be a command.
    let e = parse_err("eval instant at 0 1\n  1\n  {} 1\n");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("invalid command"), "{e}");
}

#[test]
fn legacy_eval_variants_set_their_flags() {
    let s = parse(
        "eval_fail instant at 0 a\n\neval_warn instant at 0 a\n\neval_info range from 0 to 1m step 1m a\n\n\
         eval_ordered instant at 0 a\n",
    );
    let e: Vec<&Eval> = s.commands.iter().map(eval_of).collect();
    assert!(e[0].fail.as_ref().is_some_and(|m| m.is_empty()));
    assert!(e[1].warn.required && e[1].fail.is_none());
    assert!(e[2].info.required);
    assert!(e[3].ordered);
    // `eval_ordered` is not a range variant.
    assert!(parse_script("t", "eval_ordered range from 0 to 1m step 1m a\n").is_err());
}

#[test]
fn legacy_expected_fail_message_and_regexp_end_the_block() {
    let s = parse("eval_fail instant at 0 a\n  expected_fail_message boom bang\n");
    let fail = eval_of(&s.commands[0]).fail.as_ref().unwrap();
    assert!(matches!(&fail[0], TextMatch::Exact(m) if m == "boom bang"));
    let s = parse("eval_fail instant at 0 a\n  expected_fail_regexp bo+m\n");
    let fail = eval_of(&s.commands[0]).fail.as_ref().unwrap();
    assert!(fail[0].matches("a boooom"));
    // Without `_fail` the line is not special and is not a valid series line either.
    assert_eq!(
        parse_err("eval instant at 0 a\n  expected_fail_message x\n").line,
        2
    );
}

#[test]
fn expect_lines_for_every_kind() {
    let s = parse(
        "eval instant at 0 a\n  expect fail msg: vector cannot contain metrics\n\n\
         eval instant at 0 a\n  expect fail regex:  foo|bar \n\n\
         eval instant at 0 a\n  expect warn\n  expect warn msg: PromQL warning: w (1:1)\n  expect no_info\n\n\
         eval instant at 0 a\n  expect info regex: i.*\n  expect no_warn\n  expect ordered\n  a 1\n",
    );
    let e: Vec<&Eval> = s.commands.iter().map(eval_of).collect();
    let f0 = e[0].fail.as_ref().unwrap();
    assert!(matches!(&f0[0], TextMatch::Exact(m) if m == "vector cannot contain metrics"));
    let f1 = e[1].fail.as_ref().unwrap();
    assert!(f1[0].matches("xbarx") && !f1[0].matches("baz"));
    assert!(matches!(
        e[2].warn.matchers[..],
        [TextMatch::Any, TextMatch::Exact(_)]
    ));
    assert!(e[2].info.forbidden && !e[2].warn.forbidden);
    assert!(e[3].info.matchers[0].matches("info"));
    assert!(e[3].warn.forbidden && e[3].ordered);
    assert_eq!(series_of(e[3]).len(), 1);
}

#[test]
fn conflicting_or_malformed_expect_lines_are_errors_at_their_line() {
    let cases = [
        (
            "eval instant at 0 a\n  expect warn\n  expect no_warn\n",
            3,
            "warn and no_warn",
        ),
        (
            "eval instant at 0 a\n  expect no_info\n  expect info\n",
            3,
            "info and no_info",
        ),
        (
            "eval instant at 0 a\n  expect fail\n  expect fail msg: x\n",
            3,
            "multiple expect fail",
        ),
        (
            "eval instant at 0 a\n  expect sometimes\n",
            2,
            "invalid expect line",
        ),
        (
            "eval instant at 0 a\n  expect fail regex: (\n",
            2,
            "invalid regex",
        ),
        (
            "eval instant at 0 a\n  expect ordered msg: x\n",
            2,
            "takes no",
        ),
        (
            "eval instant at 0 a\n  expect fail msg:\n",
            2,
            "invalid expect line",
        ),
    ];
    for (text, line, needle) in cases {
        let e = parse_err(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e}");
        assert_eq!(e.file, "t.test");
    }
}

#[test]
fn expect_string_takes_double_or_back_quotes() {
    let s = parse(
        "eval instant at 0 \"Foo\"\n  expect string \"Foo\"\n\n\
         eval instant at 0 `Foo`\n  expect string ` Foo `\n\n\
         eval instant at 0 \"\"\n  expect string \"\"\n",
    );
    let got: Vec<&str> = s
        .commands
        .iter()
        .map(|c| eval_of(c).expected_string.as_deref().unwrap())
        .collect();
    assert_eq!(got, vec!["Foo", " Foo ", ""]);
    for bad in [
        "expect string",
        "expect string Foo",
        "expect string 'Foo'",
        "expect string \"Foo",
    ] {
        let text = format!("eval instant at 0 \"Foo\"\n  {bad}\n");
        assert_eq!(parse_err(&text).line, 2, "{bad:?}");
    }
    let e = parse_err("eval range from 0 to 1m step 1m \"a\"\n  expect string \"a\"\n");
    assert!(e.message.contains("only valid for instant"), "{e}");
}

#[test]
fn expect_range_vector_sets_the_grid_and_allows_several_values() {
    let s = parse(
        "eval instant at 1m m[1m]\n  expect range vector from 10s to 1m step 10s\n  m{env=\"a\"} 2 3 4 5 6\n",
    );
    let e = eval_of(&s.commands[0]);
    assert_eq!(
        e.range_vector,
        Some(Grid {
            start_ms: 10_000,
            end_ms: 60_000,
            step_ms: 10_000
        })
    );
    assert_eq!(series_of(e)[0].values.len(), 5);
}

#[test]
fn instant_expectation_needs_exactly_one_value_without_range_vector() {
    let e = parse_err("eval instant at 0 a\n  a 1 2\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("expect range vector"), "{e}");
    assert!(
        parse_err("eval instant at 0 a\n  a\n")
            .message
            .contains("no value")
    );
}

#[test]
fn duplicate_expected_series_is_an_error() {
    let e = parse_err("eval instant at 0 a\n  a{x=\"1\"} 1\n  {__name__=\"a\", x=\"1\"} 2\n");
    assert_eq!(e.line, 3);
}

#[test]
fn a_comment_ends_a_block_as_in_prometheus() {
    let e = parse_err("load 1m\n  a 1\n  # comment\n  b 1\n");
    assert_eq!(e.line, 4);
    assert!(e.message.contains("invalid command"), "{e}");
}

#[test]
fn command_inside_a_block_gets_a_hint() {
    let e = parse_err("load 1m\n  a 1\neval instant at 0 a\n");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("blank line"), "{e}");
}

#[test]
fn malformed_commands_name_file_and_line() {
    let cases = [
        ("\n\nfrobnicate 1m\n", 3, "invalid command"),
        ("load\n", 1, "invalid load command"),
        ("load 1x\n", 1, "invalid load interval"),
        ("load 0\n", 1, "positive"),
        ("loadx 1m\n", 1, "invalid load command"),
        ("load 1m\n  a 1 +\n", 2, "invalid series"),
        ("load 1m\n  a{b=\"c\" 1\n", 2, "invalid series"),
        ("clear now\n", 1, "after clear"),
        ("eval instant at 1q x\n", 1, "invalid timestamp"),
        ("eval instant 1m x\n", 1, "invalid eval command"),
        ("eval instant  1m x\n", 1, "at <time>"),
        ("eval sometime x\n", 1, "invalid eval command"),
        ("eval range from 2m to 1m step 1m x\n", 1, "before start"),
        ("eval range from 0 to 1m step 1.5s x\n", 1, "invalid step"),
        (
            "eval instant at 0 x\n  {a=\"b\"} 1 _x\n",
            2,
            "invalid expected result",
        ),
        (
            "eval instant at 0 x\n  expect range vector from 1m to 0 step 1s\n",
            2,
            "before start",
        ),
        (
            "eval instant at 0 x\n  expect range vector 1m\n",
            2,
            "expect range vector from",
        ),
    ];
    for (text, line, needle) in cases {
        let e = parse_err(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e}");
        assert!(
            e.to_string().starts_with(&format!("t.test:{line}: ")),
            "{e}"
        );
    }
}

#[test]
fn histogram_expectations_are_detected() {
    let s = parse("eval instant at 0 h\n  h {{count:1}}\n\neval instant at 0 f\n  f 1\n");
    assert!(eval_of(&s.commands[0]).expects_histograms());
    assert!(!eval_of(&s.commands[1]).expects_histograms());
}

#[test]
fn query_context_functions_are_recognised() {
    assert!(QUERY_CONTEXT_FUNCS.is_match("x + step()"));
    assert!(QUERY_CONTEXT_FUNCS.is_match("range()"));
    assert!(!QUERY_CONTEXT_FUNCS.is_match("rate(x[5m])"));
}
