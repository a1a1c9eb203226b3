//! Fuzzes the block index reader (`<block>/index`). Checked with every input:
//!
//! 1. The input as a whole index file: opening and then reading everything (symbols, label names and
//!    values, every postings list, every series, matcher selections) never panics; every error is a
//!    `CorruptIndex` whose offset lies within the input.
//! 2. The input as a recipe: series and chunk metas derived from its first part are written with
//!    `IndexWriter` and must read back exactly, with matcher selections equal to a brute-force scan.
//!    The file is then corrupted with XOR patches taken from the rest of the input, and the checksums
//!    of every section are recomputed (so they do not stop the fuzzer before the decoders); reading
//!    it again must not panic and may only fail with `CorruptIndex` inside the file.
#![no_main]

use ember_index::block::{ChunkMeta, IndexReader, IndexWriter, TOC_LEN};
use ember_index::{Error, Labels, Matcher};
use libfuzzer_sys::fuzz_target;

/// Compiled once: regex compilation would dominate each run.
fn matchers() -> &'static [Vec<Matcher>] {
    static M: std::sync::OnceLock<Vec<Vec<Matcher>>> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        vec![
            vec![Matcher::equal("a", "x")],
            vec![Matcher::not_equal("b", "")],
            vec![
                Matcher::regex("a", "x.*|y").unwrap(),
                Matcher::not_regex("c", ".+").unwrap(),
            ],
            vec![Matcher::equal("c", "")],
        ]
    })
}

fn check_error(e: Error, len: usize) {
    match e {
        Error::CorruptIndex { offset, .. } => {
            assert!(offset as usize <= len, "offset {offset} > {len}")
        }
        e => panic!("unexpected error kind: {e}"),
    }
}

/// Reads everything the reader offers; returns the series it read.
fn read_all(bytes: &[u8]) -> Result<Vec<(u64, Labels, Vec<ChunkMeta>)>, Error> {
    let r = IndexReader::new(bytes)?;
    for s in r.symbols() {
        s?;
    }
    for name in r.label_names(&[])? {
        for v in r.label_values(&name, &[])? {
            r.postings(&name, &v)?;
        }
    }
    let mut series = Vec::new();
    for sr in r.all_postings()? {
        let mut ls = Labels::empty();
        let mut cs = Vec::new();
        r.series(sr, &mut ls, &mut cs)?;
        series.push((sr, ls, cs));
    }
    for ms in matchers() {
        r.postings_for_matchers(ms)?;
        r.label_names(ms)?;
        r.label_values("a", ms)?;
    }
    Ok(series)
}

const NAMES: &[&str] = &["__name__", "a", "b", "c"];
const VALUES: &[&str] = &["x", "xy", "y", "", "z", "ü"];

/// Series and chunk metas from the front of `data`; returns them (sorted,
/// deduplicated) and the unused rest.
fn recipe(data: &[u8]) -> (Vec<(Labels, Vec<ChunkMeta>)>, &[u8]) {
    let Some((&n, mut rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let mut sets = Vec::new();
    for _ in 0..n % 48 {
        let Some((&spec, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        let mut pairs = Vec::new();
        for (k, name) in NAMES.iter().enumerate() {
            if spec & (1 << k) != 0 {
                let Some((&v, tail)) = rest.split_first() else {
                    break;
                };
                rest = tail;
                let value = if v >= 0xf0 {
                    format!("v{}", v & 0x0f)
                } else {
                    VALUES[usize::from(v) % VALUES.len()].to_string()
                };
                pairs.push((*name, value));
            }
        }
        if let Ok(ls) = Labels::from_pairs(pairs)
            && !ls.is_empty()
        {
            sets.push((ls, usize::from(spec >> 4)));
        }
    }
    sets.sort();
    sets.dedup_by(|a, b| a.0 == b.0);
    let mut chunk_ref = 0u64;
    let mut t = -1_000i64;
    let series = sets
        .into_iter()
        .map(|(ls, nchunks)| {
            let chunks = (0..nchunks % 4)
                .map(|k| {
                    chunk_ref += 1 + (k as u64) * 40_000_000_000;
                    let min_time = t + 1;
                    t = min_time + 1000 * k as i64;
                    ChunkMeta {
                        min_time,
                        max_time: t,
                        chunk_ref,
                    }
                })
                .collect();
            (ls, chunks)
        })
        .collect();
    (series, rest)
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

fn uvarint(b: &[u8], at: &mut usize) -> Option<u64> {
    let (mut x, mut shift) = (0u64, 0u32);
    loop {
        let byte = *b.get(*at)?;
        *at += 1;
        x |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte < 0x80 {
            return Some(x);
        }
        shift += 7;
    }
}

fn fix_framed(b: &mut [u8], at: usize) {
    let Some(len) = be32(b, at) else { return };
    let (start, end) = (at + 4, at + 4 + len);
    if end + 4 <= b.len() {
        let crc = crc32c::crc32c(&b[start..end]);
        b[end..end + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Recomputes the checksums of the sections a valid file had at the given
/// places, as far as the corrupted lengths allow.
fn fix_checksums(b: &mut Vec<u8>, symbols: usize, table: usize, series: &[usize], lists: &[usize]) {
    fix_framed(b, symbols);
    fix_framed(b, table);
    for &at in lists {
        fix_framed(b, at);
    }
    for &at in series {
        let mut p = at;
        if let Some(len) = uvarint(b, &mut p)
            && let Some(end) = p.checked_add(len as usize)
            && end.checked_add(4).is_some_and(|e| e <= b.len())
        {
            let crc = crc32c::crc32c(&b[p..end]);
            b[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        }
    }
    if b.len() >= TOC_LEN {
        let t = b.len() - TOC_LEN;
        let crc = crc32c::crc32c(&b[t..t + TOC_LEN - 4]);
        let n = b.len();
        b[n - 4..].copy_from_slice(&crc.to_be_bytes());
    }
}

fn check_recipe(data: &[u8]) {
    let (series, patches) = recipe(data);
    // tmpfs where there is one: the writer fsyncs, which on a disk would
    // cap the fuzzer at a few dozen runs per second.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    let path = dir.path().join("index");
    let mut symbols: Vec<&str> = series
        .iter()
        .flat_map(|(ls, _)| ls.iter().flat_map(|l| [l.name.as_str(), l.value.as_str()]))
        .collect();
    symbols.sort_unstable();
    symbols.dedup();
    let mut w = IndexWriter::create(&path).unwrap();
    for s in &symbols {
        w.add_symbol(s).unwrap();
    }
    for (ls, cs) in &series {
        w.add_series(ls, cs).unwrap();
    }
    w.close().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();

    let got = read_all(&bytes).unwrap();
    assert_eq!(got.len(), series.len());
    for ((_, ls, cs), (want_ls, want_cs)) in got.iter().zip(&series) {
        assert_eq!((ls, cs), (want_ls, want_cs));
    }
    let r = IndexReader::new(&bytes[..]).unwrap();
    for ms in matchers() {
        let want: Vec<u64> = got
            .iter()
            .filter(|(_, ls, _)| ms.iter().all(|m| m.matches(ls.get(m.name()).unwrap_or(""))))
            .map(|(sr, _, _)| *sr)
            .collect();
        assert_eq!(r.postings_for_matchers(ms).unwrap(), want, "{ms:?}");
    }

    // Where the checksummed sections are in the valid file.
    let toc = r.toc();
    let series_at: Vec<usize> = got.iter().map(|(sr, _, _)| *sr as usize * 16).collect();
    let mut lists = Vec::new();
    let mut p = toc.postings_table as usize + 4;
    let count = be32(&bytes, p).unwrap();
    p += 4;
    for _ in 0..count {
        uvarint(&bytes, &mut p).unwrap();
        for _ in 0..2 {
            p += uvarint(&bytes, &mut p).unwrap() as usize;
        }
        lists.push(uvarint(&bytes, &mut p).unwrap() as usize);
    }
    drop(r);

    if patches.len() < 3 {
        return;
    }
    for patch in patches.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([patch[0], patch[1]])) % bytes.len();
        bytes[at] ^= patch[2];
    }
    fix_checksums(
        &mut bytes,
        toc.symbols as usize,
        toc.postings_table as usize,
        &series_at,
        &lists,
    );
    if let Err(e) = read_all(&bytes) {
        check_error(e, bytes.len());
    }
}

fuzz_target!(|data: &[u8]| {
    if let Err(e) = read_all(data) {
        check_error(e, data.len());
    }
    check_recipe(data);
});
