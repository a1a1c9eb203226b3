#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OM: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn entries(ct: &str, input: &str) -> Vec<Entry<'static>> {
    let owned: &'static str = Box::leak(input.to_string().into_boxed_str());
    parse(ct, owned.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn samples(ct: &str, input: &str) -> Vec<(String, f64, Option<i64>)> {
    entries(ct, input)
        .into_iter()
        .filter_map(|e| match e {
            Entry::Sample(s) => {
                let l = s.to_labels().unwrap().to_string();
                Some((l, s.value, s.timestamp_ms))
            }
            _ => None,
        })
        .collect()
}

fn error(ct: &str, input: &str) -> String {
    parse(ct, input.as_bytes())
        .find_map(Result::err)
        .map(|e| e.to_string())
        .unwrap_or_else(|| panic!("no error for {input:?}"))
}

#[test]
fn text_format_samples_metadata_and_comments() {
    let input = r#"# HELP http_requests_total The total number of HTTP requests.\nSecond line \\ here
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# A normal comment.
#no space comment
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf
  leading_blanks	{ a = "b" , } 1
"#;
    let es = entries(TEXT, input);
    assert_eq!(
        es[0],
        Entry::Help {
            family: "http_requests_total".into(),
            text: "The total number of HTTP requests.\nSecond line \\ here".into()
        }
    );
    assert_eq!(
        es[1],
        Entry::Type {
            family: "http_requests_total".into(),
            kind: MetricType::Counter
        }
    );
    let s = samples(TEXT, input);
    assert_eq!(s.len(), 6);
    assert_eq!(s[4].1, f64::INFINITY);
    assert_eq!(
        s[0],
        (
            r#"http_requests_total{code="200", method="post"}"#.into(),
            1027.0,
            Some(1395066363000)
        )
    );
    assert_eq!(
        s[2].0,
        r#"msdos_file_access_time_seconds{error="Cannot find file:\n\"FILE.TXT\"", path="C:\\DIR\\FILE.TXT"}"#
    );
    assert_eq!(
        s[3],
        ("metric_without_timestamp_and_labels{}".into(), 12.47, None)
    );
    // Timestamps are plain digits in the text format: "-3982045" is not one.
    assert!(
        error(TEXT, "something_weird +Inf -3982045\n")
            .contains("expected timestamp or end of line")
    );
    assert_eq!(s[5].0, r#"leading_blanks{a="b"}"#);
}

#[test]
fn special_values_and_nan_is_never_the_stale_marker() {
    let s = samples(TEXT, "a NaN\nb +Inf\nc -Inf\nd 1e3\n");
    assert!(s[0].1.is_nan());
    assert_eq!(s[0].1.to_bits(), NORMAL_NAN_BITS);
    assert_eq!(
        (s[1].1, s[2].1, s[3].1),
        (f64::INFINITY, f64::NEG_INFINITY, 1000.0)
    );
    assert!(error(TEXT, "a 0x1p3\n").contains("invalid value"));
    assert!(error(TEXT, "a 1_000\n").contains("invalid value"));
    assert!(error(TEXT, "a abc\n").starts_with("line 1: invalid value \"abc\""));
}

#[test]
fn histogram_and_summary_label_values_are_normalised() {
    let input = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_bucket{le=\"0.25\"} 0\nh_sum 3\nh_count 2\n# TYPE s summary\ns{quantile=\"0\"} 1\ns{quantile=\"0.99\"} 2\ns_sum 1\n# TYPE g gauge\ng{le=\"1\"} 1\n";
    let s = samples(TEXT, input);
    let names: Vec<_> = s.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        names,
        [
            r#"h_bucket{le="1.0"}"#,
            r#"h_bucket{le="+Inf"}"#,
            r#"h_bucket{le="0.25"}"#,
            "h_sum{}",
            "h_count{}",
            r#"s{quantile="0.0"}"#,
            r#"s{quantile="0.99"}"#,
            "s_sum{}",
            r#"g{le="1"}"#,
        ]
    );
}

#[test]
fn openmetrics_float_format_is_go_g_with_dot_zero() {
    let cases = [
        (1.0, "1.0"),
        (0.0, "0.0"),
        (100.0, "100.0"),
        (1e6, "1e+06"),
        (123456.0, "123456.0"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (2.5e-7, "2.5e-07"),
        (-1.5, "-1.5"),
        (1.5e300, "1.5e+300"),
    ];
    for (f, want) in cases {
        assert_eq!(format_openmetrics_float(f), want, "{f}");
    }
}

#[test]
fn utf8_quoted_metric_and_label_names() {
    let s = samples(TEXT, "{\"my.metric\", \"my.label\"=\"v\"} 1\n");
    assert_eq!(s[0].0, r#"{"my.metric", "my.label"="v"}"#);
    let s = samples(OM, "{\"my.metric\",a=\"v\"} 1\n# EOF\n");
    assert_eq!(s[0].0, r#"{"my.metric", a="v"}"#);
    assert!(error(TEXT, "m{\"x\"} 1\n").contains("metric name already set"));
    assert!(error(TEXT, "{a=\"b\"} 1\n").contains("metric name not set"));
}

#[test]
fn text_format_errors_name_the_line() {
    let cases = [
        (
            "ok 1\nbad{a=\"b\" 1\n",
            "line 2: expected ',' or '}', got '1'",
        ),
        (
            "a{b=c} 1\n",
            "line 1: expected quoted value for label \"b\", got 'c'",
        ),
        (
            "a{b=\"c\",b=\"d\"} 1\n",
            "line 1: duplicate label name \"b\"",
        ),
        (
            "a\n",
            "line 1: expected value after metric \"a\", got end of line",
        ),
        (
            "a{b=\"unterminated} 1\n",
            "line 1: unterminated quoted string",
        ),
        (
            "a 1 99999999999999999999\n",
            "line 1: timestamp \"99999999999999999999\" out of range",
        ),
        (
            "\n\n# TYPE a countr\n",
            "line 3: invalid metric type \"countr\"",
        ),
        (
            "# HELP 1abc x\n",
            "line 1: expected metric name after HELP, got '1'",
        ),
        ("-a 1\n", "line 1: expected metric name or '{', got '-'"),
        ("a{1=\"x\"} 1\n", "line 1: expected label name, got '1'"),
    ];
    for (input, want) in cases {
        assert_eq!(error(TEXT, input), want, "{input:?}");
    }
}

#[test]
fn empty_quoted_names_are_refused() {
    // Fuzz finding: `{""} 1 2` used to yield a sample with an empty name.
    assert_eq!(error(TEXT, "{\"\"} 1 2\n"), "line 1: empty quoted name");
    assert_eq!(
        error(TEXT, "a{\"\"=\"x\"} 1\n"),
        "line 1: empty quoted name"
    );
    assert_eq!(error(OM, "{\"\"} 1\n# EOF\n"), "line 1: empty quoted name");
}

#[test]
fn invalid_utf8_is_an_error_naming_the_line() {
    let e = parse(TEXT, b"a 1\nb{c=\"\xff\"} 1\n")
        .find_map(Result::err)
        .unwrap();
    assert_eq!(e.to_string(), "line 2: invalid UTF-8");
}

#[test]
fn text_last_line_may_lack_a_line_break_and_blank_lines_are_skipped() {
    assert_eq!(samples(TEXT, "\n\n  \na 1").len(), 1);
    assert_eq!(samples(TEXT, "").len(), 0);
}

#[test]
fn openmetrics_samples_metadata_and_eof() {
    let input = "# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0
# TYPE foo counter
foo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879607.7
foo_created 1520430000.123
# TYPE b info
b_info{version=\"1.0\"} 1
# EOF
";
    let es = entries(OM, input);
    assert_eq!(
        es[1],
        Entry::Unit {
            family: "acme_http_router_request_seconds".into(),
            unit: "seconds".into()
        }
    );
    let s = samples(OM, input);
    assert_eq!(s.len(), 4, "{s:?}");
    assert_eq!(s[2], ("foo_total{}".into(), 17.0, Some(1520879607789)));
    assert_eq!(s[3].0, r#"b_info{version="1.0"}"#);
}

#[test]
fn openmetrics_requires_eof_and_nothing_after_it() {
    assert_eq!(error(OM, "a 1\n"), "line 2: data does not end with # EOF");
    assert_eq!(error(OM, "a 1"), "line 1: data does not end with # EOF");
    assert_eq!(
        error(OM, "# EOF\na 1\n"),
        "line 2: unexpected data after # EOF"
    );
    assert_eq!(samples(OM, "a 1\n# EOF").len(), 1);
}

#[test]
fn openmetrics_is_strict_about_spacing_and_comments() {
    let cases = [
        ("a  1\n# EOF\n", "line 1: expected value, got ' '"),
        (
            "a{b=\"c\", d=\"e\"} 1\n# EOF\n",
            "line 1: expected label name, got ' '",
        ),
        ("\n# EOF\n", "line 1: unexpected empty line"),
        (
            "# random comment\n# EOF\n",
            "line 1: invalid comment: expected # HELP, # TYPE, # UNIT or # EOF",
        ),
        (
            "# TYPE a untyped\n# EOF\n",
            "line 1: invalid metric type \"untyped\"",
        ),
        (
            "# UNIT a_bytes seconds\n# EOF\n",
            "line 1: unit \"seconds\" not a suffix of metric \"a_bytes\"",
        ),
        ("a 1 NaN\n# EOF\n", "line 1: invalid timestamp NaN"),
        (
            "a 1 # {x=\"y\"}\n# EOF\n",
            "line 1: expected space before exemplar value, got end of line",
        ),
        (
            "a{b=\"c\nd\"} 1\n# EOF\n",
            "line 1: line break in quoted string",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(error(OM, input), want, "{input:?}");
    }
}

#[test]
fn openmetrics_exemplar_without_timestamp_and_on_buckets() {
    let input = "# TYPE h histogram\nh_bucket{le=\"0.5\"} 3 # {id=\"x\"} 0.2\nh_bucket{le=\"+Inf\"} 4 123 # {} 1 2\nh_count 4\nh_sum 1\nh_created 5\n# EOF\n";
    let s = samples(OM, input);
    assert_eq!(s.len(), 4);
    assert_eq!(s[0].0, r#"h_bucket{le="0.5"}"#);
    assert_eq!(s[1].2, Some(123_000));
}

#[test]
fn content_type_selects_the_format() {
    assert_eq!(Format::from_content_type(OM), Some(Format::OpenMetrics));
    assert_eq!(
        Format::from_content_type("text/plain"),
        Some(Format::PrometheusText)
    );
    assert_eq!(
        Format::from_content_type("application/vnd.google.protobuf; proto=x"),
        None
    );
    assert_eq!(Format::from_content_type(""), None);
    assert_eq!(parse("", b"").format(), Format::PrometheusText);
}

#[test]
fn parsing_stops_after_the_first_error() {
    let items: Vec<_> = parse(TEXT, b"a 1\nb x\nc 2\n").collect();
    assert_eq!(items.len(), 2);
    assert!(items[1].is_err());
}

proptest::proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        for ct in [TEXT, OM] {
            for _ in parse(ct, &bytes) {}
        }
    }

    #[test]
    fn written_samples_parse_back(
        name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,10}",
        lv in "[ -~\n]{0,10}",
        v in proptest::num::f64::NORMAL | proptest::num::f64::ZERO,
        ts in proptest::option::of(0i64..4_000_000_000_000),
    ) {
        let esc = lv.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let line = match ts {
            Some(t) => format!("{name}{{l=\"{esc}\"}} {v:?} {t}\n"),
            None => format!("{name}{{l=\"{esc}\"}} {v:?}\n"),
        };
        let es: Vec<_> = parse(TEXT, line.as_bytes()).collect::<Result<_, _>>().unwrap();
        let Entry::Sample(s) = &es[0] else { panic!("not a sample") };
        proptest::prop_assert_eq!(s.name.as_ref(), name.as_str());
        proptest::prop_assert_eq!(s.labels[0].1.as_ref(), lv.as_str());
        proptest::prop_assert_eq!(s.value, v);
        proptest::prop_assert_eq!(s.timestamp_ms, ts);
    }
}
