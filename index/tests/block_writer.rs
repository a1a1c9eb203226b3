//! The block index writer's output, checked byte by byte against a file laid
//! out by hand from the format description (docs/format/index.md), and its
//! refusal of out-of-order input.

use ember_index::block::{ChunkMeta, IndexWriter};
use ember_index::{Error, Labels};

fn crc(b: &[u8]) -> [u8; 4] {
    crc32c::crc32c(b).to_be_bytes()
}

/// `len <BE32> | content | CRC32(content)`.
fn framed(content: &[u8]) -> Vec<u8> {
    let mut v = (content.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(content);
    v.extend_from_slice(&crc(content));
    v
}

#[test]
fn one_series_index_matches_the_hand_built_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let mut w = IndexWriter::create(&path).unwrap();
    w.add_symbol("a").unwrap();
    w.add_symbol("b").unwrap();
    let chunk = ChunkMeta {
        min_time: 1000,
        max_time: 1500,
        chunk_ref: 8,
    };
    w.add_series(&Labels::from_pairs([("a", "b")]).unwrap(), &[chunk])
        .unwrap();
    w.close().unwrap();
    let got = std::fs::read(&path).unwrap();
    assert!(
        !dir.path().join("index_tmp_p").exists(),
        "temporary postings file left behind"
    );

    let mut want = vec![0xBA, 0xAA, 0xD7, 0x00, 0x02];
    // Symbol table at 5: count 2, "a", "b".
    want.extend(framed(&[0, 0, 0, 2, 1, b'a', 1, b'b']));
    assert_eq!(want.len(), 21);
    // Series at 32 (16-aligned, reference 2): 1 label (sym 0 = sym 1), 1 chunk:
    // mint 1000 zigzag = 2000 = D0 0F, maxt-mint 500 = F4 03, ref 8.
    want.resize(32, 0);
    let series = [1, 0, 1, 1, 0xD0, 0x0F, 0xF4, 0x03, 8];
    want.push(series.len() as u8);
    want.extend_from_slice(&series);
    want.extend_from_slice(&crc(&series));
    assert_eq!(want.len(), 46);
    // Label index for "a" at 48 (4-aligned): 1 name, 1 entry, value sym 1.
    want.resize(48, 0);
    want.extend(framed(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]));
    assert_eq!(want.len(), 68);
    // Postings at 68: all series [2], then a=b [2].
    want.extend(framed(&[0, 0, 0, 1, 0, 0, 0, 2]));
    want.extend(framed(&[0, 0, 0, 1, 0, 0, 0, 2]));
    assert_eq!(want.len(), 100);
    // Label offset table at 100: one entry, n=1, "a", offset 48.
    want.extend(framed(&[0, 0, 0, 1, 1, 1, b'a', 48]));
    // Postings offset table at 116: ("","") -> 68, ("a","b") -> 84.
    want.extend(framed(&[0, 0, 0, 2, 2, 0, 0, 68, 2, 1, b'a', 1, b'b', 84]));
    assert_eq!(want.len(), 138);
    let mut toc = Vec::new();
    // The TOC's series offset is where the symbol table ended, before the
    // alignment padding, as Prometheus records it.
    for off in [5u64, 21, 46, 100, 68, 116] {
        toc.extend_from_slice(&off.to_be_bytes());
    }
    want.extend_from_slice(&toc);
    want.extend_from_slice(&crc(&toc));

    assert_eq!(got, want);
}

#[test]
fn empty_index_has_all_sections_and_an_empty_all_postings_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    IndexWriter::create(&path).unwrap().close().unwrap();
    let got = std::fs::read(&path).unwrap();
    let mut want = vec![0xBA, 0xAA, 0xD7, 0x00, 0x02];
    want.extend(framed(&[0, 0, 0, 0]));
    // Series section empty at 17; postings 4-aligned at 20.
    assert_eq!(want.len(), 17);
    want.resize(20, 0);
    want.extend(framed(&[0, 0, 0, 0]));
    want.extend(framed(&[0, 0, 0, 0]));
    want.extend(framed(&[0, 0, 0, 1, 2, 0, 0, 20]));
    let mut toc = Vec::new();
    for off in [5u64, 17, 17, 32, 17, 44] {
        toc.extend_from_slice(&off.to_be_bytes());
    }
    want.extend_from_slice(&toc);
    want.extend_from_slice(&crc(&toc));
    assert_eq!(got, want);
}

fn invalid(r: Result<(), Error>) -> String {
    match r {
        Err(Error::InvalidIndexWrite(m)) => m,
        other => panic!("expected InvalidIndexWrite, got {other:?}"),
    }
}

#[test]
fn writer_rejects_out_of_order_and_unknown_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = IndexWriter::create(&dir.path().join("index")).unwrap();
    for s in ["a", "b", "c"] {
        w.add_symbol(s).unwrap();
    }
    assert!(invalid(w.add_symbol("b")).contains("out of order"));
    assert!(invalid(w.add_symbol("c")).contains("out of order"));
    let ab = Labels::from_pairs([("a", "b")]).unwrap();
    let ac = Labels::from_pairs([("a", "c")]).unwrap();
    let c = |min_time, max_time, chunk_ref| ChunkMeta {
        min_time,
        max_time,
        chunk_ref,
    };
    assert!(invalid(w.add_series(&Labels::empty(), &[])).contains("empty"));
    assert!(invalid(w.add_series(&ab, &[c(5, 4, 0)])).contains("below its min time"));
    assert!(
        invalid(w.add_series(&ab, &[c(0, 4, 0), c(4, 5, 1)])).contains("not after the previous")
    );
    assert!(invalid(w.add_series(&ab, &[c(0, 4, 9), c(5, 6, 8)])).contains("reference"));
    w.add_series(&ab, &[c(0, 4, 10)]).unwrap();
    assert!(invalid(w.add_symbol("d")).contains("after the first series"));
    assert!(invalid(w.add_series(&ab, &[])).contains("out of order"));
    // Chunk references may not go backwards across series either.
    assert!(invalid(w.add_series(&ac, &[c(0, 1, 9)])).contains("reference"));
    let unknown = Labels::from_pairs([("b", "zz")]).unwrap();
    assert!(invalid(w.add_series(&unknown, &[])).contains("\"zz\" was not added"));
    w.add_series(&ac, &[c(0, 1, 10)]).unwrap();
    w.close().unwrap();
}
