//! The embedding API's contract: what an appender accepts and refuses, what a querier returns, and that a
//! reopened database holds exactly what was committed.

use std::collections::BTreeMap;

use ember::{Db, Error, Labels, MatchType, Matcher, Options, SyncPolicy};
use proptest::prelude::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

fn dump(db: &Db) -> BTreeMap<String, Vec<(i64, u64)>> {
    db.querier(i64::MIN, i64::MAX)
        .select(&[])
        .into_iter()
        .map(|s| {
            let v = s
                .samples()
                .unwrap()
                .into_iter()
                .map(|(t, v)| (t, v.to_bits()))
                .collect();
            (s.labels().to_string(), v)
        })
        .collect()
}

#[test]
fn committed_samples_are_queryable_and_uncommitted_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let a = labels(&[("__name__", "up"), ("job", "a")]);
    let mut app = db.appender();
    app.append(&a, 1000, 1.0).unwrap();
    assert!(
        db.querier(0, 10_000)
            .select(&[Matcher::equal("job", "a")])
            .is_empty()
    );
    app.commit().unwrap();
    let s = db.querier(0, 10_000).select(&[Matcher::equal("job", "a")]);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].samples().unwrap(), vec![(1000, 1.0)]);

    let mut app = db.appender();
    app.append(&a, 2000, 2.0).unwrap();
    app.rollback();
    assert_eq!(
        db.querier(0, 10_000).select(&[Matcher::equal("job", "a")])[0]
            .samples()
            .unwrap()
            .len(),
        1
    );
    // After a rollback the series accepts the rolled-back timestamp again.
    let mut app = db.appender();
    app.append(&a, 2000, 3.0).unwrap();
    app.commit().unwrap();
}

#[test]
fn appender_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let a = labels(&[("__name__", "m")]);
    let mut app = db.appender();
    app.append(&a, 10_000_000, 1.0).unwrap();
    assert!(matches!(
        app.append(&a, 9_000_000, 1.0),
        Err(Error::OutOfOrderSample { t: 9_000_000, .. })
    ));
    assert!(matches!(
        app.append(&a, 10_000_000, 2.0),
        Err(Error::DuplicateSampleForTimestamp { t: 10_000_000 })
    ));
    // The identical sample again is accepted and ignored, as Prometheus does.
    app.append(&a, 10_000_000, 1.0).unwrap();
    app.commit().unwrap();
    // More than half a block range (1 h) behind the newest sample is out of bounds for every series.
    let b = labels(&[("__name__", "other")]);
    let mut app = db.appender();
    assert!(matches!(
        app.append(&b, 10_000_000 - 3_600_001, 1.0),
        Err(Error::OutOfBounds { .. })
    ));
    app.append(&b, 10_000_000 - 3_600_000, 1.0).unwrap();
    assert!(matches!(
        app.append_ref(999_999, 10_000_001, 1.0),
        Err(Error::UnknownSeriesRef(999_999))
    ));
    assert!(matches!(
        app.append(&Labels::empty(), 10_000_001, 1.0),
        Err(Error::EmptyLabelSet)
    ));
    app.commit().unwrap();
    let s = db
        .querier(i64::MIN, i64::MAX)
        .select(&[Matcher::equal("__name__", "m")]);
    assert_eq!(s[0].samples().unwrap(), vec![(10_000_000, 1.0)]);
}

#[test]
fn invalid_label_sets_are_refused_with_a_reason() {
    assert!(matches!(
        Labels::from_pairs([("", "x")]),
        Err(ember_index::Error::EmptyLabelName)
    ));
    assert!(matches!(
        Labels::from_pairs([("a", "x"), ("a", "y")]),
        Err(ember_index::Error::DuplicateLabelName(_))
    ));
    let bad: &[u8] = &[0xff, 0xfe];
    let e = Labels::from_bytes_pairs([(&b"a"[..], bad)]).unwrap_err();
    assert!(e.to_string().contains("UTF-8"), "{e}");
}

#[test]
fn reopen_restores_every_committed_sample() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        wal_segment_size: 32 << 10,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    for k in 0..200i64 {
        let mut app = db.appender();
        for i in 0..50 {
            let l = labels(&[("__name__", "metric"), ("i", &i.to_string()), ("job", "x")]);
            app.append(&l, k * 15_000, (k * i) as f64 * 0.5).unwrap();
        }
        app.commit().unwrap();
    }
    let before = dump(&db);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    // Samples of completed chunks come from the head chunk files, the rest from the WAL.
    let r = db.replay_stats();
    assert_eq!(r.samples + r.samples_in_mmapped_chunks, 200 * 50);
    assert!(
        db.replay_stats().segments > 2,
        "the data spans several segments"
    );
    assert_eq!(dump(&db), before);
    assert_eq!(db.stats().num_series, 50);
}

#[test]
fn label_names_and_values_follow_matchers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut app = db.appender();
    app.append(
        &labels(&[("__name__", "up"), ("job", "a"), ("zone", "z1")]),
        1,
        1.0,
    )
    .unwrap();
    app.append(&labels(&[("__name__", "up"), ("job", "b")]), 1, 1.0)
        .unwrap();
    app.append(&labels(&[("__name__", "down"), ("job", "c")]), 1, 1.0)
        .unwrap();
    app.commit().unwrap();
    let q = db.querier(0, 10);
    assert_eq!(q.label_names(&[]), vec!["__name__", "job", "zone"]);
    assert_eq!(q.label_values("job", &[]), vec!["a", "b", "c"]);
    assert_eq!(
        q.label_values("job", &[Matcher::equal("__name__", "up")]),
        vec!["a", "b"]
    );
    assert_eq!(
        q.label_names(&[Matcher::equal("job", "b")]),
        vec!["__name__", "job"]
    );
    let re = Matcher::new(MatchType::Regex, "job", "a|c").unwrap();
    let names: Vec<String> = q
        .select(&[re])
        .iter()
        .map(|s| s.labels().to_string())
        .collect();
    assert_eq!(names, vec![r#"down{job="c"}"#, r#"up{job="a", zone="z1"}"#]);
    // `zone=""` selects the series without the label.
    let no_zone = q.select(&[Matcher::equal("__name__", "up"), Matcher::equal("zone", "")]);
    assert_eq!(no_zone.len(), 1);
    assert_eq!(no_zone[0].labels().get("job"), Some("b"));
}

#[test]
fn querier_returns_only_samples_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let l = labels(&[("__name__", "m")]);
    let mut app = db.appender();
    for k in 0..1000i64 {
        app.append(&l, k * 1000, k as f64).unwrap();
    }
    app.commit().unwrap();
    let s = db
        .querier(250_500, 260_000)
        .select(&[Matcher::equal("__name__", "m")]);
    let got = s[0].samples().unwrap();
    assert_eq!(got.first(), Some(&(251_000, 251.0)));
    assert_eq!(got.last(), Some(&(260_000, 260.0)));
    assert_eq!(got.len(), 10);
    let mut it = s[0].iter();
    assert_eq!(it.seek(255_000), Some((255_000, 255.0)));
    assert!(
        db.querier(2_000_000, 3_000_000)
            .select(&[Matcher::equal("__name__", "m")])
            .is_empty()
    );
}

#[test]
fn appenders_on_many_threads_commit_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    std::thread::scope(|s| {
        for th in 0..4 {
            let db = &db;
            s.spawn(move || {
                for k in 0..100i64 {
                    let mut app = db.appender();
                    for i in 0..25 {
                        let l = labels(&[
                            ("__name__", "m"),
                            ("th", &th.to_string()),
                            ("i", &i.to_string()),
                        ]);
                        app.append(&l, k, 1.0).unwrap();
                    }
                    app.commit().unwrap();
                }
            });
        }
    });
    assert_eq!(db.stats().num_series, 100);
    assert_eq!(db.stats().samples_appended, 4 * 100 * 25);
    let before = dump(&db);
    db.close().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(dump(&db), before);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let e = Db::open(dir.path(), Options::default())
        .err()
        .expect("second open must fail");
    assert!(e.to_string().contains("lock"), "{e}");
    db.close().unwrap();
    Db::open(dir.path(), Options::default()).unwrap();
}

#[test]
fn truncation_checkpoints_the_wal_and_reopen_keeps_what_remains() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        wal_segment_size: 32 << 10,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    // Series "old" stops at t=99 s; series "live" keeps going.
    for k in 0..400i64 {
        let mut app = db.appender();
        if k < 100 {
            app.append(&labels(&[("__name__", "old")]), k * 1000, k as f64)
                .unwrap();
        }
        app.append(&labels(&[("__name__", "live")]), k * 1000, k as f64)
            .unwrap();
        app.commit().unwrap();
    }
    let st = db.truncate_head(200_000).unwrap();
    assert_eq!(st.series_removed, 1);
    assert!(st.checkpoint.is_some());
    let mut app = db.appender();
    assert!(matches!(
        app.append(&labels(&[("__name__", "live")]), 150_000, 1.0),
        Err(Error::OutOfBounds { .. })
    ));
    app.append(&labels(&[("__name__", "live")]), 400_000, 400.0)
        .unwrap();
    app.commit().unwrap();
    let before = dump(&db);
    assert_eq!(before.len(), 1);
    let live = &before["live{}"];
    // Chunks are dropped whole, so samples from before the cut may remain in a chunk that reaches past it.
    assert!(live.iter().all(|&(t, _)| t >= 0) && live.last() == Some(&(400_000, 400f64.to_bits())));
    db.close().unwrap();
    let wal = dir.path().join("wal");
    let segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        segs.iter()
            .any(|n| n.to_string_lossy().starts_with("checkpoint.")),
        "{segs:?}"
    );
    let db = Db::open(dir.path(), opts).unwrap();
    assert!(db.replay_stats().checkpoint.is_some());
    let after = dump(&db);
    // The checkpoint keeps samples at or after the cut; replay must not bring back anything older.
    assert!(
        after["live{}"].iter().all(|&(t, _)| t >= 200_000),
        "old samples came back"
    );
    let expect: Vec<_> = live
        .iter()
        .copied()
        .filter(|&(t, _)| t >= 200_000)
        .collect();
    assert_eq!(after["live{}"], expect);
    assert!(!after.contains_key("old{}"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any interleaving of batches over a few series, including refused samples, reopens to exactly the
    /// model built from what was accepted and committed.
    #[test]
    fn reopen_matches_a_model_of_accepted_samples(
        batches in prop::collection::vec(
            prop::collection::vec((0usize..6, 0i64..50, any::<u64>()), 1..20), 1..15),
        commit_mask in any::<u32>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options { wal_segment_size: 32 << 10, wal_sync: SyncPolicy::Never, ..Options::default() };
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        let mut model: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
        for (b, batch) in batches.iter().enumerate() {
            let mut app = db.appender();
            let mut pending: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
            for &(i, t, bits) in batch {
                let l = labels(&[("__name__", "p"), ("i", &i.to_string())]);
                let key = l.to_string();
                let v = f64::from_bits(bits);
                let last = pending.get(&key).and_then(|v| v.last()).or(model.get(&key).and_then(|v| v.last())).copied();
                let res = app.append(&l, t, v);
                match last {
                    Some((lt, _)) if t < lt => prop_assert!(matches!(res, Err(Error::OutOfOrderSample { .. })), "{:?}", res),
                    Some((lt, lb)) if t == lt && lb != bits => prop_assert!(matches!(res, Err(Error::DuplicateSampleForTimestamp { .. })), "{:?}", res),
                    Some((lt, _)) if t == lt => prop_assert!(res.is_ok()),
                    _ => { prop_assert!(res.is_ok()); pending.entry(key).or_default().push((t, bits)); }
                }
            }
            if commit_mask & (1 << (b % 32)) != 0 {
                app.commit().unwrap();
                for (k, v) in pending { model.entry(k).or_default().extend(v); }
            } else {
                app.rollback();
            }
        }
        prop_assert_eq!(&dump(&db), &model);
        db.close().unwrap();
        let db = Db::open(dir.path(), opts).unwrap();
        prop_assert_eq!(&dump(&db), &model);
    }
}

#[test]
fn the_head_series_limit_refuses_new_series_but_not_new_samples() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        head_series_limit: Some(10),
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let series = |i: usize| labels(&[("__name__", "m"), ("i", &i.to_string())]);
    // 10x the limit in new series: exactly the limit is created, the rest refused with a typed error.
    let mut app = db.appender();
    let mut refused = 0;
    for i in 0..100 {
        match app.append(&series(i), 1000, 1.0) {
            Ok(_) => {}
            Err(Error::HeadSeriesLimit { limit: 10 }) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    app.commit().unwrap();
    assert_eq!(refused, 90);
    assert_eq!(db.stats().num_series, 10);
    assert_eq!(db.stats().series_refused, 90);
    // Existing series keep ingesting.
    let mut app = db.appender();
    for i in 0..10 {
        app.append(&series(i), 2000, 2.0).unwrap();
    }
    app.commit().unwrap();
    assert_eq!(db.stats().samples_appended, 20);
    db.close().unwrap();
    // A restart with a lower limit keeps every acknowledged series.
    let db = Db::open(
        dir.path(),
        Options {
            head_series_limit: Some(5),
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(db.stats().num_series, 10);
    let mut app = db.appender();
    assert!(matches!(
        app.append(&series(50), 3000, 1.0),
        Err(Error::HeadSeriesLimit { limit: 5 })
    ));
    app.append(&series(3), 3000, 3.0).unwrap();
    app.commit().unwrap();
}

#[test]
fn collected_samples_equal_the_iterator_for_ranges_cutting_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let a = labels(&[("__name__", "m")]);
    let mut app = db.appender();
    // Several closed chunks and an open one, with irregular spacing and values.
    for i in 0..1000i64 {
        app.append(&a, i * 15_000 + (i % 7), (i * i % 101) as f64)
            .unwrap();
    }
    app.commit().unwrap();
    let last = 999 * 15_000 + 999 % 7;
    for (mint, maxt) in [
        (i64::MIN, i64::MAX),
        (0, last),
        (1, last - 1),
        (3_600_000, 7_200_000),
        (1_799_999, 1_800_006),
        (last, last),
        (last + 1, i64::MAX),
        (7_000_000, 7_000_001),
    ] {
        for s in db.querier(mint, maxt).select(&[]) {
            let collected: Vec<(i64, f64)> = s.iter().collect();
            assert_eq!(s.samples().unwrap(), collected, "range {mint}..={maxt}");
            assert!(collected.iter().all(|&(t, _)| t >= mint && t <= maxt));
        }
    }
}
