use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::chunkenc::ENCODING_XOR;
use crate::chunks::{ChunkReader, ChunkWriter};

fn mem_chunks(samples: &[(i64, f64)], per_chunk: usize) -> Vec<SeriesChunk> {
    samples
        .chunks(per_chunk)
        .map(|run| {
            let mut app = XorAppender::new();
            for &(t, v) in run {
                app.append(t, v);
            }
            SeriesChunk {
                min_t: run[0].0,
                max_t: run[run.len() - 1].0,
                data: ChunkData::Mem(Arc::from(app.into_bytes())),
            }
        })
        .collect()
}

fn series(name: &str, chunks: Vec<SeriesChunk>) -> Series {
    Series::new(
        Labels::from_pairs([("__name__", name)]).unwrap(),
        chunks,
        i64::MIN,
        i64::MAX,
    )
}

fn all_samples(chunks: Vec<SeriesChunk>) -> Vec<(i64, f64)> {
    series("x", chunks).samples().unwrap()
}

#[test]
fn disjoint_sources_keep_their_chunks_without_reencoding() {
    let a = mem_chunks(&[(1, 1.0), (2, 2.0), (3, 3.0)], 2);
    let b = mem_chunks(&[(10, 10.0), (11, 11.0)], 2);
    let ptrs: Vec<*const u8> = a
        .iter()
        .chain(&b)
        .map(|c| c.data.bytes().unwrap().as_ptr())
        .collect();
    // b first in priority order, a later: the output is still in time order.
    let merged = merge_chunks(vec![b, a]);
    let got: Vec<*const u8> = merged
        .iter()
        .map(|c| c.data.bytes().unwrap().as_ptr())
        .collect();
    assert_eq!(got, vec![ptrs[0], ptrs[1], ptrs[2]]);
    assert_eq!(
        all_samples(merged),
        vec![(1, 1.0), (2, 2.0), (3, 3.0), (10, 10.0), (11, 11.0)]
    );
}

#[test]
fn overlapping_sources_merge_with_the_later_source_winning_equal_timestamps() {
    let block = mem_chunks(&[(1, 1.0), (3, 3.0), (5, 5.0), (7, 7.0)], 120);
    let head = mem_chunks(&[(3, 30.0), (4, 40.0), (7, 70.0), (9, 90.0)], 120);
    let merged = merge_chunks(vec![block, head]);
    assert_eq!(
        all_samples(merged),
        vec![
            (1, 1.0),
            (3, 30.0),
            (4, 40.0),
            (5, 5.0),
            (7, 70.0),
            (9, 90.0)
        ]
    );
}

#[test]
fn a_merged_group_is_reencoded_into_chunks_of_at_most_120_samples() {
    let a: Vec<(i64, f64)> = (0..300).map(|t| (t * 2, t as f64)).collect();
    let b: Vec<(i64, f64)> = (0..300).map(|t| (t * 2 + 1, -(t as f64))).collect();
    let merged = merge_chunks(vec![mem_chunks(&a, 120), mem_chunks(&b, 120)]);
    let s = series("x", merged);
    let spans = s.chunk_spans();
    assert_eq!(spans.len(), 5);
    assert!(spans.iter().all(|&(_, _, n)| n <= 120));
    assert!(spans.windows(2).all(|w| w[0].1 < w[1].0));
    let got = s.samples().unwrap();
    assert_eq!(got.len(), 600);
    assert!(got.windows(2).all(|w| w[0].0 + 1 == w[1].0));
}

#[test]
fn an_unreadable_chunk_in_an_overlap_fails_decoding_instead_of_dropping_samples() {
    let good = mem_chunks(&[(1, 1.0), (5, 5.0)], 120);
    let bad = vec![SeriesChunk {
        min_t: 2,
        max_t: 4,
        data: ChunkData::Failed(Arc::new(ChunkFailure {
            path: "blk/chunks/000001".into(),
            offset: 77,
            reason: "checksum mismatch".into(),
        })),
    }];
    let s = series("x", merge_chunks(vec![good, bad]));
    match s.samples() {
        Err(Error::CorruptFile { path, offset, .. }) => {
            assert_eq!(path, std::path::PathBuf::from("blk/chunks/000001"));
            assert_eq!(offset, 77);
        }
        other => panic!("expected the chunk's error, got {other:?}"),
    }
    let mut it = s.iter();
    assert_eq!(it.by_ref().count(), 0);
    assert!(it.take_err().is_some());
    // Remote read's raw chunks leave the unreadable one out rather than sending garbage.
    assert_eq!(s.chunks().count(), 0);
}

#[test]
fn series_lists_merge_by_label_set_in_label_order() {
    let older = vec![
        series("a", mem_chunks(&[(1, 1.0)], 120)),
        series("c", mem_chunks(&[(1, 1.0)], 120)),
    ];
    let newer = vec![
        series("b", mem_chunks(&[(2, 2.0)], 120)),
        series("c", mem_chunks(&[(1, 9.0), (2, 2.0)], 120)),
    ];
    let merged = merge_series_lists(vec![older, newer], i64::MIN, i64::MAX);
    let names: Vec<&str> = merged
        .iter()
        .map(|s| s.labels().metric_name().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "b", "c"]);
    assert_eq!(merged[2].samples().unwrap(), vec![(1, 9.0), (2, 2.0)]);
}

#[test]
fn mapped_block_chunks_read_like_heap_chunks_and_report_bad_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let samples: Vec<(i64, f64)> = (0..250).map(|i| (i * 15_000, i as f64 * 0.5)).collect();
    let mem = mem_chunks(&samples, 120);
    let mut w = ChunkWriter::create(dir.path()).unwrap();
    let mut refs = Vec::new();
    for c in &mem {
        refs.push(
            w.write_chunk(ENCODING_XOR, c.data.bytes().unwrap())
                .unwrap(),
        );
    }
    w.finish().unwrap();
    let reader = Arc::new(ChunkReader::open(dir.path()).unwrap());
    let mapped: Vec<SeriesChunk> = refs
        .iter()
        .zip(&mem)
        .map(|(r, c)| {
            let (enc, start, len) = reader.chunk_position(*r).unwrap();
            assert_eq!(enc, ENCODING_XOR);
            SeriesChunk {
                min_t: c.min_t,
                max_t: c.max_t,
                data: ChunkData::Mapped {
                    reader: reader.clone(),
                    segment: r.segment(),
                    start,
                    len,
                },
            }
        })
        .collect();
    let s = Series::new(
        Labels::from_pairs([("a", "b")]).unwrap(),
        mapped.clone(),
        100_000,
        3_000_000,
    );
    let want: Vec<(i64, f64)> = samples
        .iter()
        .copied()
        .filter(|&(t, _)| (100_000..=3_000_000).contains(&t))
        .collect();
    assert_eq!(s.samples().unwrap(), want);
    assert_eq!(s.iter().collect::<Vec<_>>(), want);
    let raw: Vec<&[u8]> = s.chunks().map(|c| c.2).collect();
    let heap: Vec<&[u8]> = mem.iter().map(|c| c.data.bytes().unwrap()).collect();
    assert_eq!(raw, heap);

    let beyond = ChunkData::Mapped {
        reader,
        segment: 0,
        start: u32::MAX - 2,
        len: 10,
    };
    assert!(matches!(beyond.bytes(), Err(Error::CorruptFile { .. })));
}

/// Sorted, de-duplicated sample runs with timestamps in a small range so that sources overlap often.
fn source() -> impl Strategy<Value = Vec<(i64, f64)>> {
    prop::collection::btree_map(0i64..400, -1000i32..1000, 0..150)
        .prop_map(|m| m.into_iter().map(|(t, v)| (t, f64::from(v))).collect())
}

proptest! {
    #[test]
    fn merging_equals_a_map_where_later_sources_overwrite(
        sources in prop::collection::vec((source(), 1usize..50), 1..5),
        mint in 0i64..200,
        len in 0i64..400,
    ) {
        let mut want = BTreeMap::new();
        let mut lists = Vec::new();
        for (samples, per_chunk) in &sources {
            for &(t, v) in samples {
                want.insert(t, v);
            }
            lists.push(mem_chunks(samples, *per_chunk));
        }
        let maxt = mint + len;
        let merged = merge_chunks(lists);
        prop_assert!(merged.windows(2).all(|w| w[0].max_t < w[1].min_t));
        let s = Series::new(Labels::from_pairs([("a", "b")]).unwrap(), merged, mint, maxt);
        let want: Vec<(i64, f64)> = want.range(mint..=maxt).map(|(&t, &v)| (t, v)).collect();
        prop_assert_eq!(s.samples().unwrap(), want.clone());
        prop_assert_eq!(s.iter().collect::<Vec<_>>(), want);
    }
}
