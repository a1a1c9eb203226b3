//! A damaged WAL at the database level: a torn tail (the newest segment cut at any offset of its last
//! page) reopens cleanly to a prefix of the committed batches; a flipped byte in an older segment refuses
//! to open with an error naming the segment file and offset, and opt-in repair keeps everything before it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ember::{Db, Error, Labels, Options};

const PAGE: u64 = 32 * 1024;

fn opts() -> Options {
    Options {
        wal_segment_size: 64 << 10,
        ..Options::default()
    }
}

/// Writes `batches` batches; batch k puts value k at t = k s into 10 series.
fn write(dir: &Path, batches: i64) {
    let db = Db::open(dir, opts()).unwrap();
    for k in 1..=batches {
        let mut app = db.appender();
        for i in 0..10 {
            let l = Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]).unwrap();
            app.append(&l, k * 1000, k as f64).unwrap();
        }
        app.commit().unwrap();
    }
    db.close().unwrap();
}

/// The batches present, checking each is whole.
fn batches(db: &Db) -> BTreeSet<i64> {
    let mut per_t = std::collections::BTreeMap::<i64, usize>::new();
    for s in db.querier(i64::MIN, i64::MAX).select(&[]) {
        for (t, v) in s.samples().unwrap() {
            assert_eq!(v, (t / 1000) as f64);
            *per_t.entry(t).or_default() += 1;
        }
    }
    for (t, n) in &per_t {
        assert_eq!(*n, 10, "batch at {t} is partial");
    }
    per_t.keys().map(|t| t / 1000).collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn torn_tail_at_every_offset_of_the_last_page_reopens_to_a_prefix() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), 300);
    let newest = segments(src.path())
        .into_iter()
        .rfind(|p| std::fs::metadata(p).unwrap().len() > 0)
        .expect("a non-empty segment");
    let len = std::fs::metadata(&newest).unwrap().len();
    let page_start = (len - 1) / PAGE * PAGE;
    let rel = newest.strip_prefix(src.path()).unwrap().to_path_buf();
    let mut last_newest = 0;
    let mut opened = 0;
    for cut in page_start..=len {
        let dst = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dst.path());
        std::fs::OpenOptions::new()
            .write(true)
            .open(dst.path().join(&rel))
            .unwrap()
            .set_len(cut)
            .unwrap();
        let db = Db::open(dst.path(), opts()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let got = batches(&db);
        let n = got.len() as i64;
        assert_eq!(got, (1..=n).collect(), "cut at {cut}: not a prefix");
        assert!(
            n >= last_newest,
            "cut at {cut}: a longer file gave fewer batches"
        );
        last_newest = n;
        db.close().unwrap();
        // The repaired directory opens again without any further repair.
        let db = Db::open(dst.path(), opts()).unwrap();
        assert_eq!(batches(&db).len() as i64, n);
        assert!(db.replay_stats().repaired_at.is_none());
        db.close().unwrap();
        opened += 1;
    }
    assert_eq!(last_newest, 300, "the untouched file holds every batch");
    assert!(
        opened > 100,
        "last page too small to test much: {opened} offsets"
    );
}

#[test]
fn flipped_byte_in_an_older_segment_is_named_and_repair_keeps_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1500);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "need several segments, got {segs:?}");
    let victim = &segs[0];
    let mut bytes = std::fs::read(victim).unwrap();
    let at = 40_000;
    bytes[at] ^= 0x40;
    std::fs::write(victim, &bytes).unwrap();

    let err = Db::open(dir.path(), opts())
        .err()
        .expect("a corrupt older segment must not open silently");
    match &err {
        Error::Wal(ember_wal::Error::Corruption {
            segment, offset, ..
        }) => {
            assert_eq!(*segment, 0);
            assert!(
                *offset <= at as u64 && at as u64 - *offset < PAGE,
                "offset {offset} vs flipped byte {at}"
            );
        }
        other => panic!("expected a WAL corruption error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&victim.display().to_string()),
        "message names the file: {msg}"
    );
    assert!(msg.contains("offset"), "message names the offset: {msg}");

    let db = Db::open(
        dir.path(),
        Options {
            repair_wal: true,
            ..opts()
        },
    )
    .unwrap();
    let got = batches(&db);
    let n = got.len() as i64;
    assert!(n > 0, "everything before the damage is kept");
    assert!(n < 1500, "nothing after the damage comes back");
    assert_eq!(got, (1..=n).collect());
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(batches(&db).len() as i64, n);
}

#[test]
fn a_wal_reusing_one_ref_for_two_label_sets_keeps_both_series_consistent() {
    use ember_wal::record::{self, RefSample, RefSeries};
    use ember_wal::{Wal, WalOptions};
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(&dir.path().join("wal"), WalOptions::default()).unwrap();
        let a = Labels::from_pairs([("__name__", "a")]).unwrap();
        let b = Labels::from_pairs([("__name__", "b")]).unwrap();
        let mut buf = Vec::new();
        record::encode_series(&[RefSeries { r: 7, labels: a }], &mut buf);
        wal.log(&[&buf]).unwrap();
        buf.clear();
        record::encode_samples(
            &[RefSample {
                r: 7,
                t: 1000,
                v: 1.0,
            }],
            &mut buf,
        );
        wal.log(&[&buf]).unwrap();
        buf.clear();
        // Ref 7 again, now for another label set, and a ref at the very top of the range.
        record::encode_series(
            &[
                RefSeries { r: 7, labels: b },
                RefSeries {
                    r: u64::MAX,
                    labels: Labels::from_pairs([("__name__", "c")]).unwrap(),
                },
            ],
            &mut buf,
        );
        wal.log(&[&buf]).unwrap();
        buf.clear();
        record::encode_samples(
            &[
                RefSample {
                    r: 7,
                    t: 2000,
                    v: 2.0,
                },
                RefSample {
                    r: u64::MAX,
                    t: 3000,
                    v: 3.0,
                },
            ],
            &mut buf,
        );
        wal.log(&[&buf]).unwrap();
        wal.close().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    let got: Vec<(String, Vec<(i64, f64)>)> = db
        .querier(i64::MIN, i64::MAX)
        .select(&[])
        .into_iter()
        .map(|s| (s.labels().to_string(), s.samples().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a{}".to_string(), vec![(1000, 1.0)]),
            ("b{}".to_string(), vec![(2000, 2.0)]),
            ("c{}".to_string(), vec![(3000, 3.0)]),
        ]
    );
    // New series created after replay never collide with replayed refs.
    let mut app = db.appender();
    let r = app
        .append(&Labels::from_pairs([("__name__", "d")]).unwrap(), 4000, 4.0)
        .unwrap();
    app.commit().unwrap();
    assert_eq!(db.stats().num_series, 4);
    assert!(r != 7 && r != u64::MAX);
}
