//! Fuzzes the reading of head chunk files (`chunks_head/000001`). Checked with every input:
//!
//! 1. The input as a whole file: the walk never panics; the chunks it yields lie inside the input in
//!    increasing order, each with its data inside its frame; it ends at an offset inside the input or
//!    with damage at an offset inside the input that is not before the last chunk yielded.
//! 2. The input cut into payloads and framed correctly (valid header, lengths and CRCs, so the
//!    checksum does not stop the fuzzer at the first chunk): the walk gives back exactly those
//!    payloads, series refs and time spans; with one byte of the framed file flipped (picked by the
//!    input) the walk yields a prefix of them and reports damage at the start of the changed chunk,
//!    or (flip in the header padding) all of them.
//! 3. The input as the only file of a data directory: `Db::open` succeeds (the WAL replays
//!    everything a damaged file cannot give), reports damage exactly when the walk does, and never
//!    panics.
#![no_main]

use ember::chunks_head::{FILE_HEADER_SIZE, FORMAT_V1, MAGIC, encode_chunk, framed_size, scan_file};
use ember::{Db, Options};
use libfuzzer_sys::fuzz_target;

/// Walks the input; returns whether the open must report damage: a damaged walk, or an XOR chunk out
/// of time order for its series.
fn check_raw(data: &[u8]) -> bool {
    let mut last_end = 0usize;
    let mut last_t = std::collections::HashMap::new();
    let mut out_of_order = false;
    let res = scan_file(data, |c| {
        if c.encoding == 1 {
            let l = last_t.entry(c.series).or_insert(i64::MIN);
            out_of_order |= c.min_t <= *l || c.max_t < c.min_t;
            *l = c.max_t;
        }
        let start = c.offset as usize;
        assert!(start >= FILE_HEADER_SIZE && start >= last_end);
        assert!(c.data_start > start && c.data_start + c.data_len <= data.len());
        last_end = c.data_start + c.data_len + 4;
        assert!(last_end <= data.len());
    });
    match res {
        Ok(end) => {
            assert!(end <= data.len() && end >= last_end.max(FILE_HEADER_SIZE));
            out_of_order
        }
        Err(d) => {
            assert!(d.offset as usize <= data.len());
            assert!(d.offset == 0 || d.offset as usize >= last_end);
            true
        }
    }
}

fn framed(data: &[u8]) -> (Vec<u8>, Vec<(u64, i64, i64, Vec<u8>)>, Vec<usize>) {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&[FORMAT_V1, 0, 0, 0]);
    let mut chunks = Vec::new();
    let mut starts = Vec::new();
    let mut rest = data;
    let mut t = 0i64;
    while !rest.is_empty() {
        let n = (rest[0] as usize).min(rest.len() - 1);
        let payload = rest[1..1 + n].to_vec();
        rest = &rest[1 + n..];
        // Nonzero series refs and increasing spans, as a writer produces them.
        let series = chunks.len() as u64 + 1;
        let (a, b) = (t, t + n as i64);
        t = b + 1;
        starts.push(out.len());
        encode_chunk(&mut out, series, a, b, 1, &payload);
        assert_eq!(out.len() - starts.last().unwrap(), framed_size(payload.len()));
        chunks.push((series, a, b, payload));
    }
    (out, chunks, starts)
}

fn check_framed(data: &[u8]) {
    let (file, chunks, starts) = framed(data);
    let mut got = Vec::new();
    let end = scan_file(&file, |c| {
        got.push((
            c.series,
            c.min_t,
            c.max_t,
            file[c.data_start..c.data_start + c.data_len].to_vec(),
        ))
    });
    assert_eq!(end, Ok(file.len()));
    assert_eq!(got, chunks);
    if data.len() < 2 {
        return;
    }
    let pos = usize::from(u16::from_le_bytes([data[0], data[1]])) % file.len();
    let mut flipped = file.clone();
    flipped[pos] ^= 1 << (data[1] % 8);
    let mut got = Vec::new();
    let res = scan_file(&flipped, |c| got.push((c.series, c.min_t, c.max_t)));
    if (5..FILE_HEADER_SIZE).contains(&pos) {
        assert!(res.is_ok());
        assert_eq!(got.len(), chunks.len());
        return;
    }
    let d = res.expect_err("a flipped byte must be noticed");
    if pos < FILE_HEADER_SIZE {
        assert_eq!(d.offset, 0);
        assert!(got.is_empty());
    } else {
        let i = starts.iter().rposition(|&s| s <= pos).unwrap();
        assert_eq!(d.offset as usize, starts[i]);
        assert_eq!(got.len(), i);
        for (g, c) in got.iter().zip(&chunks) {
            assert_eq!(*g, (c.0, c.1, c.2));
        }
    }
}

fn check_open(data: &[u8], want_damage: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let chunks = tmp.path().join("chunks_head");
    std::fs::create_dir_all(&chunks).unwrap();
    std::fs::write(chunks.join("000001"), data).unwrap();
    let db = Db::open(tmp.path(), Options::default()).expect("open with any chunk file");
    let damaged = db.replay_stats().head_chunks.damage.is_some();
    // A file too short for a magic number, or with a zero one, is taken for one left by a crash
    // right after it was created and removed without a report.
    let crash_leftover = data.len() < 4 || data[..4] == [0, 0, 0, 0];
    assert_eq!(damaged, want_damage && !crash_leftover);
    db.close().unwrap();
}

fuzz_target!(|data: &[u8]| {
    let want_damage = check_raw(data);
    check_framed(data);
    check_open(data, want_damage);
});
