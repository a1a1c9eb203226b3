//! The requests to `/api/v1/query` and `/api/v1/query_range`: result sets of every type, parameters
//! good and bad, PromQL that does not parse, and evaluation errors.

use crate::compare::{Case, Check::*, Method::*, error_changed};
use crate::{Params, Times, params, rfc3339, secs};

/// `p` with one more parameter.
fn with(mut p: Params, key: &'static str, value: &str) -> Params {
    p.push((key, value.to_string()));
    p
}

pub fn cases(at: &Times) -> Vec<Case> {
    let (base, min) = (at.base, 60_000);
    let t = at.t.clone();
    let own = params;
    let instant = |q: &str| at.instant(q);
    let range = |q: &str, step: &str| at.range(q, step);
    let case = Case::new;
    let q = |name, query: &str| case(name, Get, "/api/v1/query", instant(query), Same);
    let r = |name, query: &str, step: &str| {
        case(name, Get, "/api/v1/query_range", range(query, step), Same)
    };
    // PromQL that does not parse: 400 bad_data with the same position and message in 2.42 and 3.x.
    let bad = |name, query: &str| q(name, query);
    let hq = "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))";

    vec![
        // Instant queries with results.
        q("selector_returns_every_series", "http_requests_total"),
        q(
            "matchers_select",
            r#"http_requests_total{code!="200",job=~"a.*"}"#,
        ),
        q("rate_of_counters", "rate(http_requests_total[5m])"),
        q(
            "sum_by_of_rate",
            "sum by (job) (rate(http_requests_total[5m]))",
        ),
        q(
            "increase_across_a_counter_reset",
            r#"increase(http_requests_total{code="500"}[15m])"#,
        ),
        q("histogram_quantile_of_classic_buckets", hq),
        q("comparison_filters", "temperature_celsius > 20"),
        q("comparison_with_bool", "temperature_celsius > bool 20"),
        q(
            "over_time_functions",
            "avg_over_time(temperature_celsius[10m]) - min_over_time(temperature_celsius[10m])",
        ),
        q("float_formatting_matches_go", "odd_values"),
        q("label_values_are_escaped", "odd_labels"),
        q("topk_keeps_labels", "topk(1, temperature_celsius)"),
        q("sort_desc_orders_results", "sort_desc(http_requests_total)"),
        q("offset_shifts_back", "http_requests_total offset 5m"),
        q(
            "at_modifier_pins_the_time",
            &format!("temperature_celsius @ {}", secs(base + 20 * min)),
        ),
        q("range_vector_is_a_matrix", "temperature_celsius[3m]"),
        q(
            "label_replace_adds_a_label",
            r#"label_replace(temperature_celsius, "place", "$1", "room", "(.*)")"#,
        ),
        q(
            "group_left_joins",
            "http_requests_total / on(job, instance) group_left sum by (job, instance) (http_requests_total)",
        ),
        q(
            "count_values_labels_by_value",
            r#"count_values("v", temperature_celsius)"#,
        ),
        q(
            "absent_of_nothing_is_one",
            r#"absent(nonexistent_metric{job="x"})"#,
        ),
        q("scalar_result", "scalar(sum(temperature_celsius))"),
        q("number_literal_is_a_scalar", "1 + 2 * 3"),
        q("time_function_is_a_scalar", "time()"),
        q("string_literal_is_a_string", r#""hello""#),
        q("empty_result_is_an_empty_vector", "nonexistent_metric"),
        case(
            "after_the_lookback_nothing_is_returned",
            Get,
            "/api/v1/query",
            own(&[
                ("query", "http_requests_total"),
                ("time", &secs(base + 50 * min)),
            ]),
            Same,
        ),
        case(
            "rfc3339_time",
            Get,
            "/api/v1/query",
            own(&[
                ("query", r#"http_requests_total{job="db"}"#),
                ("time", &rfc3339(base + 30 * min)),
            ]),
            Same,
        ),
        case(
            "post_form_instant_query",
            Post,
            "/api/v1/query",
            instant("sum(http_requests_total)"),
            Same,
        ),
        case(
            "sum_is_compensated_as_in_3x",
            Get,
            "/api/v1/query",
            instant("sum(rate(http_requests_total[5m]))"),
            Changed {
                at: "/data/result/0/value/1",
                ember: "0.3041666666666667",
                why: "3.x sums with Kahan compensation; 2.42's plain sum ends in 0.30416666666666664",
            },
        ),
        case(
            "the_first_of_repeated_parameters_counts",
            Get,
            "/api/v1/query",
            own(&[
                ("query", "temperature_celsius"),
                ("time", &t),
                ("time", &secs(base + 20 * min)),
            ]),
            Same,
        ),
        case(
            "form_body_takes_precedence_over_the_url",
            PostWithQuery("query=odd_values"),
            "/api/v1/query",
            instant("temperature_celsius"),
            Same,
        ),
        case(
            "fractional_time_rounds_to_milliseconds",
            Get,
            "/api/v1/query",
            own(&[("query", "vector(1)"), ("time", &format!("{t}.1236"))]),
            Same,
        ),
        case(
            "rfc3339_time_with_an_offset",
            Get,
            "/api/v1/query",
            own(&[
                ("query", "temperature_celsius"),
                (
                    "time",
                    &rfc3339(base + 30 * min + 2 * 60 * min).replace('Z', "+02:00"),
                ),
            ]),
            Same,
        ),
        case(
            "stats_are_reported",
            Get,
            "/api/v1/query",
            own(&[
                ("query", "temperature_celsius"),
                ("time", &t),
                ("stats", "all"),
            ]),
            Without {
                drop: &[
                    "/data/stats/timings",
                    "/data/stats/samples/samplesRead",
                    "/data/stats/samples/samplesReadPerStep",
                    "/data/stats/samples/totalQueryableSamplesPerStep",
                ],
                why: "timings are the process's own; 3.x added samplesRead; per-step counts need a \
                      feature flag in Prometheus",
            },
        ),
        // Range queries.
        r("range_rate", "rate(http_requests_total[5m])", "60"),
        r(
            "range_step_not_dividing_the_range",
            "temperature_celsius",
            "90",
        ),
        r("range_step_as_duration", "odd_values", "2m"),
        r("range_scalar_is_a_matrix", "1", "300"),
        r("range_empty_result", "nonexistent_metric", "60"),
        r("range_histogram_quantile", hq, "120"),
        case(
            "range_single_point",
            Get,
            "/api/v1/query_range",
            own(&[
                ("query", "temperature_celsius"),
                ("start", &t),
                ("end", &t),
                ("step", "15"),
            ]),
            Same,
        ),
        case(
            "range_rfc3339_and_post_form",
            Post,
            "/api/v1/query_range",
            own(&[
                ("query", "sum by (job) (http_requests_total)"),
                ("start", &rfc3339(base + 10 * min)),
                ("end", &rfc3339(base + 20 * min)),
                ("step", "1m"),
            ]),
            Same,
        ),
        // Bad parameters.
        case(
            "missing_query_is_a_parse_error",
            Get,
            "/api/v1/query",
            vec![],
            error_changed(
                r#"invalid parameter "query": unknown position: parse error: no expression found in input"#,
                "3.x prints an empty query's position as `unknown position` (posrange.StartPosInput); 2.42 printed `1:1`",
            ),
        ),
        case(
            "bad_time",
            Get,
            "/api/v1/query",
            own(&[("query", "up"), ("time", "x")]),
            error_changed(
                r#"invalid parameter "time": invalid time value for 'time': cannot parse "x" to a valid timestamp"#,
                "3.x lower-cased `Invalid time value` (Go style: error strings start lower-case)",
            ),
        ),
        case(
            "bad_timeout",
            Get,
            "/api/v1/query",
            own(&[("query", "up"), ("timeout", "x")]),
            Same,
        ),
        case(
            "range_bad_start",
            Get,
            "/api/v1/query_range",
            own(&[("query", "up"), ("start", "x"), ("end", "2"), ("step", "1")]),
            Same,
        ),
        case(
            "range_bad_end",
            Get,
            "/api/v1/query_range",
            own(&[("query", "up"), ("start", "1"), ("end", "x"), ("step", "1")]),
            Same,
        ),
        case(
            "range_end_before_start",
            Get,
            "/api/v1/query_range",
            own(&[("query", "up"), ("start", "2"), ("end", "1"), ("step", "1")]),
            Same,
        ),
        case(
            "range_bad_step",
            Get,
            "/api/v1/query_range",
            own(&[("query", "up"), ("start", "1"), ("end", "2"), ("step", "x")]),
            Same,
        ),
        case(
            "range_missing_step",
            Get,
            "/api/v1/query_range",
            own(&[("query", "up"), ("start", "1"), ("end", "2")]),
            Same,
        ),
        case(
            "range_zero_step",
            Get,
            "/api/v1/query_range",
            own(&[("query", "up"), ("start", "1"), ("end", "2"), ("step", "0")]),
            Same,
        ),
        case(
            "range_negative_step",
            Get,
            "/api/v1/query_range",
            own(&[
                ("query", "up"),
                ("start", "1"),
                ("end", "2"),
                ("step", "-5"),
            ]),
            Same,
        ),
        case(
            "range_step_overflowing_int64",
            Get,
            "/api/v1/query_range",
            own(&[
                ("query", "up"),
                ("start", "1"),
                ("end", "2"),
                ("step", "1e10"),
            ]),
            Same,
        ),
        case(
            "range_too_many_points",
            Get,
            "/api/v1/query_range",
            own(&[
                ("query", "up"),
                ("start", "0"),
                ("end", "100000"),
                ("step", "1"),
            ]),
            Same,
        ),
        case(
            "range_of_a_string_literal",
            Get,
            "/api/v1/query_range",
            range(r#""hello""#, "60"),
            error_changed(
                r#"invalid parameter "query": invalid expression type "string" for range query, must be Scalar or instant Vector"#,
                "3.x reports NewRangeQuery's type error through invalidParamError (`invalid parameter \"query\": ` prefix); 2.42 returned it bare",
            ),
        ),
        case(
            "range_of_a_range_vector",
            Get,
            "/api/v1/query_range",
            range("temperature_celsius[5m]", "60"),
            error_changed(
                r#"invalid parameter "query": invalid expression type "range vector" for range query, must be Scalar or instant Vector"#,
                "as range_of_a_string_literal",
            ),
        ),
        case(
            "range_bad_promql",
            Get,
            "/api/v1/query_range",
            range("sum(", "60"),
            error_changed(
                r#"invalid parameter "query": 1:5: parse error: unclosed left parenthesis"#,
                "as range_of_a_string_literal: 3.x prefixes every NewRangeQuery error",
            ),
        ),
        case(
            "range_fractional_step_keeps_milliseconds",
            Get,
            "/api/v1/query_range",
            own(&[
                ("query", "temperature_celsius"),
                ("start", &t),
                ("end", &secs(base + 30 * min + 30_000)),
                ("step", "7.5"),
            ]),
            Same,
        ),
        // PromQL that does not parse.
        bad("unclosed_call", "up("),
        bad("unclosed_aggregation", "sum(up"),
        bad("instant_vector_where_a_range_is_needed", "rate(up)"),
        bad("missing_right_operand", "up +"),
        bad("empty_selector", "{}"),
        case(
            "bad_regex",
            Get,
            "/api/v1/query",
            instant(r#"up{job=~"("}"#),
            Changed {
                at: "/error",
                ember: "invalid parameter \"query\": 1:4: parse error: error parsing regexp: missing closing ): `(`",
                why: "3.x parses the regex alone (syntax.Parse), not wrapped in `^(?:...)$` as 2.42 did",
            },
        ),
        bad("two_expressions", "foo bar"),
        bad("unknown_function", "no_such_function(up)"),
        case(
            "bad_range_duration",
            Get,
            "/api/v1/query",
            instant("up[5x]"),
            error_changed(
                r#"invalid parameter "query": 1:4: parse error: bad number or duration syntax: "5""#,
                "3.x lexes numbers and durations as one token kind (duration arithmetic), hence the message",
            ),
        ),
        bad("too_few_arguments", "histogram_quantile(0.9)"),
        bad("string_in_arithmetic", r#""a" + 1"#),
        bad("two_operators", "1 +* 2"),
        // Evaluation errors: 422 execution.
        case(
            "many_to_many_matching",
            Get,
            "/api/v1/query",
            instant("http_requests_total + on(job) http_requests_total"),
            error_changed(
                "found duplicate series for the match group {job=\"api\"} on the right hand-side of the operation: \
                 [{__name__=\"http_requests_total\", code=\"200\", instance=\"a\", job=\"api\"}, \
                 {__name__=\"http_requests_total\", code=\"500\", instance=\"a\", job=\"api\"}];\
                 many-to-many matching not allowed: matching labels must be unique on one side",
                "3.x sorts the two duplicates in the message (engine.go: consistent between runs); 2.42 printed them as found",
            ),
        ),
        q(
            "duplicate_labelsets_after_label_replace",
            r#"label_replace(temperature_celsius, "room", "x", "", "")"#,
        ),
        // `stats`: the sample counts must agree with 2.42's; timings describe the process, and
        // `samplesRead` is 3.x's addition.
        case(
            "stats_true_counts_samples_like_prometheus",
            Get,
            "/api/v1/query",
            with(
                instant("max(rate(http_requests_total[5m]))"),
                "stats",
                "true",
            ),
            Without {
                drop: &["/data/stats/timings", "/data/stats/samples/samplesRead"],
                why: "timings are the process's own; samplesRead is new in 3.x",
            },
        ),
        case(
            "stats_all_on_a_range_query",
            Get,
            "/api/v1/query_range",
            with(range("rate(http_requests_total[5m])", "60"), "stats", "all"),
            Without {
                drop: &[
                    "/data/stats/timings",
                    "/data/stats/samples/samplesRead",
                    "/data/stats/samples/samplesReadPerStep",
                    "/data/stats/samples/totalQueryableSamplesPerStep",
                ],
                why: "per-step counts need --enable-feature=promql-per-step-stats in Prometheus",
            },
        ),
    ]
}
