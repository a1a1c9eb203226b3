use super::*;
use crate::Config;

fn cfg(yaml: &str) -> ScrapeConfig {
    Config::parse(yaml).unwrap().scrape_configs.remove(0)
}

#[test]
fn static_target_gets_job_instance_and_internal_labels() {
    let c = cfg(
        "scrape_configs:\n  - job_name: node\n    scrape_interval: 15s\n    params: {module: [a, b]}\n    static_configs: [{targets: ['h:9100'], labels: {env: prod}}]\n",
    );
    let t = static_targets(&c).remove(0).unwrap();
    assert_eq!(
        t.labels.to_string(),
        r#"{__address__="h:9100", __metrics_path__="/metrics", __param_module="a", __scheme__="http", __scrape_interval__="15s", __scrape_timeout__="10s", env="prod", instance="h:9100", job="node"}"#
    );
    assert_eq!(
        t.series_labels().to_string(),
        r#"{env="prod", instance="h:9100", job="node"}"#
    );
    assert_eq!(t.url(&c), "http://h:9100/metrics?module=a&module=b");
    assert_eq!(
        t.interval_and_timeout(),
        Some((Duration::from_secs(15), Duration::from_secs(10)))
    );
    assert!(t.discovered.get(INSTANCE_LABEL).is_none());
}

#[test]
fn relabeling_can_rewrite_address_params_and_drop() {
    let c = cfg(r#"
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    static_configs: [{targets: ['https://example.com', 'skip.me']}]
    relabel_configs:
      - source_labels: [__address__]
        regex: 'skip.*'
        action: drop
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9115
"#);
    let ts = static_targets(&c);
    assert_eq!(ts.len(), 1);
    let t = ts[0].as_ref().unwrap();
    assert_eq!(t.labels.get("instance"), Some("https://example.com"));
    assert_eq!(
        t.url(&c),
        "http://127.0.0.1:9115/probe?target=https%3A%2F%2Fexample.com"
    );
}

#[test]
fn meta_labels_are_dropped_after_relabeling_only() {
    let c = cfg(
        "scrape_configs:\n  - job_name: j\n    relabel_configs:\n      - source_labels: [__meta_zone]\n        target_label: zone\n",
    );
    let t = BTreeMap::from([
        ("__address__".to_string(), "a:1".to_string()),
        ("__meta_zone".to_string(), "z1".to_string()),
    ]);
    let target = populate_labels(&c, &t, &BTreeMap::new()).unwrap().unwrap();
    assert_eq!(target.labels.get("zone"), Some("z1"));
    assert_eq!(target.labels.get("__meta_zone"), None);
    assert_eq!(target.discovered.get("__meta_zone"), Some("z1"));
}

#[test]
fn target_labels_win_over_group_and_config_labels() {
    let c = cfg("scrape_configs:\n  - job_name: j\n");
    let t = BTreeMap::from([
        ("__address__".to_string(), "a:1".to_string()),
        ("job".to_string(), "mine".to_string()),
        ("env".to_string(), "t".to_string()),
    ]);
    let g = BTreeMap::from([
        ("env".to_string(), "g".to_string()),
        ("dc".to_string(), "x".to_string()),
    ]);
    let target = populate_labels(&c, &t, &g).unwrap().unwrap();
    assert_eq!(
        target.series_labels().to_string(),
        r#"{dc="x", env="t", instance="a:1", job="mine"}"#
    );
}

#[test]
fn invalid_targets_are_errors() {
    let c = cfg(
        "scrape_configs:\n  - job_name: j\n    relabel_configs:\n      - target_label: __address__\n        replacement: ''\n        regex: '.*'\n        source_labels: [nothing]\n",
    );
    let e = static_targets(&Config::parse("scrape_configs:\n  - job_name: j\n    static_configs: [{targets: ['a:1']}]\n    relabel_configs: [{target_label: __scrape_timeout__, replacement: 2m}]\n").unwrap().scrape_configs[0]);
    assert!(
        e[0].as_ref()
            .unwrap_err()
            .to_string()
            .contains("scrape timeout cannot be greater than scrape interval")
    );
    let t = BTreeMap::from([("__address__".to_string(), "a:1".to_string())]);
    let e = populate_labels(&c, &t, &BTreeMap::new()).unwrap_err();
    assert!(e.to_string().ends_with("no address"), "{e}");
}
