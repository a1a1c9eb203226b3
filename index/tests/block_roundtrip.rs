//! Round trip of the block index: random label sets and chunk metas written
//! by `IndexWriter` read back identically by `IndexReader`, whose matcher,
//! label-name and label-value answers equal those of `MemPostings` (the
//! head's index, itself checked against a brute-force model in
//! `index_model.rs`) over the same series.

use std::collections::BTreeSet;

use ember_index::block::{ChunkMeta, IndexReader, IndexWriter};
use ember_index::{Labels, MatchType, Matcher, MemPostings};
use proptest::prelude::*;

const NAMES: &[&str] = &["__name__", "a", "b", "job", "zz"];

/// Enough distinct values that one label name exceeds the reader's
/// 1-in-32 sampling of the postings offset table, plus awkward ones.
fn value_pool() -> Vec<String> {
    let mut v: Vec<String> = (0..70).map(|i| format!("v{i:02}")).collect();
    v.extend(
        ["x", "xy", "yx", "Zürich", "a\"b\\c", "東京", "\n"]
            .iter()
            .map(|s| s.to_string()),
    );
    v.push("long".repeat(80));
    v
}

const PATTERNS: &[&str] = &[
    "",
    "x",
    "v0.*",
    "v1[0-4]",
    ".*",
    ".+",
    "x|xy|nope",
    "|x",
    ".*y.*",
    "v[0-9]+",
    "[^v].*",
    "Zürich",
    "v07",
    "(?s).",
];

fn labels() -> impl Strategy<Value = Labels> {
    let pool = value_pool();
    proptest::collection::vec(proptest::option::weighted(0.6, 0..pool.len()), NAMES.len())
        .prop_map(move |vs| {
            Labels::from_pairs(
                NAMES
                    .iter()
                    .zip(vs)
                    .filter_map(|(n, v)| v.map(|i| (*n, pool[i].clone()))),
            )
            .unwrap()
        })
        .prop_filter("a series needs a label", |ls| !ls.is_empty())
}

/// Per series: start time, then (gap, duration, ref delta) per chunk.
type ChunkSpec = (i64, Vec<(u64, u64, u64)>);

fn chunk_spec() -> impl Strategy<Value = ChunkSpec> {
    let start = prop_oneof![
        Just(i64::MIN),
        Just(-1),
        Just(0),
        -1_000_000i64..1_000_000,
        Just(1_700_000_000_000i64),
        Just(i64::MAX - 10),
    ];
    let gap = prop_oneof![Just(0u64), 0u64..1000, Just(u64::MAX / 2)];
    let dur = prop_oneof![Just(0u64), 0u64..100_000, Just(u64::MAX / 4)];
    let ref_delta = prop_oneof![Just(0u64), 1u64..5000, 1u64 << 32..1u64 << 40];
    (
        start,
        proptest::collection::vec((gap, dur, ref_delta), 0..5),
    )
}

/// Turns specs into valid chunk metas: sorted, non-overlapping, references
/// never decreasing across all series. Chunks that would leave the i64 range
/// are dropped.
fn chunk_metas(specs: &[ChunkSpec]) -> Vec<Vec<ChunkMeta>> {
    let mut chunk_ref = 0u64;
    specs
        .iter()
        .map(|(start, chunks)| {
            let mut out: Vec<ChunkMeta> = Vec::new();
            let mut next_min = i128::from(*start);
            for &(gap, dur, delta) in chunks {
                let min = next_min + i128::from(gap);
                let max = min + i128::from(dur);
                let (Ok(min_time), Ok(max_time)) = (i64::try_from(min), i64::try_from(max)) else {
                    break;
                };
                chunk_ref = chunk_ref.saturating_add(delta);
                out.push(ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref,
                });
                next_min = max + 1;
            }
            out
        })
        .collect()
}

fn matcher() -> impl Strategy<Value = Matcher> {
    let kind = prop_oneof![
        Just(MatchType::Equal),
        Just(MatchType::NotEqual),
        Just(MatchType::Regex),
        Just(MatchType::NotRegex),
    ];
    let names = prop_oneof![proptest::sample::select(NAMES), Just("absent"), Just("")];
    // Pool values are literals: escaped when used as a pattern.
    let value = prop_oneof![
        proptest::sample::select(PATTERNS).prop_map(|p| (p.to_string(), true)),
        proptest::sample::select(value_pool()).prop_map(|v| (v, false)),
    ];
    (kind, names, value).prop_map(|(k, n, (v, is_pattern))| {
        let v = match k {
            MatchType::Regex | MatchType::NotRegex if !is_pattern => regex::escape(&v),
            _ => v,
        };
        Matcher::new(k, n, v).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn written_index_reads_back_and_answers_like_mem_postings(
        series in proptest::collection::btree_set(labels(), 0..90),
        specs in proptest::collection::vec(chunk_spec(), 90),
        extra_symbols in proptest::collection::btree_set("[a-z]{0,3}", 0..4),
        queries in proptest::collection::vec(proptest::collection::vec(matcher(), 1..4), 12),
    ) {
        let series: Vec<Labels> = series.into_iter().collect();
        let chunks = chunk_metas(&specs[..series.len()]);
        let mut symbols: BTreeSet<String> = extra_symbols;
        for ls in &series {
            for l in ls.iter() {
                symbols.insert(l.name.clone());
                symbols.insert(l.value.clone());
            }
        }

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let mut w = IndexWriter::create(&path).unwrap();
        for s in &symbols {
            w.add_symbol(s).unwrap();
        }
        for (ls, cs) in series.iter().zip(&chunks) {
            w.add_series(ls, cs).unwrap();
        }
        w.close().unwrap();

        let r = IndexReader::new(std::fs::read(&path).unwrap()).unwrap();
        prop_assert_eq!(r.num_series(), series.len() as u64);
        let got_symbols: Vec<&str> = r.symbols().map(|s| s.unwrap()).collect();
        prop_assert_eq!(got_symbols, symbols.iter().map(String::as_str).collect::<Vec<_>>());

        let refs = r.all_postings().unwrap();
        prop_assert_eq!(refs.len(), series.len());
        let mut mem = MemPostings::new();
        let mut ls = Labels::empty();
        let mut cs = Vec::new();
        for (i, &sr) in refs.iter().enumerate() {
            r.series(sr, &mut ls, &mut cs).unwrap();
            prop_assert_eq!(&ls, &series[i]);
            prop_assert_eq!(&cs, &chunks[i]);
            mem.add(i as u64, &series[i]);
        }
        // Block references map to series positions by their rank.
        let rank = |block: Vec<u64>| -> Vec<u64> {
            block.iter().map(|r| refs.binary_search(r).unwrap() as u64).collect()
        };

        prop_assert_eq!(r.label_names(&[]).unwrap(), mem.label_names());
        for ms in &queries {
            prop_assert_eq!(
                rank(r.postings_for_matchers(ms).unwrap()),
                mem.postings_for_matchers(ms),
                "postings for {:?}", ms
            );
            prop_assert_eq!(
                r.label_names(ms).unwrap(),
                mem.label_names_for(ms),
                "label names for {:?}", ms
            );
            for name in NAMES.iter().chain(&["absent"]) {
                prop_assert_eq!(
                    r.label_values(name, ms).unwrap(),
                    mem.label_values_for(name, ms),
                    "values of {} for {:?}", name, ms
                );
            }
        }
    }
}
