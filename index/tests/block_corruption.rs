//! Corrupt block index files give `Error::CorruptIndex` naming an offset
//! inside the file, never a panic or a wrong answer:
//!
//! - every truncation of a valid file fails to open;
//! - cutting the file at any section boundary and re-appending the original
//!   TOC (so the TOC checksum still holds) fails to open or to read;
//! - every single-bit flip in a byte the reader uses (header, symbol table,
//!   series entries, postings lists, postings offset table, TOC) is reported
//!   by opening or by a full read of the index; a flip anywhere else
//!   (alignment padding, the label indices and label offset table, which
//!   Prometheus no longer reads either) changes no answer.

use std::ops::Range;

use ember_index::block::{ChunkMeta, IndexReader, IndexWriter, TOC_LEN};
use ember_index::{Error, Labels, Matcher};

fn build_index() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let mut series = Vec::new();
    for i in 0..40u32 {
        let mut pairs = vec![
            ("__name__".to_string(), format!("m{}", i % 3)),
            ("instance".to_string(), format!("i{i:02}")),
        ];
        if i % 2 == 0 {
            pairs.push(("job".to_string(), format!("j{}", i % 5)));
        }
        series.push(Labels::from_pairs(pairs).unwrap());
    }
    series.sort();
    let mut symbols: Vec<String> = series
        .iter()
        .flat_map(|ls| ls.iter().flat_map(|l| [l.name.clone(), l.value.clone()]))
        .collect();
    symbols.sort();
    symbols.dedup();
    let mut w = IndexWriter::create(&path).unwrap();
    for s in &symbols {
        w.add_symbol(s).unwrap();
    }
    let mut chunk_ref = 8;
    for (i, ls) in series.iter().enumerate() {
        let chunks: Vec<ChunkMeta> = (0..i as i64 % 4)
            .map(|k| {
                chunk_ref += 100;
                ChunkMeta {
                    min_time: k * 1000 - 500,
                    max_time: k * 1000 + 499,
                    chunk_ref,
                }
            })
            .collect();
        w.add_series(ls, &chunks).unwrap();
    }
    w.close().unwrap();
    std::fs::read(&path).unwrap()
}

/// Per label name, each value with its postings.
type NameValues = Vec<(String, Vec<(String, Vec<u64>)>)>;

/// Everything a reader can tell about an index.
#[derive(Debug, PartialEq)]
struct Snapshot {
    symbols: Vec<String>,
    names: NameValues,
    series: Vec<(Labels, Vec<ChunkMeta>)>,
    selected: Vec<u64>,
}

fn read_all(bytes: &[u8]) -> Result<Snapshot, Error> {
    let r = IndexReader::new(bytes)?;
    let symbols = r
        .symbols()
        .map(|s| s.map(str::to_string))
        .collect::<Result<_, _>>()?;
    let mut names = Vec::new();
    for name in r.label_names(&[])? {
        let mut values = Vec::new();
        for v in r.label_values(&name, &[])? {
            let p = r.postings(&name, &v)?;
            values.push((v, p));
        }
        names.push((name, values));
    }
    let mut series = Vec::new();
    for sr in r.all_postings()? {
        let mut ls = Labels::empty();
        let mut cs = Vec::new();
        r.series(sr, &mut ls, &mut cs)?;
        series.push((ls, cs));
    }
    let selected = r.postings_for_matchers(&[
        Matcher::regex("instance", "i.*").unwrap(),
        Matcher::not_equal("job", "j1"),
    ])?;
    Ok(Snapshot {
        symbols,
        names,
        series,
        selected,
    })
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
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

/// Byte ranges the reader uses, found by walking the valid file.
fn used_ranges(b: &[u8]) -> Vec<Range<usize>> {
    let r = IndexReader::new(b).unwrap();
    let toc = r.toc();
    let framed = |at: usize| at..at + 4 + be32(b, at) + 4;
    let toc_start = b.len() - TOC_LEN;
    let mut used = vec![
        0..5,
        framed(toc.symbols as usize),
        framed(toc.postings_table as usize),
        toc_start..b.len(),
    ];
    for sr in r.all_postings().unwrap() {
        let at = sr as usize * 16;
        let mut p = at;
        let len = uvarint(b, &mut p) as usize;
        used.push(at..p + len + 4);
    }
    // Postings lists, from the postings offset table's entries.
    let mut p = toc.postings_table as usize + 4;
    let count = be32(b, p);
    p += 4;
    for _ in 0..count {
        uvarint(b, &mut p);
        for _ in 0..2 {
            let n = uvarint(b, &mut p) as usize;
            p += n;
        }
        let off = uvarint(b, &mut p) as usize;
        used.push(framed(off));
    }
    used
}

fn assert_corrupt_within(e: Error, len: usize, what: &str) {
    match e {
        Error::CorruptIndex { offset, .. } => {
            assert!(
                offset as usize <= len,
                "{what}: offset {offset} beyond {len}"
            )
        }
        other => panic!("{what}: expected CorruptIndex, got {other:?}"),
    }
}

#[test]
fn every_truncation_fails_to_open() {
    let b = build_index();
    for n in 0..b.len() {
        match IndexReader::new(&b[..n]) {
            Ok(_) => panic!("truncation to {n} of {} bytes opened", b.len()),
            Err(e) => assert_corrupt_within(e, n, &format!("truncation to {n}")),
        }
    }
}

#[test]
fn cutting_at_a_section_boundary_under_a_valid_toc_is_an_error() {
    let b = build_index();
    let toc_start = b.len() - TOC_LEN;
    let toc = IndexReader::new(&b[..]).unwrap().toc();
    let mut boundaries: Vec<usize> = used_ranges(&b)
        .into_iter()
        .flat_map(|r| [r.start, r.end])
        .chain([
            toc.label_indices as usize,
            toc.label_indices_table as usize,
            toc.postings as usize,
        ])
        .filter(|&x| x < toc_start)
        .collect();
    boundaries.sort_unstable();
    boundaries.dedup();
    assert!(boundaries.len() > 50);
    for cut in boundaries {
        let mut bad = b[..cut].to_vec();
        bad.extend_from_slice(&b[toc_start..]);
        match read_all(&bad) {
            Ok(_) => panic!("index cut at {cut} read without error"),
            Err(e) => assert_corrupt_within(e, bad.len(), &format!("cut at {cut}")),
        }
    }
}

#[test]
fn every_bit_flip_in_used_bytes_is_detected_and_others_are_harmless() {
    let b = build_index();
    let want = read_all(&b).unwrap();
    let used = used_ranges(&b);
    let mut detected = 0;
    let mut harmless = 0;
    let mut bad = b.clone();
    for i in 0..b.len() {
        let in_use = used.iter().any(|r| r.contains(&i));
        for bit in 0..8 {
            bad[i] ^= 1 << bit;
            match read_all(&bad) {
                Err(e) => {
                    assert!(
                        in_use,
                        "flip of bit {bit} at unused byte {i} broke reading: {e}"
                    );
                    assert_corrupt_within(e, b.len(), &format!("flip of bit {bit} at {i}"));
                    detected += 1;
                }
                Ok(got) => {
                    assert!(!in_use, "flip of bit {bit} at byte {i} went unnoticed");
                    assert_eq!(
                        got, want,
                        "flip of bit {bit} at unused byte {i} changed answers"
                    );
                    harmless += 1;
                }
            }
            bad[i] ^= 1 << bit;
        }
    }
    assert!(
        detected > 8 * 1000 && harmless > 0,
        "{detected} detected, {harmless} harmless"
    );
}

#[test]
fn wrong_magic_and_version_are_named() {
    let mut b = build_index();
    b[4] = 1;
    match IndexReader::new(&b[..]) {
        Err(Error::CorruptIndex { offset: 4, reason }) => assert!(reason.contains("version 1")),
        other => panic!("{:?}", other.err()),
    }
    b[0] = 0;
    match IndexReader::new(&b[..]) {
        Err(Error::CorruptIndex { offset: 0, reason }) => assert!(reason.contains("magic")),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn series_references_outside_the_series_section_are_errors() {
    let b = build_index();
    let r = IndexReader::new(&b[..]).unwrap();
    let mut ls = Labels::empty();
    let mut cs = Vec::new();
    let last = *r.all_postings().unwrap().last().unwrap();
    for bad in [0, 1, last + 1, last + 1000, u64::MAX / 16, u64::MAX] {
        match r.series(bad, &mut ls, &mut cs) {
            Err(Error::CorruptIndex { .. }) => {}
            other => panic!("series {bad}: {other:?}"),
        }
    }
}
