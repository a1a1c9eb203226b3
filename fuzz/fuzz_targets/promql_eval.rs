//! Parse and evaluate arbitrary PromQL over a small fixed dataset (counters with a reset, gauges with
//! NaN/Inf/staleness, a classic histogram): an instant and a short range query must return a value
//! or an error, never panic. The query timeout is 1 s, and libFuzzer's `-timeout=1` catches hangs.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use ember::{Db, Labels, Options};
use ember_query::engine::{Cancel, Engine, QueryOpts};
use ember_query::parser::parse;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    _dir: tempfile::TempDir,
    db: Db,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(dir.path(), Options::default()).expect("open db");
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let series: Vec<(Vec<(&str, &str)>, Box<dyn Fn(i64) -> f64>)> = vec![
        (
            vec![
                ("__name__", "requests_total"),
                ("job", "api"),
                ("code", "200"),
            ],
            Box::new(|i| (i * 7 % 40) as f64),
        ),
        (
            vec![
                ("__name__", "requests_total"),
                ("job", "api"),
                ("code", "500"),
            ],
            Box::new(|i| i as f64 * 0.5),
        ),
        (
            vec![("__name__", "temp"), ("host", "a")],
            Box::new(|i| (i as f64).sin() * 10.0),
        ),
        (
            vec![("__name__", "temp"), ("host", "b")],
            Box::new(move |i| match i % 9 {
                0 => f64::NAN,
                4 => f64::INFINITY,
                7 => stale,
                _ => -(i as f64),
            }),
        ),
        (
            vec![("__name__", "lat_bucket"), ("le", "0.1")],
            Box::new(|i| i as f64),
        ),
        (
            vec![("__name__", "lat_bucket"), ("le", "1")],
            Box::new(|i| 2.0 * i as f64),
        ),
        (
            vec![("__name__", "lat_bucket"), ("le", "+Inf")],
            Box::new(|i| 3.0 * i as f64),
        ),
    ];
    let mut app = db.appender();
    for i in 0..60i64 {
        for (labels, f) in &series {
            let l = Labels::from_pairs(labels.iter().copied()).expect("labels");
            app.append(&l, i * 15_000, f(i)).expect("append");
        }
    }
    app.commit().expect("commit");
    Fixture { _dir: dir, db }
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = parse(text) else { return };
    let engine = Engine::new(QueryOpts {
        timeout: Duration::from_secs(1),
        max_samples: 100_000,
        ..QueryOpts::default()
    });
    let db = &FIXTURE.db;
    let cancel = Cancel::new();
    let _ = engine.instant_expr(db, &expr, Some(text), 600_000, &cancel);
    let _ = engine.range_expr(db, &expr, Some(text), 0, 900_000, 60_000, &cancel);
});
