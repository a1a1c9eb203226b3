//! The requests to every other endpoint: series, labels and label values, `format_query`, status and
//! the endpoints Ember answers empty, `/federate`, and unknown paths, methods and headers.

use crate::compare::{Case, Check::*, Method::*, error_changed};
use crate::{Times, params};

pub fn cases(at: &Times) -> Vec<Case> {
    let (start, end) = (at.start.clone(), at.end.clone());
    let own = params;
    let instant = |q: &str| at.instant(q);
    let case = Case::new;

    vec![
        // Series.
        case(
            "series_by_match",
            Get,
            "/api/v1/series",
            own(&[("match[]", "http_requests_total")]),
            Same,
        ),
        case(
            "series_union_of_match_sets",
            Get,
            "/api/v1/series",
            own(&[
                ("match[]", r#"{job="api"}"#),
                ("match[]", "temperature_celsius"),
            ]),
            Same,
        ),
        case(
            "series_all",
            Get,
            "/api/v1/series",
            own(&[("match[]", r#"{__name__=~".+"}"#)]),
            Same,
        ),
        case(
            "series_outside_the_data_is_empty",
            Get,
            "/api/v1/series",
            own(&[
                ("match[]", "http_requests_total"),
                ("start", "0"),
                ("end", "1000"),
            ]),
            Same,
        ),
        case(
            "series_post_form",
            Post,
            "/api/v1/series",
            own(&[("match[]", "odd_values"), ("start", &start), ("end", &end)]),
            Same,
        ),
        case("series_without_match", Get, "/api/v1/series", vec![], Same),
        case(
            "series_with_an_empty_match",
            Get,
            "/api/v1/series",
            own(&[("match[]", "")]),
            error_changed(
                r#"invalid parameter "match[]": unknown position: parse error: unexpected end of input"#,
                "as missing_query_is_a_parse_error",
            ),
        ),
        case(
            "series_with_only_empty_matchers",
            Get,
            "/api/v1/series",
            own(&[("match[]", "{}")]),
            Same,
        ),
        case(
            "series_with_a_match_that_does_not_parse",
            Get,
            "/api/v1/series",
            own(&[("match[]", "up+1")]),
            Same,
        ),
        case(
            "series_bad_start",
            Get,
            "/api/v1/series",
            own(&[("match[]", "up"), ("start", "x")]),
            error_changed(
                r#"invalid parameter "start": invalid time value for 'start': cannot parse "x" to a valid timestamp"#,
                "as bad_time",
            ),
        ),
        // Labels and label values.
        case("labels_all", Get, "/api/v1/labels", vec![], Same),
        case(
            "labels_by_match",
            Get,
            "/api/v1/labels",
            own(&[("match[]", "temperature_celsius")]),
            Same,
        ),
        case(
            "labels_post_form",
            Post,
            "/api/v1/labels",
            own(&[("match[]", r#"{job="api"}"#)]),
            Same,
        ),
        case(
            "labels_bad_end",
            Get,
            "/api/v1/labels",
            own(&[("end", "x")]),
            error_changed(
                r#"invalid parameter "end": invalid time value for 'end': cannot parse "x" to a valid timestamp"#,
                "as bad_time",
            ),
        ),
        case(
            "labels_bad_match",
            Get,
            "/api/v1/labels",
            own(&[("match[]", "-up")]),
            Same,
        ),
        case(
            "label_values_of_job",
            Get,
            "/api/v1/label/job/values",
            vec![],
            Same,
        ),
        case(
            "label_values_of_metric_names",
            Get,
            "/api/v1/label/__name__/values",
            vec![],
            Same,
        ),
        case(
            "label_values_by_match",
            Get,
            "/api/v1/label/room/values",
            own(&[("match[]", r#"temperature_celsius{room="hall"}"#)]),
            Same,
        ),
        case(
            "label_values_of_an_unknown_label_are_empty",
            Get,
            "/api/v1/label/no_such_label/values",
            vec![],
            Same,
        ),
        case(
            "label_name_that_is_not_utf8",
            Get,
            "/api/v1/label/%FF/values",
            vec![],
            Same,
        ),
        case(
            "label_name_that_is_not_a_legacy_name",
            Get,
            "/api/v1/label/1bad/values",
            vec![],
            EmberOnly {
                status: 200,
                why: "3.x accepts any UTF-8 label name; 2.42 refused names outside [a-zA-Z_][a-zA-Z0-9_]*",
            },
        ),
        case(
            "label_values_post_is_not_allowed",
            Post,
            "/api/v1/label/job/values",
            vec![],
            Same,
        ),
        case(
            "label_values_with_only_empty_matchers",
            Get,
            "/api/v1/label/job/values",
            own(&[("match[]", "{}")]),
            Same,
        ),
        case(
            "label_values_bad_start",
            Get,
            "/api/v1/label/job/values",
            own(&[("start", "x")]),
            error_changed(
                r#"invalid parameter "start": invalid time value for 'start': cannot parse "x" to a valid timestamp"#,
                "as bad_time",
            ),
        ),
        // format_query.
        case(
            "format_query_pretty_prints",
            Get,
            "/api/v1/format_query",
            own(&[("query", "sum(rate(http_requests_total[5m]))by(job)")]),
            Same,
        ),
        case(
            "format_query_post_form",
            Post,
            "/api/v1/format_query",
            own(&[("query", "a+on(b)group_left(c)d")]),
            Same,
        ),
        case(
            "format_query_of_bad_promql",
            Get,
            "/api/v1/format_query",
            own(&[("query", "sum(")]),
            Same,
        ),
        // Status and the endpoints Ember answers empty.
        case(
            "buildinfo",
            Get,
            "/api/v1/status/buildinfo",
            vec![],
            ShapeOnly {
                drop: &[],
                why: "versions and build details are each server's own",
            },
        ),
        case(
            "runtimeinfo",
            Get,
            "/api/v1/status/runtimeinfo",
            vec![],
            ShapeOnly {
                drop: &[],
                why: "start time, goroutines and retention are each process's own",
            },
        ),
        case(
            "flags",
            Get,
            "/api/v1/status/flags",
            vec![],
            StatusOnly {
                why: "each server has its own flags",
            },
        ),
        case(
            "tsdb_status",
            Get,
            "/api/v1/status/tsdb",
            vec![],
            ShapeOnly {
                drop: &[],
                why: "chunk counts and label memory depend on the storage; series counts are checked by tsdb_head_series_agree",
            },
        ),
        case("walreplay", Get, "/api/v1/status/walreplay", vec![], Same),
        case(
            "config",
            Get,
            "/api/v1/status/config",
            vec![],
            ShapeOnly {
                drop: &[],
                why: "Prometheus shows its config file; Ember has none yet",
            },
        ),
        case("metadata", Get, "/api/v1/metadata", vec![], Same),
        case(
            "targets",
            Get,
            "/api/v1/targets",
            vec![],
            Without {
                drop: &["/data/droppedTargetCounts"],
                why: "3.x added droppedTargetCounts (2.49)",
            },
        ),
        case("rules", Get, "/api/v1/rules", vec![], Same),
        case("alerts", Get, "/api/v1/alerts", vec![], Same),
        case(
            "query_exemplars_are_empty",
            Get,
            "/api/v1/query_exemplars",
            own(&[
                ("query", "http_requests_total"),
                ("start", &start),
                ("end", &end),
            ]),
            Same,
        ),
        // Federation: the text format, byte for byte.
        case(
            "federate_by_match",
            Get,
            "/federate",
            own(&[("match[]", "temperature_celsius")]),
            Same,
        ),
        case(
            "federate_everything_formats_values_as_go",
            Get,
            "/federate",
            own(&[("match[]", r#"{__name__=~".+"}"#)]),
            Same,
        ),
        case(
            "federate_without_match_is_empty",
            Get,
            "/federate",
            vec![],
            Same,
        ),
        case(
            "federate_bad_match",
            Get,
            "/federate",
            own(&[("match[]", "-up")]),
            Same,
        ),
        // Unknown paths and methods.
        case(
            "unknown_api_path",
            Get,
            "/api/v1/no_such_endpoint",
            vec![],
            Same,
        ),
        case("unknown_page", Get, "/no/such/page", vec![], Same),
        case(
            "root_answers",
            Get,
            "/",
            vec![],
            StatusOnly {
                why: "Prometheus serves its UI there (after a redirect); Ember has none",
            },
        ),
        case(
            "api_answers_are_gzipped_when_the_client_accepts_it",
            GetAcceptingGzip,
            "/api/v1/query",
            instant("odd_values"),
            Same,
        ),
        case(
            "put_is_not_allowed",
            Other("PUT"),
            "/api/v1/query",
            own(&[("query", "1")]),
            Same,
        ),
        case(
            "delete_series_needs_the_admin_api",
            Other("DELETE"),
            "/api/v1/series",
            own(&[("match[]", "up")]),
            EmberOnly {
                status: 405,
                why: "3.x dropped DELETE /api/v1/series (2.42 answered 500 `not implemented`)",
            },
        ),
        case(
            "options_answers_cors_preflight",
            Other("OPTIONS"),
            "/api/v1/query",
            vec![],
            Same,
        ),
        case(
            "cross_origin_get_allows_the_origin",
            GetFromOrigin("http://grafana.example"),
            "/api/v1/query",
            instant("temperature_celsius"),
            Same,
        ),
        case("unknown_api_version", Get, "/api/v2/query", vec![], Same),
    ]
}
