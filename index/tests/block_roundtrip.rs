//! Round trip of the block index: random label sets and chunk metas written
//! by `IndexWriter` read back identically by `IndexReader`, whose matcher,
//! label-name and label-value answers equal those of `MemPostings` (the
//! head's index, itself checked against a brute-force model in
//! `index_model.rs`) over the same series.

use std::collections::BTreeSet;

use ember_index::block::{ChunkMeta, IndexReader, IndexWriter, SeriesPairs};
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
        let mut pairs = SeriesPairs::default();
        for (i, &sr) in refs.iter().enumerate() {
            r.series(sr, &mut ls, &mut cs).unwrap();
            prop_assert_eq!(&ls, &series[i]);
            prop_assert_eq!(&cs, &chunks[i]);
            // The borrowed form spells the same set and reads the same chunk metas.
            r.series_pairs(sr, &mut pairs, &mut cs).unwrap();
            prop_assert_eq!(Labels::from_pairs(pairs.pairs().iter().copied()).unwrap(), ls.clone());
            prop_assert_eq!(&cs, &chunks[i]);
            // Sets are unique and no label is empty: the pairs spell the set, and the unchanged
            // prefix is the one shared with the previous series.
            let shared = match i.checked_sub(1) {
                Some(p) => series[p].iter().zip(series[i].iter()).take_while(|(a, b)| a == b).count(),
                None => 0,
            };
            prop_assert_eq!(pairs.unchanged(), shared);
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

fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn uvarint(b: &[u8], at: &mut usize) -> u64 {
    let (mut x, mut shift) = (0u64, 0);
    loop {
        let byte = b[*at];
        *at += 1;
        x |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return x;
        }
        shift += 7;
    }
}

/// Prometheus 3.7 and later write no label indices and no label offset
/// table: postings follow the series, and the TOC's label offset table entry
/// equals its postings offset table entry. The reader must not care.
#[test]
fn reads_the_layout_without_label_indices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let series: Vec<Labels> = (0..50)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("m{}", i % 3)),
                ("i", format!("{i:02}")),
            ])
            .unwrap()
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let symbols: BTreeSet<&str> = series
        .iter()
        .flat_map(|ls| ls.iter().flat_map(|l| [l.name.as_str(), l.value.as_str()]))
        .collect();
    let mut w = IndexWriter::create(&path).unwrap();
    for s in &symbols {
        w.add_symbol(s).unwrap();
    }
    for (k, ls) in series.iter().enumerate() {
        let c = ChunkMeta {
            min_time: k as i64,
            max_time: k as i64 + 10,
            chunk_ref: k as u64 * 100,
        };
        w.add_series(ls, &[c]).unwrap();
    }
    w.close().unwrap();
    let old = std::fs::read(&path).unwrap();
    let r = IndexReader::new(&old[..]).unwrap();
    let toc = r.toc();
    assert!(
        toc.postings > toc.label_indices,
        "2.x layout has label indices"
    );

    // Rebuild as 3.7 does: series, padding, postings, postings offset table.
    let series_end = toc.label_indices as usize;
    // The TOC records the postings' start before their 4-byte alignment.
    let old_postings = (toc.postings as usize).next_multiple_of(4);
    let mut new = old[..series_end].to_vec();
    new.resize(series_end.next_multiple_of(4), 0);
    let shift = old_postings - new.len();
    new.extend_from_slice(&old[old_postings..toc.label_indices_table as usize]);
    let table_at = new.len();
    let mut p = toc.postings_table as usize + 4;
    let count = u32::from_be_bytes(old[p..p + 4].try_into().unwrap());
    p += 4;
    let mut body = count.to_be_bytes().to_vec();
    for _ in 0..count {
        let keys = uvarint(&old, &mut p);
        put_uvarint(&mut body, keys);
        for _ in 0..2 {
            let n = uvarint(&old, &mut p) as usize;
            put_uvarint(&mut body, n as u64);
            body.extend_from_slice(&old[p..p + n]);
            p += n;
        }
        put_uvarint(&mut body, uvarint(&old, &mut p) - shift as u64);
    }
    new.extend_from_slice(&(body.len() as u32).to_be_bytes());
    new.extend_from_slice(&body);
    new.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    let mut t = Vec::new();
    for off in [
        toc.symbols,
        toc.series,
        series_end as u64,
        table_at as u64,
        series_end as u64,
        table_at as u64,
    ] {
        t.extend_from_slice(&off.to_be_bytes());
    }
    new.extend_from_slice(&t);
    new.extend_from_slice(&crc32c::crc32c(&t).to_be_bytes());
    assert!(new.len() < old.len());

    let r2 = IndexReader::new(&new[..]).unwrap();
    assert_eq!(r2.label_names(&[]).unwrap(), r.label_names(&[]).unwrap());
    assert_eq!(
        r2.label_values("i", &[]).unwrap(),
        r.label_values("i", &[]).unwrap()
    );
    let ms = [
        Matcher::regex("i", "1.|4.").unwrap(),
        Matcher::not_equal("__name__", "m1"),
    ];
    assert_eq!(
        r2.postings_for_matchers(&ms).unwrap(),
        r.postings_for_matchers(&ms).unwrap()
    );
    let refs = r2.all_postings().unwrap();
    assert_eq!(refs, r.all_postings().unwrap());
    for (k, sr) in refs.into_iter().enumerate() {
        let mut ls = Labels::empty();
        let mut cs = Vec::new();
        r2.series(sr, &mut ls, &mut cs).unwrap();
        assert_eq!(ls, series[k]);
        assert_eq!(cs[0].chunk_ref, k as u64 * 100);
    }
}

/// Writes an index of `series` (sorted) with one chunk each; returns its bytes.
fn index_of(series: &[Labels]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let symbols: BTreeSet<&str> = series
        .iter()
        .flat_map(|ls| ls.iter().flat_map(|l| [l.name.as_str(), l.value.as_str()]))
        .collect();
    let mut w = IndexWriter::create(&path).unwrap();
    for s in &symbols {
        w.add_symbol(s).unwrap();
    }
    for (k, ls) in series.iter().enumerate() {
        let c = ChunkMeta {
            min_time: 0,
            max_time: 10,
            chunk_ref: k as u64 * 8,
        };
        w.add_series(ls, &[c]).unwrap();
    }
    w.close().unwrap();
    std::fs::read(&path).unwrap()
}

/// `SeriesPairs` reuses the strings of the previous entry's references; the same numbers in
/// another index are other strings, and must be looked up there.
#[test]
fn series_pairs_reused_across_indexes_resolve_each_index_own_symbols() {
    let one = |v: &str| Labels::from_pairs([("a", v)]).unwrap();
    // Symbols "a" < "x" and "a" < "y": the same references, 0 and 1, spell different sets.
    let (bx, by) = (index_of(&[one("x")]), index_of(&[one("y")]));
    let (rx, ry) = (
        IndexReader::new(&bx[..]).unwrap(),
        IndexReader::new(&by[..]).unwrap(),
    );
    let mut sp = SeriesPairs::default();
    let mut cs = Vec::new();
    for (r, want) in [(&rx, "x"), (&ry, "y"), (&rx, "x")] {
        let sr = r.all_postings().unwrap()[0];
        r.series_pairs(sr, &mut sp, &mut cs).unwrap();
        assert_eq!(sp.pairs(), [("a", want)]);
        assert_eq!(sp.unchanged(), 0, "nothing carries over from another index");
        assert_eq!(r.series_label_pairs(sr, &mut sp).unwrap(), 1);
        assert_eq!(sp.pairs(), [("a", want)]);
        assert_eq!(sp.unchanged(), 1);
    }
}
