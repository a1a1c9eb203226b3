use std::time::Duration as StdDuration;

use ember::{Db, Labels, Matcher};

use super::*;
use crate::relabel::RelabelConfig;

const TEXT: &str = "text/plain; version=0.0.4";

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), ember::Options::default()).unwrap();
    (dir, db)
}

fn target() -> Labels {
    Labels::from_pairs([("instance", "host:9100"), ("job", "node")]).unwrap()
}

fn settings() -> AppendSettings {
    AppendSettings {
        honor_labels: false,
        honor_timestamps: true,
        track_timestamps_staleness: false,
        sample_limit: 0,
        label_limit: 0,
        label_name_length_limit: 0,
        label_value_length_limit: 0,
        metric_relabel_configs: Vec::new(),
    }
}

fn scrape(
    db: &Db,
    cache: &mut ScrapeCache,
    body: &str,
    ts: i64,
    s: &AppendSettings,
) -> Result<AppendOutcome, Error> {
    let mut app = db.appender();
    match cache.append_body(&mut app, body.as_bytes(), TEXT, ts, &target(), s) {
        Ok(o) => {
            app.commit().unwrap();
            Ok(o)
        }
        Err(e) => {
            app.rollback();
            let mut app = db.appender();
            cache.append_failed(&mut app, ts);
            app.commit().unwrap();
            Err(e)
        }
    }
}

/// Samples of the series with this metric name, as (t, value bits).
fn samples(db: &Db, name: &str) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let q = db.querier(i64::MIN, i64::MAX);
    q.select(&[Matcher::equal("__name__", name)])
        .into_iter()
        .map(|s| {
            let v = s
                .samples()
                .unwrap()
                .into_iter()
                .map(|(t, v)| (t, v.to_bits()))
                .collect();
            (s.labels().clone(), v)
        })
        .collect()
}

#[test]
fn series_missing_from_next_scrape_get_a_stale_marker_at_its_time() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    let s = settings();
    scrape(&db, &mut c, "a 1\nb 2\n", 1000, &s).unwrap();
    let out = scrape(&db, &mut c, "a 3\n", 2000, &s).unwrap();
    assert_eq!(out.stale_markers, 1);
    let b = samples(&db, "b");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].1, vec![(1000, 2f64.to_bits()), (2000, STALE_NAN_BITS)]);
    let a = samples(&db, "a");
    assert_eq!(a[0].1, vec![(1000, 1f64.to_bits()), (2000, 3f64.to_bits())]);
    // The marker is written once: a third scrape without b adds nothing to it.
    let out = scrape(&db, &mut c, "a 4\n", 3000, &s).unwrap();
    assert_eq!(out.stale_markers, 0);
    assert_eq!(samples(&db, "b")[0].1.len(), 2);
    // A series that comes back continues after its marker.
    scrape(&db, &mut c, "a 5\nb 6\n", 4000, &s).unwrap();
    assert_eq!(samples(&db, "b")[0].1.last(), Some(&(4000, 6f64.to_bits())));
}

#[test]
fn failed_scrape_marks_every_series_of_the_previous_scrape_stale() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    let s = settings();
    scrape(&db, &mut c, "a 1\nb 2\n", 1000, &s).unwrap();
    let mut app = db.appender();
    assert_eq!(c.append_failed(&mut app, 2000), 2);
    app.commit().unwrap();
    for name in ["a", "b"] {
        assert_eq!(
            samples(&db, name)[0].1.last(),
            Some(&(2000, STALE_NAN_BITS))
        );
    }
}

#[test]
fn samples_with_own_timestamps_are_not_marked_stale() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    let s = settings();
    scrape(&db, &mut c, "a 1 500\nb 2\n", 1000, &s).unwrap();
    let out = scrape(&db, &mut c, "", 2000, &s).unwrap();
    assert_eq!(out.stale_markers, 1, "only b, which had no timestamp");
    assert_eq!(samples(&db, "a")[0].1, vec![(500, 1f64.to_bits())]);
    // With track_timestamps_staleness both are tracked.
    let (_d2, db2) = open();
    let mut c2 = ScrapeCache::new();
    let s2 = AppendSettings {
        track_timestamps_staleness: true,
        ..settings()
    };
    scrape(&db2, &mut c2, "a 1 500\nb 2\n", 1000, &s2).unwrap();
    assert_eq!(
        scrape(&db2, &mut c2, "", 2000, &s2).unwrap().stale_markers,
        2
    );
}

#[test]
fn honor_timestamps_false_uses_the_scrape_time() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    let s = AppendSettings {
        honor_timestamps: false,
        ..settings()
    };
    scrape(&db, &mut c, "a 1 500\n", 1000, &s).unwrap();
    assert_eq!(samples(&db, "a")[0].1, vec![(1000, 1f64.to_bits())]);
}

#[test]
fn sample_limit_fails_the_whole_scrape_and_stales_the_previous_one() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    let s = AppendSettings {
        sample_limit: 2,
        ..settings()
    };
    scrape(&db, &mut c, "a 1\nb 2\n", 1000, &s).unwrap();
    let err = scrape(&db, &mut c, "a 3\nb 4\nc 5\n", 2000, &s).unwrap_err();
    match err {
        Error::SampleLimitExceeded { limit, samples } => {
            assert_eq!((limit, samples), (2, 3));
        }
        other => panic!("unexpected error {other}"),
    }
    // Nothing of the over-limit body was stored; a and b ended at the failed scrape.
    assert!(samples(&db, "c").iter().all(|(_, v)| v.is_empty()));
    assert_eq!(
        samples(&db, "a")[0].1,
        vec![(1000, 1f64.to_bits()), (2000, STALE_NAN_BITS)]
    );
    // Samples dropped by relabeling do not count against the limit.
    let s = AppendSettings {
        sample_limit: 2,
        metric_relabel_configs: vec![drop_rule("c")],
        ..settings()
    };
    assert!(scrape(&db, &mut c, "a 3\nb 4\nc 5\n", 3000, &s).is_ok());
}

fn drop_rule(name: &str) -> RelabelConfig {
    let yaml = format!("source_labels: [__name__]\nregex: {name}\naction: drop\n");
    serde_norway::from_str(&yaml).unwrap()
}

#[test]
fn honor_labels_decides_who_wins_a_clash_with_target_labels() {
    let series = Labels::from_pairs([
        ("__name__", "m"),
        ("job", "exposed"),
        ("exported_job", "taken"),
    ])
    .unwrap();
    let t = target();
    let s = settings();
    let out = mutate_sample_labels(&series, &t, &s).unwrap();
    assert_eq!(out.get("job"), Some("node"));
    // exported_job is taken by the series itself, so one more prefix.
    assert_eq!(out.get("exported_exported_job"), Some("exposed"));
    assert_eq!(out.get("exported_job"), Some("taken"));
    assert_eq!(out.get("instance"), Some("host:9100"));
    let honor = AppendSettings {
        honor_labels: true,
        ..settings()
    };
    let out = mutate_sample_labels(&series, &t, &honor).unwrap();
    assert_eq!(out.get("job"), Some("exposed"));
    assert_eq!(out.get("instance"), Some("host:9100"));
    assert_eq!(out.get("exported_exported_job"), None);
}

#[test]
fn metric_relabel_drop_keeps_series_out_and_counts_post_relabel() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    let s = AppendSettings {
        metric_relabel_configs: vec![drop_rule("go_.*")],
        ..settings()
    };
    let body = "go_goroutines 5\ngo_threads 3\nnode_load1 0.5\n";
    let out = scrape(&db, &mut c, body, 1000, &s).unwrap();
    assert_eq!((out.scraped, out.post_relabel), (3, 1));
    assert!(samples(&db, "go_goroutines").is_empty());
    assert_eq!(samples(&db, "node_load1").len(), 1);
    // The second scrape hits the dropped-line cache: same counts, nothing stored.
    let out = scrape(&db, &mut c, body, 2000, &s).unwrap();
    assert_eq!((out.scraped, out.post_relabel, out.series_added), (3, 1, 0));
    assert!(samples(&db, "go_threads").is_empty());
}

#[test]
fn steady_scrapes_reuse_the_cache() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    let s = settings();
    let body = "# TYPE x counter\n# HELP x Things.\nx{a=\"1\"} 1\nx{a=\"2\"} 2\n";
    let out = scrape(&db, &mut c, body, 1000, &s).unwrap();
    assert_eq!(out.series_added, 2);
    let out = scrape(&db, &mut c, body, 2000, &s).unwrap();
    assert_eq!(out.series_added, 0);
    assert_eq!(c.len(), 2);
    let x = samples(&db, "x");
    assert_eq!(x.len(), 2);
    assert!(
        x.iter()
            .all(|(l, v)| l.get("job") == Some("node") && v.len() == 2)
    );
    assert_eq!(c.metadata()["x"].help, "Things.");
    assert_eq!(c.metadata()["x"].kind, MetricType::Counter);
}

#[test]
fn label_limits_fail_the_scrape_naming_the_limit() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    let s = AppendSettings {
        label_limit: 3,
        ..settings()
    };
    // __name__, a, instance, job: 4 labels.
    let err = scrape(&db, &mut c, "m{a=\"1\"} 1\n", 1000, &s).unwrap_err();
    assert!(err.to_string().contains("label_limit exceeded"), "{err}");
    let s = AppendSettings {
        label_value_length_limit: 4,
        ..settings()
    };
    let err = scrape(&db, &mut c, "m{a=\"12345\"} 1\n", 2000, &s).unwrap_err();
    assert!(
        err.to_string()
            .contains("label_value_length_limit exceeded"),
        "{err}"
    );
}

#[test]
fn a_parse_error_fails_the_scrape_with_its_line() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    let err = scrape(&db, &mut c, "a 1\nb{ 2\n", 1000, &settings()).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(samples(&db, "a").iter().all(|(_, v)| v.is_empty()));
}

#[test]
fn report_series_carry_target_labels_and_end_of_run_stales_them() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    scrape(&db, &mut c, "a 1\n", 1000, &settings()).unwrap();
    let mut app = db.appender();
    c.append_report(&mut app, &target(), 1000, [1.0, 0.01, 1.0, 1.0, 1.0])
        .unwrap();
    app.commit().unwrap();
    let up = samples(&db, "up");
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].0.get("job"), Some("node"));
    assert_eq!(up[0].1, vec![(1000, 1f64.to_bits())]);
    let mut app = db.appender();
    assert_eq!(
        c.append_end_of_run(&mut app, 5000),
        1 + REPORT_SERIES.len() as u64
    );
    app.commit().unwrap();
    assert_eq!(
        samples(&db, "up")[0].1.last(),
        Some(&(5000, STALE_NAN_BITS))
    );
    assert_eq!(samples(&db, "a")[0].1.last(), Some(&(5000, STALE_NAN_BITS)));
}

#[test]
fn offsets_spread_targets_within_the_interval_and_stay_pinned_to_wall_time() {
    let iv = StdDuration::from_secs(15);
    let a = target_hash(&target(), "http://a/metrics");
    let b = target_hash(&target(), "http://b/metrics");
    assert_ne!(a, b);
    let now: u128 = 1_700_000_000_123_456_789;
    let oa = scrape_offset(iv, a, 0, now);
    assert!(oa <= iv);
    // One second later the first scrape is one second closer (same phase).
    let later = scrape_offset(iv, a, 0, now + 1_000_000_000);
    let diff = (oa.as_nanos() as i128 - later.as_nanos() as i128).rem_euclid(iv.as_nanos() as i128);
    assert_eq!(diff, 1_000_000_000);
    assert_ne!(scrape_offset(iv, a, 0, now), scrape_offset(iv, b, 0, now));
}

/// Prints the cost of a steady-state scrape of 10 000 series (first scrape builds the cache, the rest
/// hit it). Run with `--ignored --nocapture`; a measurement, not a check.
#[test]
#[ignore]
fn steady_state_append_cost() {
    let (_d, db) = open();
    let mut c = ScrapeCache::new();
    let s = settings();
    let mut body = String::new();
    for i in 0..10_000 {
        body.push_str(&format!(
            "http_requests_total{{code=\"200\",handler=\"/api/v1/h{i}\",method=\"get\"}} {i}\n"
        ));
    }
    let t0 = std::time::Instant::now();
    scrape(&db, &mut c, &body, 1000, &s).unwrap();
    let first = t0.elapsed();
    let t1 = std::time::Instant::now();
    let n = 20;
    for k in 1..=n {
        scrape(&db, &mut c, &body, 1000 + k * 1000, &s).unwrap();
    }
    let steady = t1.elapsed() / n as u32;
    eprintln!(
        "10k series: first scrape {first:?} ({:.0} ns/sample), steady {steady:?} ({:.0} ns/sample)",
        first.as_nanos() as f64 / 1e4,
        steady.as_nanos() as f64 / 1e4
    );
}
