use super::*;
use crate::chunkenc::XorAppender;

fn chunk(n: i64, seed: i64) -> (i64, i64, Vec<u8>) {
    let mut app = XorAppender::new();
    for i in 0..n {
        app.append(seed * 1000 + i * 15, (seed * 7 + i) as f64 * 0.5);
    }
    (seed * 1000, seed * 1000 + (n - 1) * 15, app.into_bytes())
}

fn file_with(chunks: &[(u64, i64, i64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&[FORMAT_V1, 0, 0, 0]);
    for (s, a, b, d) in chunks {
        encode_chunk(&mut out, *s, *a, *b, crate::chunkenc::ENCODING_XOR, d);
    }
    out
}

fn scan_all(bytes: &[u8]) -> (Vec<ScannedChunk>, std::result::Result<usize, Damage>) {
    let mut v = Vec::new();
    let r = scan_file(bytes, |c| v.push(*c));
    (v, r)
}

#[test]
fn encoded_chunks_scan_back_with_their_series_span_and_sample_count() {
    let chunks: Vec<_> = (1..=5)
        .map(|s| {
            let (a, b, d) = chunk(10 + s as i64, s as i64);
            (s, a, b, d)
        })
        .collect();
    let bytes = file_with(&chunks);
    let (got, end) = scan_all(&bytes);
    assert_eq!(end, Ok(bytes.len()));
    assert_eq!(got.len(), 5);
    let mut off = FILE_HEADER_SIZE;
    for (g, (s, a, b, d)) in got.iter().zip(&chunks) {
        assert_eq!((g.series, g.min_t, g.max_t), (*s, *a, *b));
        assert_eq!(g.offset as usize, off);
        assert_eq!(g.num_samples as u64, 10 + s);
        assert_eq!(&bytes[g.data_start..g.data_start + g.data_len], &d[..]);
        off += framed_size(d.len());
    }
}

#[test]
fn zero_padding_after_the_chunks_ends_the_file_as_prometheus_preallocates_it() {
    let (a, b, d) = chunk(20, 1);
    let mut bytes = file_with(&[(1, a, b, d)]);
    let content = bytes.len();
    bytes.resize(content + 128 * 1024, 0);
    let (got, end) = scan_all(&bytes);
    assert_eq!(got.len(), 1);
    assert_eq!(end, Ok(content));
    // Fewer zero bytes than a chunk header, too.
    bytes.truncate(content + 7);
    assert_eq!(scan_all(&bytes).1, Ok(content));
}

#[test]
fn a_chunk_whose_series_and_times_read_as_zero_but_data_follows_is_damage_not_the_end() {
    // Series 1 at time 0: one flipped bit zeroes its whole triple. Prometheus would take that for
    // the start of the padding and silently drop the chunk; with data after it, it is damage.
    let (_, _, data) = chunk(3, 0);
    let mut bytes = file_with(&[(7, 0, 1, chunk(5, 1).2), (1, 0, 0, data)]);
    let second = FILE_HEADER_SIZE + CHUNK_FIXED_HEADER + 1 + chunk(5, 1).2.len() + CRC_SIZE;
    bytes[second + 7] ^= 1;
    let (got, res) = scan_all(&bytes);
    assert_eq!(got.len(), 1);
    assert_eq!(res.unwrap_err().offset as usize, second);
}

#[test]
fn a_cut_off_chunk_is_damage_at_its_first_byte() {
    let chunks: Vec<_> = (1..=3)
        .map(|s| {
            let (a, b, d) = chunk(30, s as i64);
            (s, a, b, d)
        })
        .collect();
    let bytes = file_with(&chunks);
    let third = FILE_HEADER_SIZE + framed_size(chunks[0].3.len()) + framed_size(chunks[1].3.len());
    // (Fewer than a header's worth of zero bytes would read as zero padding, as in Prometheus.)
    for cut in [third + 8, third + 30, bytes.len() - 1] {
        let (got, end) = scan_all(&bytes[..cut]);
        assert_eq!(got.len(), 2, "cut at {cut}");
        assert_eq!(end.unwrap_err().offset, third as u64, "cut at {cut}");
    }
}

#[test]
fn every_flipped_bit_in_a_chunk_is_caught_at_that_chunk() {
    let chunks: Vec<_> = (1..=2)
        .map(|s| {
            let (a, b, d) = chunk(12, s as i64);
            (s, a, b, d)
        })
        .collect();
    let bytes = file_with(&chunks);
    let second = FILE_HEADER_SIZE + framed_size(chunks[0].3.len());
    for pos in 0..bytes.len() {
        for bit in [0, 3, 7] {
            let mut b = bytes.clone();
            b[pos] ^= 1 << bit;
            let (got, end) = scan_all(&b);
            if (5..8).contains(&pos) {
                // Header padding: ignored, as by Prometheus.
                assert_eq!(end, Ok(b.len()));
                continue;
            }
            let d = end.expect_err(&format!("flip at {pos} bit {bit} not caught"));
            let want = if pos < 8 {
                0
            } else if pos < second {
                8
            } else {
                second
            };
            assert_eq!(d.offset, want as u64, "flip at {pos}: {}", d.reason);
            assert_eq!(got.len(), usize::from(want == second));
        }
    }
}

#[test]
fn a_wrong_magic_or_version_is_refused_at_offset_zero() {
    let mut b = file_with(&[]);
    b[0] = 0x85;
    assert!(check_header(&b).unwrap_err().reason.contains("magic"));
    let mut b = file_with(&[]);
    b[4] = 2;
    assert!(check_header(&b).unwrap_err().reason.contains("version"));
    assert!(check_header(&b[..5]).is_err());
}

fn open(dir: &Path) -> (HeadChunks, HeadChunksLoad, Vec<LoadedChunk>) {
    let mut found = Vec::new();
    let (hc, load) = HeadChunks::open(dir, |c| found.push(c)).unwrap();
    (hc, load, found)
}

fn bytes_of(hc: &HeadChunks, r: HeadChunkRef) -> Vec<u8> {
    hc.chunk(r).bytes().unwrap().to_vec()
}

#[test]
fn written_chunks_read_back_through_the_map_once_a_read_flushed_the_buffer() {
    let tmp = tempfile::tempdir().unwrap();
    let (hc, load, found) = open(tmp.path());
    assert_eq!(load.files, 0);
    assert!(found.is_empty());
    let mut refs = Vec::new();
    for s in 1..=50u64 {
        let (a, b, d) = chunk(40, s as i64);
        refs.push((hc.write(s, a, b, &d).unwrap(), d));
    }
    // Nothing reached the file yet; the first read writes the buffer out, and every chunk is then
    // served from the map.
    let file = tmp.path().join(DIR_NAME).join(file_name(refs[0].0.file()));
    let len = |f: &Path| std::fs::metadata(f).unwrap().len();
    assert_eq!(len(&file), FILE_HEADER_SIZE as u64);
    assert!(matches!(hc.chunk(refs[10].0), ChunkData::Head { .. }));
    assert!(len(&file) > FILE_HEADER_SIZE as u64);
    for (r, d) in &refs {
        assert!(matches!(hc.chunk(*r), ChunkData::Head { .. }));
        assert_eq!(&bytes_of(&hc, *r), d);
    }
    // Chunks written after the flush are buffered again, and read the same way.
    let (a, b, d) = chunk(40, 51);
    let late = hc.write(51, a, b, &d).unwrap();
    assert_eq!(bytes_of(&hc, late), d);
    assert!(matches!(hc.chunk(late), ChunkData::Head { .. }));
    refs.push((late, d));
    hc.sync().unwrap();
    for (r, d) in &refs {
        assert_eq!(&bytes_of(&hc, *r), d);
    }
    drop(hc);
    let (_hc, load, found) = open(tmp.path());
    assert_eq!((load.files, load.chunks), (1, 51));
    assert!(load.damage.is_none());
    assert_eq!(
        found.iter().map(|c| c.r).collect::<Vec<_>>(),
        refs.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert_eq!(load.max_series_ref, 51);
}

#[test]
fn a_reopened_directory_gets_new_chunks_in_a_new_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (hc, _, _) = open(tmp.path());
    let (a, b, d) = chunk(10, 1);
    let r1 = hc.write(1, a, b, &d).unwrap();
    drop(hc);
    let (hc, _, _) = open(tmp.path());
    let (a, b, d) = chunk(10, 2);
    let r2 = hc.write(1, a, b, &d).unwrap();
    assert_eq!((r1.file(), r2.file()), (1, 2));
    assert_eq!(r2.offset() as usize, FILE_HEADER_SIZE);
}

#[test]
fn truncation_deletes_files_below_the_oldest_referenced_one_but_never_the_current() {
    let tmp = tempfile::tempdir().unwrap();
    let (hc, _, _) = open(tmp.path());
    let mut refs = Vec::new();
    for s in 1..=4u64 {
        let (a, b, d) = chunk(10, s as i64);
        refs.push(hc.write(s, a, b, &d).unwrap());
        // Truncation makes the next chunk start a new file.
        assert_eq!(hc.truncate(0).unwrap(), 0);
    }
    assert_eq!(hc.file_numbers(), vec![1, 2, 3, 4]);
    let held = hc.chunk(refs[0]);
    assert_eq!(hc.truncate(3).unwrap(), 2);
    assert_eq!(hc.file_numbers(), vec![3, 4]);
    assert!(!tmp.path().join(DIR_NAME).join("000001").exists());
    // A reader holding a chunk of a deleted file still reads it.
    assert_eq!(held.bytes().unwrap(), &chunk(10, 1).2[..]);
    assert_eq!(hc.truncate(u32::MAX).unwrap(), 1);
    assert_eq!(hc.file_numbers(), vec![4]);
    assert_eq!(bytes_of(&hc, refs[3]), chunk(10, 4).2);
}

#[test]
fn a_torn_tail_is_cut_off_at_the_first_bad_chunk_and_later_writes_follow_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (hc, _, _) = open(tmp.path());
    let mut sizes = Vec::new();
    for s in 1..=10u64 {
        let (a, b, d) = chunk(25, s as i64);
        sizes.push(framed_size(d.len()));
        hc.write(s, a, b, &d).unwrap();
    }
    hc.sync().unwrap();
    drop(hc);
    let path = tmp.path().join(DIR_NAME).join("000001");
    let full = std::fs::read(&path).unwrap();
    let keep = FILE_HEADER_SIZE + sizes[..7].iter().sum::<usize>();
    std::fs::write(&path, &full[..keep + sizes[7] / 2]).unwrap();
    let (_hc, load, found) = open(tmp.path());
    assert_eq!(found.len(), 7);
    let (p, off, _) = load.damage.unwrap();
    assert_eq!((p, off), (path.clone(), keep as u64));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), keep as u64);
}

#[test]
fn damage_in_an_older_file_drops_it_and_every_later_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (hc, _, _) = open(tmp.path());
    for s in 1..=3u64 {
        let (a, b, d) = chunk(25, s as i64);
        hc.write(s, a, b, &d).unwrap();
        hc.truncate(0).unwrap();
    }
    hc.sync().unwrap();
    drop(hc);
    let dir = tmp.path().join(DIR_NAME);
    let mut b = std::fs::read(dir.join("000002")).unwrap();
    b[FILE_HEADER_SIZE + 30] ^= 0x10;
    std::fs::write(dir.join("000002"), b).unwrap();
    let (hc, load, found) = open(tmp.path());
    assert_eq!(found.len(), 1);
    let (p, off, reason) = load.damage.unwrap();
    assert_eq!((p, off), (dir.join("000002"), FILE_HEADER_SIZE as u64));
    assert!(reason.contains("checksum"), "{reason}");
    assert!(!dir.join("000002").exists() && !dir.join("000003").exists());
    // Numbering goes on after the last file kept, so the files stay contiguous for Prometheus.
    let (a, b, d) = chunk(5, 9);
    assert_eq!(hc.write(9, a, b, &d).unwrap().file(), 2);
}

#[test]
fn an_empty_last_file_left_by_a_crash_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let (hc, _, _) = open(tmp.path());
    let (a, b, d) = chunk(5, 1);
    hc.write(1, a, b, &d).unwrap();
    drop(hc);
    let dir = tmp.path().join(DIR_NAME);
    std::fs::write(dir.join("000002"), b"").unwrap();
    let (_hc, load, found) = open(tmp.path());
    assert_eq!((load.files, found.len()), (1, 1));
    assert!(load.damage.is_none());
    assert!(!dir.join("000002").exists());
}

#[test]
fn a_chunk_out_of_time_order_for_its_series_counts_as_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(DIR_NAME);
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b, d) = chunk(10, 5);
    let (a2, b2, d2) = chunk(10, 3);
    std::fs::write(
        dir.join("000001"),
        file_with(&[
            (7, a, b, d.clone()),
            (8, a2, b2, d2.clone()),
            (7, a2, b2, d2.clone()),
        ]),
    )
    .unwrap();
    let (_hc, load, found) = open(tmp.path());
    assert_eq!(found.len(), 2);
    let (_, off, reason) = load.damage.unwrap();
    assert_eq!(
        off as usize,
        FILE_HEADER_SIZE + framed_size(d.len()) + framed_size(d2.len())
    );
    assert!(reason.contains("out of sequence"), "{reason}");
}
