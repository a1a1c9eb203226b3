//! Byte compatibility of the block index with Prometheus 2.42's `promtool`.
//!
//! `promtool tsdb create-blocks-from openmetrics` turns a generated
//! OpenMetrics file into blocks. For each block, Ember's `IndexReader` must
//! give back exactly the generated series, chunk metas that partition each
//! series' samples, and matcher / label-name / label-value answers equal to a
//! brute-force model. Rewriting the same symbols, series and chunk metas with
//! `IndexWriter` must reproduce promtool's index file byte for byte, and a
//! copy of the blocks whose index files Ember wrote from a different symbol
//! table must dump, list and analyze identically with promtool.
//!
//! Needs Debian's `promtool`; without it the test fails unless
//! EMBER_SKIP_PEER_TESTS=1.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ember_index::block::{ChunkMeta, IndexReader, IndexWriter};
use ember_index::{Labels, Matcher};

fn peer_available(bin: &str) -> bool {
    if Command::new(bin).arg("--version").output().is_ok() {
        return true;
    }
    assert_eq!(
        std::env::var("EMBER_SKIP_PEER_TESTS").as_deref(),
        Ok("1"),
        "{bin} not found: install Debian's `prometheus` package (or set EMBER_SKIP_PEER_TESTS=1 to skip)"
    );
    eprintln!("SKIPPED: {bin} not installed");
    false
}

const START_MS: i64 = 1_700_000_000_000;

/// Label sets of the generated series: many values for one label (so the
/// reader's 1-in-32 sampling of the postings offset table is exercised), a
/// label present on only some series, escaped and non-ASCII values, and a
/// series with many labels.
fn series_labels() -> Vec<Labels> {
    let mut out = Vec::new();
    for i in 0..100 {
        let mut pairs = vec![
            ("__name__".to_string(), "ember_requests".to_string()),
            ("job".to_string(), ["api", "web", "db"][i % 3].to_string()),
            ("instance".to_string(), format!("host-{i:03}:9100")),
        ];
        if i % 4 == 0 {
            pairs.push(("code".to_string(), ["200", "404", "500"][i % 3].to_string()));
        }
        out.push(Labels::from_pairs(pairs).unwrap());
    }
    for (i, city) in ["Zürich", "東京", "São Paulo", "a\"quoted\"", "back\\slash"]
        .iter()
        .enumerate()
    {
        out.push(
            Labels::from_pairs([
                ("__name__", "ember_temperature"),
                ("city", city),
                ("job", if i % 2 == 0 { "api" } else { "sensors" }),
            ])
            .unwrap(),
        );
    }
    let many: Vec<(String, String)> = (0..12)
        .map(|k| (format!("l{k:02}"), format!("v{}", k * 7)))
        .chain([("__name__".to_string(), "ember_wide".to_string())])
        .collect();
    out.push(Labels::from_pairs(many).unwrap());
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The OpenMetrics text and, per series, its sample timestamps. Series have
/// different densities and time spans (some only in the first or the last
/// hour) over 2.5 hours, so promtool cuts two blocks and several chunks.
fn openmetrics(series: &[Labels]) -> (String, Vec<Vec<i64>>) {
    let mut by_metric: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, ls) in series.iter().enumerate() {
        by_metric
            .entry(ls.metric_name().unwrap().to_string())
            .or_default()
            .push(i);
    }
    let mut text = String::new();
    let mut times = vec![Vec::new(); series.len()];
    for (metric, idxs) in by_metric {
        text.push_str(&format!("# TYPE {metric} gauge\n"));
        for i in idxs {
            let ls = &series[i];
            let body: Vec<String> = ls
                .iter()
                .filter(|l| l.name != "__name__")
                .map(|l| format!("{}=\"{}\"", l.name, escape(&l.value)))
                .collect();
            let (step, from, to) = match i % 5 {
                0 => (15_000, 0, 9_000_000),
                1 => (60_000, 0, 3_000_000),
                2 => (30_000, 5_400_000, 9_000_000),
                3 => (7_000, 1_000_000, 8_000_000),
                _ => (3_600_000, 0, 9_000_000),
            };
            let mut t = START_MS + from + (i as i64 % 7) * 1000;
            while t < START_MS + to {
                text.push_str(&format!(
                    "{metric}{{{}}} {} {}.{:03}\n",
                    body.join(","),
                    t % 1000 + i as i64,
                    t / 1000,
                    t % 1000
                ));
                times[i].push(t);
                t += step;
            }
        }
    }
    text.push_str("# EOF\n");
    (text, times)
}

fn block_dirs(db: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("index").exists())
        .collect();
    dirs.sort();
    dirs
}

fn matcher_cases() -> Vec<Vec<Matcher>> {
    let eq = Matcher::equal;
    let ne = Matcher::not_equal;
    let re = |n: &str, v: &str| Matcher::regex(n, v).unwrap();
    let nre = |n: &str, v: &str| Matcher::not_regex(n, v).unwrap();
    vec![
        vec![eq("job", "api")],
        vec![eq("__name__", "ember_requests"), eq("code", "500")],
        vec![eq("__name__", "ember_requests"), eq("code", "")],
        vec![eq("__name__", "ember_requests"), ne("code", "404")],
        vec![ne("job", "api")],
        vec![eq("code", "")],
        vec![re("instance", "host-0[1-3].*")],
        vec![re("instance", "host-001:9100|host-099:9100|nope")],
        vec![re("instance", ".*")],
        vec![re("instance", ".+")],
        vec![nre("instance", ".+")],
        vec![re("job", "api|"), ne("__name__", "ember_requests")],
        vec![nre("job", "api|web"), re("city", ".*o.*")],
        vec![eq("city", "東京")],
        vec![eq("city", "a\"quoted\"")],
        vec![eq("job", "nope")],
        vec![eq("nolabel", "")],
        vec![ne("nolabel", "x"), eq("l03", "v21")],
        vec![re("__name__", "ember_.*"), nre("job", "db")],
        vec![eq("", "x")],
    ]
}

fn brute_matches(ls: &Labels, ms: &[Matcher]) -> bool {
    ms.iter().all(|m| m.matches(ls.get(m.name()).unwrap_or("")))
}

/// Reads every series of a block, checks the reader's answers against
/// brute force over those series, and returns them in postings order.
fn check_block(r: &IndexReader<memmap2::Mmap>) -> Vec<(Labels, Vec<ChunkMeta>)> {
    let refs = r.all_postings().unwrap();
    assert_eq!(refs.len() as u64, r.num_series());
    let mut series = Vec::new();
    for &sr in &refs {
        let mut ls = Labels::empty();
        let mut chunks = Vec::new();
        r.series(sr, &mut ls, &mut chunks).unwrap();
        series.push((sr, ls, chunks));
    }
    assert!(
        series.windows(2).all(|w| w[0].1 < w[1].1),
        "series not in label order"
    );

    // Symbols: exactly the strings of the series' labels, sorted, plus the
    // empty string: Prometheus takes the symbols from the head's postings
    // index, whose all-series key is `"", ""`.
    let want_syms: BTreeSet<&str> = std::iter::once("")
        .chain(
            series
                .iter()
                .flat_map(|(_, ls, _)| ls.iter().flat_map(|l| [l.name.as_str(), l.value.as_str()])),
        )
        .collect();
    let syms: Vec<&str> = r.symbols().map(|s| s.unwrap()).collect();
    assert_eq!(syms, want_syms.into_iter().collect::<Vec<_>>());

    let names: BTreeSet<String> = series
        .iter()
        .flat_map(|(_, ls, _)| ls.iter().map(|l| l.name.clone()))
        .collect();
    assert_eq!(
        r.label_names(&[]).unwrap(),
        names.iter().cloned().collect::<Vec<_>>()
    );

    for ms in matcher_cases() {
        let want: Vec<u64> = series
            .iter()
            .filter(|(_, ls, _)| brute_matches(ls, &ms))
            .map(|(sr, _, _)| *sr)
            .collect();
        assert_eq!(r.postings_for_matchers(&ms).unwrap(), want, "{ms:?}");
        let sel: Vec<&Labels> = series
            .iter()
            .filter(|(_, ls, _)| brute_matches(ls, &ms))
            .map(|(_, ls, _)| ls)
            .collect();
        let want_names: BTreeSet<String> = sel
            .iter()
            .flat_map(|ls| ls.iter().map(|l| l.name.clone()))
            .collect();
        assert_eq!(
            r.label_names(&ms).unwrap(),
            want_names.into_iter().collect::<Vec<_>>(),
            "label names for {ms:?}"
        );
        for name in ["job", "instance", "code", "city", "nolabel"] {
            let want_values: BTreeSet<String> = sel
                .iter()
                .filter_map(|ls| ls.get(name).map(str::to_string))
                .collect();
            assert_eq!(
                r.label_values(name, &ms).unwrap(),
                want_values.into_iter().collect::<Vec<_>>(),
                "values of {name} for {ms:?}"
            );
        }
    }
    series.into_iter().map(|(_, ls, c)| (ls, c)).collect()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn promtool_blocks_read_back_and_rewrite_byte_identically() {
    if !peer_available("promtool") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let labels = series_labels();
    let (text, times) = openmetrics(&labels);
    let input = tmp.path().join("in.om");
    std::fs::write(&input, text).unwrap();
    let db = tmp.path().join("promtool");
    run(Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&db));
    let blocks = block_dirs(&db);
    assert!(blocks.len() >= 2, "expected several blocks, got {blocks:?}");

    let ember_db = tmp.path().join("ember");
    // Per series: every chunk's time range, across all blocks.
    let mut chunk_ranges: BTreeMap<Labels, Vec<(i64, i64)>> = BTreeMap::new();
    for block in &blocks {
        let r = IndexReader::open(&block.join("index")).unwrap();
        let series = check_block(&r);

        // Rewrite the block's index from what was read: with promtool's
        // symbols it must be byte-identical.
        let identical = tmp.path().join("identical-index");
        let mut w = IndexWriter::create(&identical).unwrap();
        for s in r.symbols() {
            w.add_symbol(s.unwrap()).unwrap();
        }
        for (ls, chunks) in &series {
            w.add_series(ls, chunks).unwrap();
            chunk_ranges
                .entry(ls.clone())
                .or_default()
                .extend(chunks.iter().map(|c| (c.min_time, c.max_time)));
        }
        w.close().unwrap();
        let theirs = std::fs::read(block.join("index")).unwrap();
        let mine = std::fs::read(&identical).unwrap();
        assert_eq!(
            mine.len(),
            theirs.len(),
            "{}: index sizes differ",
            block.display()
        );
        if let Some(i) = (0..mine.len()).find(|&i| mine[i] != theirs[i]) {
            panic!("{}: first differing byte at {i}", block.display());
        }

        // The copy promtool reads below gets an index of Ember's own, without
        // the unused "" symbol, so every symbol number and offset differs.
        let copy = ember_db.join(block.file_name().unwrap());
        copy_dir(block, &copy);
        let ours = copy.join("index");
        let mut w = IndexWriter::create(&ours).unwrap();
        for s in r.symbols() {
            let s = s.unwrap();
            if !s.is_empty() {
                w.add_symbol(s).unwrap();
            }
        }
        for (ls, chunks) in &series {
            w.add_series(ls, chunks).unwrap();
        }
        w.close().unwrap();
        assert_ne!(std::fs::read(&ours).unwrap(), theirs);
    }

    // Every generated series is present, and its chunks partition its
    // samples: each chunk starts and ends on a sample, and every sample lies
    // in exactly one chunk.
    let want: BTreeSet<&Labels> = labels.iter().collect();
    assert_eq!(chunk_ranges.keys().collect::<BTreeSet<_>>(), want);
    for (ls, ts) in labels.iter().zip(&times) {
        let mut ranges = chunk_ranges[ls].clone();
        ranges.sort();
        let set: BTreeSet<i64> = ts.iter().copied().collect();
        for &(lo, hi) in &ranges {
            assert!(
                set.contains(&lo) && set.contains(&hi),
                "{ls}: chunk [{lo}, {hi}]"
            );
        }
        for &t in ts {
            let n = ranges
                .iter()
                .filter(|&&(lo, hi)| lo <= t && t <= hi)
                .count();
            assert_eq!(n, 1, "{ls}: sample at {t} is in {n} chunks");
        }
    }

    // promtool reads the copy with Ember's index files exactly as the
    // original. A read-only open wants a (here empty) WAL directory.
    std::fs::create_dir_all(db.join("wal")).unwrap();
    std::fs::create_dir_all(ember_db.join("wal")).unwrap();
    let dump = |dir: &Path| run(Command::new("promtool").args(["tsdb", "dump"]).arg(dir));
    let original = dump(&db);
    assert!(original.lines().count() > 10_000);
    assert_eq!(dump(&ember_db), original);
    // `list` without its last column, the block's size on disk.
    let list = |dir: &Path| -> Vec<Vec<String>> {
        run(Command::new("promtool").args(["tsdb", "list"]).arg(dir))
            .lines()
            .map(|l| {
                let mut cols: Vec<String> = l.split_whitespace().map(str::to_string).collect();
                cols.pop();
                cols
            })
            .collect()
    };
    let listed = list(&db);
    assert_eq!(listed.len(), blocks.len() + 1);
    assert_eq!(list(&ember_db), listed);
    // `analyze`'s totals (its rankings order ties at random).
    let totals = |dir: &Path, block: &std::ffi::OsStr| -> Vec<String> {
        run(Command::new("promtool")
            .args(["tsdb", "analyze"])
            .arg(dir)
            .arg(block))
        .lines()
        .filter(|l| {
            ["Series:", "Label names:", "Postings"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect()
    };
    for block in &blocks {
        let id = block.file_name().unwrap();
        let want = totals(&db, id);
        assert_eq!(want.len(), 4, "{want:?}");
        assert_eq!(totals(&ember_db, id), want);
    }
}
