//! What a query selects over the head and its blocks: every sample of each series once, whichever of
//! the head and the blocks hold the series (all of them, one block, two blocks but not the head, the
//! head alone), with overlapping blocks (the newer block wins a timestamp both hold) and deleted
//! ranges. (The head overlapping a block, as a compaction finishing during a query leaves it, is
//! `blocks.rs`' concurrency test's.) The expected samples are kept as they are written, independently of the read path.

mod common;

use common::copy_dir;

use std::collections::BTreeMap;
use std::path::Path;

use ember::{Db, Labels, MatchType, Matcher, Options, SyncPolicy};

const H: i64 = 3600 * 1000;
const M: i64 = 60 * 1000;
/// A multiple of 2 h, so block boundaries are predictable.
const T0: i64 = 1_699_999_200_000;

/// Series name → its samples by timestamp.
type Data = BTreeMap<String, BTreeMap<i64, f64>>;

fn opts() -> Options {
    Options {
        block_range_ms: 2 * H,
        wal_sync: SyncPolicy::Never,
        ..Options::default()
    }
}

/// `{__name__="m", s="<name>"}`, or with a name `s|t`, `{__name__="m", s="<s>", t="<t>"}`.
fn labels(name: &str) -> Labels {
    match name.split_once('|') {
        Some((s, t)) => Labels::from_pairs([("__name__", "m"), ("s", s), ("t", t)]).unwrap(),
        None => Labels::from_pairs([("__name__", "m"), ("s", name)]).unwrap(),
    }
}

/// The name [`labels`] took.
fn name(l: &Labels) -> String {
    match l.get("t") {
        Some(t) => format!("{}|{t}", l.get("s").unwrap()),
        None => l.get("s").unwrap().to_string(),
    }
}

/// Appends one sample a minute over `[from, to)` for each of `series`, oldest first across all of
/// them (as a scrape loop would), with values from `value`; records them in `want`.
fn write(db: &Db, want: &mut Data, series: &[(&str, i64, i64)], value: impl Fn(usize, i64) -> f64) {
    let lo = series.iter().map(|s| s.1).min().unwrap();
    let hi = series.iter().map(|s| s.2).max().unwrap();
    let mut app = db.appender();
    let mut t = lo;
    while t < hi {
        for (i, &(name, from, to)) in series.iter().enumerate() {
            if (from..to).contains(&t) {
                let v = value(i, t);
                app.append(&labels(name), t, v).unwrap();
                want.entry(name.to_string()).or_default().insert(t, v);
            }
        }
        t += M;
        if (t - lo) % (30 * M) == 0 {
            app.commit().unwrap();
            app = db.appender();
        }
    }
    app.commit().unwrap();
}

/// What `[mint, maxt]` should return: the series with a sample there, and those samples.
fn in_range(want: &Data, mint: i64, maxt: i64) -> Data {
    want.iter()
        .map(|(k, v)| {
            let kept: BTreeMap<i64, f64> = v.range(mint..=maxt).map(|(&t, &v)| (t, v)).collect();
            (k.clone(), kept)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// What the database returns for `[mint, maxt]` (series with samples there), checking on the way
/// that the series are sorted and unique, that the lenient and strict selections agree, and that the series listing names the same
/// series.
fn query(db: &Db, mint: i64, maxt: i64) -> Data {
    let q = db.querier(mint, maxt);
    let series = q.try_select(&[]).unwrap();
    assert!(
        series.windows(2).all(|w| w[0].labels() < w[1].labels()),
        "series sorted and unique"
    );
    let lenient: Vec<Labels> = q.select(&[]).iter().map(|s| s.labels().clone()).collect();
    let strict: Vec<Labels> = series.iter().map(|s| s.labels().clone()).collect();
    assert_eq!(lenient, strict);
    assert_eq!(
        q.select_labels(&[]),
        strict,
        "listing over [{mint}, {maxt}]"
    );
    let mut out = Data::new();
    for s in series {
        let samples = s.samples().unwrap();
        // A series whose chunks reach into the range may have had all its samples there deleted;
        // it is still selected (as in Prometheus), with nothing to iterate.
        if samples.is_empty() {
            continue;
        }
        let iterated: Vec<(i64, f64)> = s.iter().collect();
        assert_eq!(samples, iterated);
        let name = name(s.labels());
        let mut by_t = BTreeMap::new();
        for (t, v) in samples {
            assert!(by_t.insert(t, v).is_none(), "{name}: timestamp {t} twice");
        }
        out.insert(name, by_t);
    }
    out
}

/// Ranges that take in the whole database, single blocks, the head alone, block boundaries and
/// parts of each.
fn ranges() -> Vec<(i64, i64)> {
    vec![
        (i64::MIN, i64::MAX),
        (T0, T0 + 2 * H - 1),
        (T0 + 2 * H, T0 + 4 * H - 1),
        (T0 + 4 * H, i64::MAX),
        (T0 + 30 * M, T0 + 4 * H + 30 * M),
        (T0 + 2 * H - M, T0 + 2 * H + M),
        (T0 + 4 * H - M, T0 + 4 * H),
        (T0 + 3 * H + 7 * M, T0 + 3 * H + 7 * M),
    ]
}

/// Series written so that, with 2 h blocks, each lives in a different set of places: the name says
/// where. Names sort so that head and block-only series alternate.
const SPREAD: &[(&str, i64, i64)] = &[
    ("a_first_block", T0, T0 + H),
    ("b_everywhere", T0, T0 + 5 * H + 30 * M),
    ("c_both_blocks", T0 + H, T0 + 3 * H + 30 * M),
    ("d_head", T0 + 4 * H + 30 * M, T0 + 5 * H + 30 * M),
    ("e_second_block", T0 + 2 * H + 10 * M, T0 + 3 * H),
    ("f_second_block_and_head", T0 + 3 * H, T0 + 5 * H),
    ("g_first_block_and_head", T0 + H, T0 + H + 30 * M),
    ("z_everywhere", T0, T0 + 5 * H + 30 * M),
];

fn spread_db(dir: &Path, want: &mut Data) -> Db {
    let db = Db::open(dir, opts()).unwrap();
    write(&db, want, SPREAD, |i, t| {
        (t - T0) as f64 / 1000.0 + i as f64
    });
    // "g" also comes back in the head.
    write(
        &db,
        want,
        &[("g_first_block_and_head", T0 + 5 * H, T0 + 5 * H + 30 * M)],
        |_, t| -((t - T0) as f64),
    );
    db.compact().unwrap();
    let mut spans: Vec<(i64, i64)> = db
        .blocks()
        .iter()
        .map(|m| (m.min_time, m.max_time))
        .collect();
    spans.sort();
    assert_eq!(spans, vec![(T0, T0 + 2 * H), (T0 + 2 * H, T0 + 4 * H)]);
    db
}

#[test]
fn series_in_the_head_and_blocks_or_in_blocks_only_return_every_sample_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut want = Data::new();
    let db = spread_db(tmp.path(), &mut want);
    for (lo, hi) in ranges() {
        assert_same(query(&db, lo, hi), in_range(&want, lo, hi), lo, hi);
    }
    // A matcher that selects some series in each place.
    let q = db.querier(i64::MIN, i64::MAX);
    let m = Matcher::new(MatchType::Regex, "s", "[bcd].*").unwrap();
    let got: Vec<String> = q
        .try_select(&[m])
        .unwrap()
        .iter()
        .map(|s| s.labels().get("s").unwrap().to_string())
        .collect();
    assert_eq!(got, ["b_everywhere", "c_both_blocks", "d_head"]);
}

#[test]
fn deleted_ranges_are_hidden_in_the_head_and_in_every_block() {
    let tmp = tempfile::tempdir().unwrap();
    let mut want = Data::new();
    let db = spread_db(tmp.path(), &mut want);
    let mut delete = |s: &str, lo: i64, hi: i64| {
        let m = Matcher::new(MatchType::Equal, "s", s).unwrap();
        db.delete(&[m], lo, hi).unwrap();
        want.get_mut(s).unwrap().retain(|&t, _| t < lo || t > hi);
    };
    // Across part of the first block, all of the second, and part of the head.
    delete("b_everywhere", T0 + H + 30 * M + 1, T0 + 4 * H + 30 * M);
    // Inside one block, cutting chunks in the middle.
    delete("c_both_blocks", T0 + 2 * H + 17 * M, T0 + 2 * H + 43 * M);
    // A series' whole life in one block: it is left in the head alone.
    delete("g_first_block_and_head", T0, T0 + 2 * H - 1);
    // A series' whole life.
    delete("e_second_block", i64::MIN, i64::MAX);
    want.retain(|_, v| !v.is_empty());
    for (lo, hi) in ranges() {
        assert_same(query(&db, lo, hi), in_range(&want, lo, hi), lo, hi);
    }
}

#[test]
fn overlapping_blocks_merge_with_the_newer_block_winning_a_timestamp_both_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    // The database queried: two blocks and a head from 4 h on.
    let mut a = Data::new();
    let db = spread_db(&a_dir, &mut a);
    db.close().unwrap();
    // Blocks from elsewhere over the same hours, written later (so with newer ULIDs), with other
    // values at the timestamps both hold. They end where the head starts: a block reaching further
    // would raise the head's floor on open and drop the head's older samples.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut b = Data::new();
    let other = Db::open(&b_dir, opts()).unwrap();
    write(
        &other,
        &mut b,
        &[
            ("b_everywhere", T0 + H, T0 + 5 * H + 2 * M),
            // Between the other database's samples: chunks interleave.
            ("c_both_blocks", T0 + 90 * M + 30_000, T0 + 2 * H + 30 * M),
            ("y_elsewhere", T0 + 3 * H, T0 + 4 * H + 30 * M),
        ],
        |i, t| -((t - T0) as f64) - i as f64,
    );
    other.compact().unwrap();
    let copied = other.blocks();
    other.close().unwrap();
    let mut spans: Vec<(i64, i64)> = copied.iter().map(|m| (m.min_time, m.max_time)).collect();
    spans.sort();
    assert_eq!(spans, vec![(T0 + H, T0 + 2 * H), (T0 + 2 * H, T0 + 4 * H)]);
    for m in &copied {
        let name = m.ulid.to_string();
        copy_dir(&b_dir.join(&name), &a_dir.join(&name));
    }
    let mut want = a.clone();
    for (s, samples) in &b {
        let w = want.entry(s.clone()).or_default();
        // Only the blocks were copied, not the other database's head.
        for (&t, &v) in samples.range(..T0 + 4 * H) {
            w.insert(t, v);
        }
    }
    let db = Db::open(&a_dir, opts()).unwrap();
    assert_eq!(db.blocks().len(), 4);
    for (lo, hi) in ranges() {
        assert_same(query(&db, lo, hi), in_range(&want, lo, hi), lo, hi);
    }
}

/// `got == want`, or a failure naming the first series and timestamp where they differ.
fn assert_same(got: Data, want: Data, lo: i64, hi: i64) {
    if got == want {
        return;
    }
    let names: std::collections::BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    for n in names {
        let (g, w) = (got.get(n), want.get(n));
        if g == w {
            continue;
        }
        let (g, w) = (
            g.cloned().unwrap_or_default(),
            w.cloned().unwrap_or_default(),
        );
        let ts: std::collections::BTreeSet<i64> = g.keys().chain(w.keys()).copied().collect();
        let t = ts.into_iter().find(|t| g.get(t) != w.get(t));
        panic!(
            "[{lo}, {hi}]: series {n} differs first at {t:?} (T0{:+} ms): got {:?}, want {:?} ({} vs {} samples)",
            t.map_or(0, |t| t - T0),
            t.and_then(|t| g.get(&t)),
            t.and_then(|t| w.get(&t)),
            g.len(),
            w.len()
        );
    }
}

/// The head's series in label order whatever order they were created in: sets that are prefixes of
/// others, values that are prefixes of others, and (in the second database) a value holding a 0
/// byte, which the head's byte-string sort keys cannot spell. Enough series that the head selects
/// them on two threads.
#[test]
fn head_series_come_out_in_label_order_whatever_their_creation_order() {
    for with_nul in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(tmp.path(), opts()).unwrap();
        let mut sets = Vec::new();
        for i in 0..700u64 {
            // A scrambled creation order.
            let k = (i * 389) % 700;
            let mut pairs = vec![
                ("__name__".to_string(), format!("m{}", k % 3)),
                ("a".to_string(), format!("{}", k / 7)),
            ];
            match k % 7 {
                0 => {}
                1 => pairs.push(("b".to_string(), "x".to_string())),
                2 => pairs.push(("b".to_string(), "xy".to_string())),
                3 => pairs.push(("aa".to_string(), "x".to_string())),
                4 => pairs.push(("c".to_string(), "é".to_string())),
                5 if with_nul => pairs.push(("b".to_string(), "x\0".to_string())),
                _ => pairs.push(("b".to_string(), format!("w{k}"))),
            }
            sets.push(Labels::from_pairs(pairs).unwrap());
        }
        let mut app = db.appender();
        for l in &sets {
            app.append(l, T0, 1.0).unwrap();
        }
        app.commit().unwrap();
        let mut want = sets.clone();
        want.sort();
        want.dedup();
        let got: Vec<Labels> = db
            .querier(T0, T0)
            .try_select(&[])
            .unwrap()
            .iter()
            .map(|s| s.labels().clone())
            .collect();
        assert_eq!(got, want, "with a 0 byte: {with_nul}");
    }
}

/// A 0 byte in a label value cannot be spelled in the byte-string keys the head's series are
/// sorted and matched by: with such a series in the head (no keys at all) or only in the blocks
/// (that entry compared pair by pair, its neighbours by keys), every sample still comes back once.
#[test]
fn series_with_a_zero_byte_in_a_value_merge_like_any_other() {
    let both: &[(&str, i64, i64)] = &[
        ("b", T0, T0 + 5 * H + 30 * M),
        ("c\0everywhere", T0, T0 + 5 * H + 30 * M),
        ("c\0x", T0, T0 + 5 * H + 30 * M),
        ("c_after", T0 + H, T0 + 5 * H + 30 * M),
    ];
    let blocks_only: &[(&str, i64, i64)] = &[
        ("b", T0, T0 + 5 * H + 30 * M),
        ("c\0blocks", T0, T0 + 3 * H),
        // Neighbours sharing the label that cannot be spelled.
        ("c\0blocks|1", T0, T0 + 3 * H),
        ("c\0blocks|2", T0, T0 + 3 * H),
        ("c_after", T0 + H, T0 + 5 * H + 30 * M),
        ("d", T0, T0 + 5 * H + 30 * M),
    ];
    for series in [both, blocks_only] {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(tmp.path(), opts()).unwrap();
        let mut want = Data::new();
        write(&db, &mut want, series, |i, t| (t - T0) as f64 + i as f64);
        db.compact().unwrap();
        assert_eq!(db.blocks().len(), 2);
        for (lo, hi) in ranges() {
            assert_same(query(&db, lo, hi), in_range(&want, lo, hi), lo, hi);
        }
    }
}
