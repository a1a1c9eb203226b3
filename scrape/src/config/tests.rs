use super::*;
use crate::relabel::Action;

fn err(text: &str) -> String {
    Config::parse(text).unwrap_err().to_string()
}

#[test]
fn empty_file_is_the_default_config() {
    for text in ["", "\n# only a comment\n", "---\n"] {
        let c = Config::parse(text).unwrap();
        assert_eq!(c, Config::default());
    }
}

#[test]
fn defaults_match_prometheus() {
    let c = Config::parse("scrape_configs:\n  - job_name: a\n").unwrap();
    assert_eq!(c.global.scrape_interval, Duration::from_secs(60));
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
    assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
    let s = &c.scrape_configs[0];
    assert_eq!(s.scrape_interval, Duration::from_secs(60));
    assert_eq!(s.scrape_timeout, Duration::from_secs(10));
    assert_eq!(s.metrics_path, "/metrics");
    assert_eq!(s.scheme, "http");
    assert!(!s.honor_labels);
    assert!(s.honor_timestamps);
    assert!(s.enable_compression);
    assert!(s.http_client.follow_redirects && s.http_client.enable_http2);
}

#[test]
fn job_settings_inherit_from_global() {
    let c = Config::parse(
        "global:\n  scrape_interval: 5s\n  sample_limit: 100\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 1m\n    sample_limit: 7\n",
    )
    .unwrap();
    // Timeout defaults to min(10s, interval).
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(5));
    let a = &c.scrape_configs[0];
    assert_eq!(
        (a.scrape_interval, a.scrape_timeout),
        (Duration::from_secs(5), Duration::from_secs(5))
    );
    assert_eq!(a.sample_limit, 100);
    let b = &c.scrape_configs[1];
    assert_eq!(
        (b.scrape_interval, b.scrape_timeout),
        (Duration::from_secs(60), Duration::from_secs(5))
    );
    assert_eq!(b.sample_limit, 7);
}

#[test]
fn full_scrape_config_is_kept() {
    let c = Config::parse(
        r#"
global:
  external_labels: {region: eu, replica: ""}
scrape_configs:
  - job_name: node
    metrics_path: /probe
    scheme: https
    params: {module: [http_2xx, x]}
    honor_labels: true
    honor_timestamps: false
    sample_limit: 10
    label_limit: 3
    basic_auth: {username: u, password: p}
    tls_config: {insecure_skip_verify: true}
    static_configs:
      - targets: ['a:9100', 'b:9100']
        labels: {env: prod}
    file_sd_configs:
      - files: ['targets/*.json']
        refresh_interval: 1m
    relabel_configs:
      - source_labels: [__address__]
        target_label: instance
    metric_relabel_configs:
      - regex: 'go_.*'
        action: labeldrop
"#,
    )
    .unwrap();
    assert_eq!(c.global.external_labels.to_string(), r#"{region="eu"}"#);
    let s = &c.scrape_configs[0];
    assert_eq!(s.metrics_path, "/probe");
    assert_eq!(s.scheme, "https");
    assert_eq!(s.params["module"], vec!["http_2xx", "x"]);
    assert!(s.honor_labels && !s.honor_timestamps);
    assert_eq!((s.sample_limit, s.label_limit), (10, 3));
    assert_eq!(s.http_client.basic_auth.as_ref().unwrap().username, "u");
    assert!(format!("{:?}", s.http_client.basic_auth).contains("<secret>"));
    assert!(
        s.http_client
            .tls_config
            .as_ref()
            .unwrap()
            .insecure_skip_verify
    );
    assert_eq!(s.static_configs[0].targets, vec!["a:9100", "b:9100"]);
    assert_eq!(s.static_configs[0].labels["env"], "prod");
    assert_eq!(
        s.file_sd_configs[0].refresh_interval,
        Duration::from_secs(60)
    );
    assert_eq!(s.relabel_configs[0].target_label, "instance");
    assert_eq!(s.metric_relabel_configs[0].action, Action::LabelDrop);
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
}

#[test]
fn remote_write_and_read_are_parsed_with_defaults() {
    let c = Config::parse(
        "remote_write:\n  - url: http://x/api/v1/write\n    write_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'up'\n        action: keep\n    queue_config: {max_shards: 5}\nremote_read:\n  - url: http://y/api/v1/read\n    read_recent: true\n",
    )
    .unwrap();
    let w = &c.remote_write[0];
    assert_eq!(w.url, "http://x/api/v1/write");
    assert_eq!(w.remote_timeout, Duration::from_secs(30));
    assert_eq!(w.protobuf_message, "prometheus.WriteRequest");
    assert_eq!(w.write_relabel_configs[0].action, Action::Keep);
    assert!(!w.http_client.enable_http2);
    let r = &c.remote_read[0];
    assert_eq!(r.remote_timeout, Duration::from_secs(60));
    assert!(r.read_recent && r.filter_external_labels);
    assert_eq!(c.unsupported, vec!["remote_write[0].queue_config"]);
}

#[test]
fn prometheus_sections_ember_ignores_are_accepted_and_listed() {
    let c = Config::parse(
        "rule_files: ['a.yml']\nalerting:\n  alertmanagers: []\nscrape_configs:\n  - job_name: k\n    kubernetes_sd_configs: [{role: pod}]\n",
    )
    .unwrap();
    assert_eq!(
        c.unsupported,
        vec![
            "alerting",
            "rule_files",
            "scrape_configs[0].kubernetes_sd_configs"
        ]
    );
}

#[test]
fn unknown_fields_name_the_field_type_and_line() {
    assert_eq!(
        err("globl:\n  x: 1\n"),
        "line 1: field globl not found in type config.Config"
    );
    assert_eq!(
        err("scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n"),
        "line 3: field scrape_intervall not found in type config.ScrapeConfig"
    );
    assert_eq!(
        err("global:\n  scrape_interval: 5s\n  foo: 1\n"),
        "line 3: field foo not found in type config.GlobalConfig"
    );
    assert_eq!(
        err(
            "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: []\n        label: {}\n"
        ),
        "line 5: field label not found in type targetgroup.Group"
    );
    assert_eq!(
        err(
            "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: keep\n        regexp: x\n"
        ),
        "line 5: field regexp not found in type relabel.Config"
    );
}

#[test]
fn invalid_durations_and_regexes_name_the_line() {
    let e = err("scrape_configs:\n  - job_name: a\n    scrape_interval: 1.5m\n");
    assert!(
        e.starts_with("line 3: scrape_configs[0].scrape_interval: unknown unit"),
        "{e}"
    );
    let e = err("global:\n  scrape_timeout: 10\n");
    assert_eq!(
        e,
        "line 2: global.scrape_timeout: not a valid duration string: \"10\""
    );
    let e = err(
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex: '(a'\n        action: keep\n",
    );
    assert!(
        e.starts_with(
            "line 4: scrape_configs[0].relabel_configs[0].regex: invalid regular expression \"(a\""
        ),
        "{e}"
    );
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("prometheus.yml");
    std::fs::write(&p, "global:\n  bogus: 1\n").unwrap();
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: line 2: field bogus", p.display())),
        "{e}"
    );
    let e = Config::load(dir.path().join("missing.yml"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cannot read configuration file"), "{e}");
    std::fs::write(&p, EMBEDDED_DEFAULT).unwrap();
    assert_eq!(Config::load(&p).unwrap(), Config::embedded_default());
}

#[test]
fn validation_errors_match_prometheus() {
    assert_eq!(
        err("scrape_configs:\n  - job_name: a\n  - job_name: b\n  - job_name: a\n"),
        "found multiple scrape configs with job name \"a\" (scrape_configs[0] and scrape_configs[2])"
    );
    assert_eq!(
        err("scrape_configs:\n  - scrape_interval: 1s\n"),
        "job_name is empty (scrape_configs[0])"
    );
    assert_eq!(
        err("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n"),
        "scrape timeout greater than scrape interval for scrape config with job name \"a\""
    );
    assert_eq!(
        err("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n"),
        "global scrape timeout greater than scrape interval"
    );
    assert_eq!(
        err(
            "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['http://x:1/metrics']}]\n"
        ),
        "\"http://x:1/metrics\" is not a valid hostname"
    );
    assert!(err("remote_write:\n  - name: x\n").starts_with("url for remote_write is empty"));
    assert!(
        err("remote_write:\n  - url: http://a\n    headers: {Content-Type: x}\n")
            .contains("reserved header")
    );
    assert!(
        err("scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: ['x.txt']}]\n")
            .contains("is not valid for file discovery")
    );
    assert!(
        err("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    authorization: {credentials: c}\n")
            .starts_with("at most one of basic_auth")
    );
    // A URL is allowed when relabeling can still rewrite the address.
    assert!(Config::parse("scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['http://x']}]\n    relabel_configs: [{target_label: __address__, replacement: x}]\n").is_ok());
}

#[test]
fn wrong_types_name_the_path_and_line() {
    let e = err("scrape_configs:\n  - job_name: a\n    sample_limit: lots\n");
    assert!(
        e.starts_with("line 3: scrape_configs[0].sample_limit: invalid type"),
        "{e}"
    );
}

#[test]
fn embedded_default_scrapes_ember_itself() {
    let c = Config::embedded_default();
    assert_eq!(c.scrape_configs[0].job_name, "ember");
    assert_eq!(
        c.scrape_configs[0].static_configs[0].targets,
        vec!["localhost:9090"]
    );
    assert_eq!(c.global.scrape_interval, Duration::from_secs(15));
}

#[test]
fn invalid_relabel_rule_is_reported_near_its_list() {
    let e = err(
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        target_label: x\n",
    );
    assert!(
        e.contains("relabel configuration for hashmod requires non-zero modulus"),
        "{e}"
    );
    assert!(e.starts_with("line 4: "), "{e}");
    let e = err("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex: '(a'\n");
    assert!(
        e.ends_with("invalid regular expression \"(a\": unclosed group"),
        "{e}"
    );
}

#[test]
fn scrape_protocols_and_body_size_limit_are_read_and_checked() {
    let c = Config::parse(
        "global:\n  scrape_protocols: [PrometheusText0.0.4]\n  body_size_limit: 10MB\n\
         scrape_configs:\n- job_name: a\n- job_name: b\n  body_size_limit: 1024\n  \
         scrape_protocols: [OpenMetricsText1.0.0, PrometheusProto]\n  fallback_scrape_protocol: PrometheusText0.0.4\n",
    )
    .unwrap();
    let (a, b) = (&c.scrape_configs[0], &c.scrape_configs[1]);
    assert_eq!(a.scrape_protocols, vec!["PrometheusText0.0.4"]);
    assert_eq!(a.body_size_limit, 10 << 20);
    assert_eq!(b.body_size_limit, 1024);
    assert_eq!(
        b.fallback_scrape_protocol.as_deref(),
        Some("PrometheusText0.0.4")
    );
    assert_eq!(
        c.unsupported,
        vec!["scrape_configs[1].scrape_protocols.PrometheusProto"]
    );
    assert_eq!(
        Config::parse("scrape_configs:\n- job_name: a\n")
            .unwrap()
            .scrape_configs[0]
            .scrape_protocols,
        super::DEFAULT_SCRAPE_PROTOCOLS
    );
    let e = err(
        "scrape_configs:\n- job_name: a\n  scrape_protocols: [PrometheusText0.0.4, prometheustext0.0.4]\n",
    );
    assert!(e.contains("duplicated protocol in scrape_protocols"), "{e}");
    let e = err("scrape_configs:\n- job_name: a\n  scrape_protocols: [Text]\n");
    assert!(e.contains("unknown scrape protocol Text"), "{e}");
    let e = err("scrape_configs:\n- job_name: a\n  fallback_scrape_protocol: nope\n");
    assert!(e.contains("invalid fallback_scrape_protocol"), "{e}");
    let e = err("global:\n  body_size_limit: 10XB\n");
    assert!(
        e.contains("body_size_limit") && e.contains("unknown unit"),
        "{e}"
    );
}
