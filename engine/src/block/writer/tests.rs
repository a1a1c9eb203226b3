use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use super::*;
use crate::chunkenc::XorAppender;

fn chunk(samples: &[(i64, f64)]) -> SeriesChunk {
    let mut app = XorAppender::new();
    for &(t, v) in samples {
        app.append(t, v);
    }
    SeriesChunk {
        min_t: samples[0].0,
        max_t: samples[samples.len() - 1].0,
        data: ChunkData::Mem(Arc::from(app.into_bytes())),
    }
}

/// `promtool tsdb dump` output as label text -> samples.
pub(crate) fn promtool_dump(dir: &Path) -> Option<BTreeMap<String, Vec<(i64, f64)>>> {
    // promtool 2.42 opens the directory as a database and requires a `wal/`, even an empty one.
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    let out = match Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(dir)
        .output()
    {
        Ok(o) => o,
        Err(_) if std::env::var("EMBER_SKIP_PEER_TESTS").as_deref() == Ok("1") => return None,
        Err(e) => panic!("promtool not runnable ({e}); set EMBER_SKIP_PEER_TESTS=1 to skip"),
    };
    assert!(
        out.status.success(),
        "promtool tsdb dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let close = line.rfind('}').expect("labels in braces");
        let labels = line[..=close].to_string();
        let mut rest = line[close + 1..].split_whitespace();
        let v: f64 = rest.next().unwrap().parse().unwrap();
        let t: i64 = rest.next().unwrap().parse().unwrap();
        got.entry(labels).or_default().push((t, v));
    }
    Some(got)
}

#[test]
fn a_written_block_dumps_through_promtool_to_exactly_its_samples_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut meta = BlockMeta::new(1_000, 7_201_000);
    let mut series = Vec::new();
    let mut want = BTreeMap::new();
    for s in 0..3 {
        let labels = Labels::from_pairs([("__name__", "m"), ("s", &*format!("v{s}"))]).unwrap();
        // One chunk reaches below the block's start, one past its end: both must be cut.
        let samples: Vec<(i64, f64)> = (0..400)
            .map(|i| (i * 20_000, (i * s) as f64 * 0.25))
            .collect();
        let chunks = samples.chunks(120).map(chunk).collect();
        want.insert(
            format!("{{__name__=\"m\", s=\"v{s}\"}}"),
            samples
                .iter()
                .copied()
                .filter(|&(t, _)| (1_000..7_201_000).contains(&t))
                .collect::<Vec<_>>(),
        );
        series.push(SeriesToWrite { labels, chunks });
    }
    let path = write_block(dir.path(), &mut meta, series, false)
        .unwrap()
        .unwrap();
    assert_eq!(path, dir.path().join(meta.ulid.to_string()));
    assert!(
        !dir.path()
            .join(format!("{}{TMP_FOR_CREATION}", meta.ulid))
            .exists()
    );
    let total: usize = want.values().map(Vec::len).sum();
    assert_eq!(meta.stats.num_samples, total as u64);
    assert_eq!(meta.stats.num_series, 3);
    assert_eq!(BlockMeta::read_from_dir(&path).unwrap(), meta);
    let Some(got) = promtool_dump(dir.path()) else {
        return;
    };
    assert_eq!(got, want);
}

#[test]
fn a_range_without_samples_writes_no_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut meta = BlockMeta::new(10_000, 20_000);
    let series = vec![SeriesToWrite {
        labels: Labels::from_pairs([("a", "b")]).unwrap(),
        chunks: vec![chunk(&[(1, 1.0), (2, 2.0)])],
    }];
    assert!(
        write_block(dir.path(), &mut meta, series, false)
            .unwrap()
            .is_none()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn an_unreadable_chunk_fails_the_write_and_leaves_no_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut meta = BlockMeta::new(0, 100);
    let series = vec![
        SeriesToWrite {
            labels: Labels::from_pairs([("a", "1")]).unwrap(),
            chunks: vec![chunk(&[(1, 1.0)])],
        },
        SeriesToWrite {
            labels: Labels::from_pairs([("a", "2")]).unwrap(),
            chunks: vec![SeriesChunk {
                min_t: 5,
                max_t: 6,
                data: ChunkData::Failed(Arc::new(crate::read::ChunkFailure {
                    path: "x/chunks/000001".into(),
                    offset: 9,
                    reason: "bad".into(),
                })),
            }],
        },
    ];
    let err = write_block(dir.path(), &mut meta, series, false).unwrap_err();
    assert!(matches!(err, Error::CorruptFile { offset: 9, .. }), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn rewriting_a_promtool_block_reproduces_its_index_and_chunk_files_byte_for_byte() {
    use crate::block::Block;
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.om");
    let mut text = String::from("# TYPE m gauge\n");
    for s in 0..5 {
        for i in 0..700i64 {
            let v = ((i * 7919 + s * 104_729) % 10_007) as f64 / 16.0;
            text.push_str(&format!(
                "m{{job=\"j{}\",s=\"{s}\"}} {v} {}\n",
                s % 2,
                1_700_000_000 + i * 15
            ));
        }
    }
    text.push_str("# EOF\n");
    std::fs::write(&input, text).unwrap();
    let theirs = tmp.path().join("theirs");
    let out = match Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&theirs)
        .output()
    {
        Ok(o) => o,
        Err(_) if std::env::var("EMBER_SKIP_PEER_TESTS").as_deref() == Ok("1") => return,
        Err(e) => panic!("promtool not runnable ({e}); set EMBER_SKIP_PEER_TESTS=1 to skip"),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = tmp.path().join("ours");
    std::fs::create_dir_all(&ours).unwrap();
    let mut compared = 0;
    for e in std::fs::read_dir(&theirs).unwrap() {
        let dir = e.unwrap().path();
        let block = Block::open(&dir).unwrap();
        let m = block.meta().clone();
        let series = block
            .select(&[], m.min_time, m.max_time - 1)
            .unwrap()
            .into_iter()
            .map(|s| {
                let (labels, chunks) = s.into_parts();
                SeriesToWrite { labels, chunks }
            })
            .collect();
        let mut meta = BlockMeta::new(m.min_time, m.max_time);
        let path = write_block(&ours, &mut meta, series, false)
            .unwrap()
            .unwrap();
        // Prometheus since 2.50 also counts float samples apart, as Ember does; 2.42 did not.
        assert_eq!(meta.stats.num_float_samples, meta.stats.num_samples);
        meta.stats.num_float_samples = m.stats.num_float_samples;
        assert_eq!(meta.stats, m.stats);
        for f in ["chunks/000001", "index"] {
            assert!(
                std::fs::read(dir.join(f)).unwrap() == std::fs::read(path.join(f)).unwrap(),
                "{f} of {} differs",
                dir.display()
            );
        }
        compared += 1;
    }
    assert!(compared >= 2);
}

/// Samples of one series: strictly increasing timestamps (regular, jittered and irregular steps) inside
/// `[0, 2 h)`, values of every kind (decimals, raw bits, NaN payloads, stale markers, infinities, -0.0).
fn arb_block_series() -> impl proptest::strategy::Strategy<Value = Vec<(i64, u64)>> {
    use proptest::prelude::*;
    prop::collection::vec(
        (
            prop_oneof![6 => Just(15_000i64), 3 => 14_990i64..15_010, 1 => 1i64..60_000],
            prop_oneof![3 => Just(None), 2 => crate::chunks::tests::arb_value().prop_map(Some)],
        ),
        1..400,
    )
    .prop_map(|steps| {
        let (mut t, mut v) = (0i64, 0u64);
        steps
            .into_iter()
            .map(|(dt, nv)| {
                t += dt;
                v = nv.unwrap_or(v);
                (t, v)
            })
            .collect()
    })
}

fn series_to_write(all: &[Vec<(i64, u64)>]) -> Vec<SeriesToWrite> {
    all.iter()
        .enumerate()
        .map(|(i, samples)| {
            let floats: Vec<(i64, f64)> = samples
                .iter()
                .map(|&(t, v)| (t, f64::from_bits(v)))
                .collect();
            SeriesToWrite {
                labels: Labels::from_pairs([("__name__", "m"), ("s", &*format!("{i:04}"))])
                    .unwrap(),
                chunks: floats.chunks(120).map(chunk).collect(),
            }
        })
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// A block written with the zstd tier has the same index bytes as the plain block, every chunk
    /// reads back as the plain block's bytes at the same reference, and every sample comes back with
    /// the same bits (NaN payloads and stale markers included).
    #[test]
    fn a_block_written_with_the_zstd_tier_reads_back_every_sample_bit_exact(
        all in proptest::collection::vec(arb_block_series(), 1..30),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let maxt = all.iter().filter_map(|s| s.last()).map(|s| s.0).max().unwrap();
        let mut pm = BlockMeta::new(0, maxt + 1);
        let plain = write_block(&dir.path().join("plain"), &mut pm, series_to_write(&all), false)
            .unwrap()
            .unwrap();
        let mut zm = BlockMeta::new(0, maxt + 1);
        let zstd = write_block(&dir.path().join("zstd"), &mut zm, series_to_write(&all), true)
            .unwrap()
            .unwrap();
        proptest::prop_assert_eq!(pm.stats, zm.stats);
        proptest::prop_assert!(
            std::fs::read(plain.join("index")).unwrap() == std::fs::read(zstd.join("index")).unwrap()
        );
        let prd = crate::chunks::ChunkReader::open(plain.join("chunks")).unwrap();
        let zrd = crate::chunks::ChunkReader::open(zstd.join("chunks")).unwrap();
        proptest::prop_assert!(zrd.zstd_segment(0).is_some());
        for item in prd.iter() {
            let (r, c) = item.unwrap();
            let z = zrd.read(r).unwrap();
            proptest::prop_assert_eq!((c.encoding, c.data), (z.encoding, z.data.as_ref()));
        }
        let block = crate::block::Block::open(&zstd).unwrap();
        let got = block.select(&[], 0, maxt).unwrap();
        proptest::prop_assert_eq!(got.len(), all.len());
        for (s, want) in got.iter().zip(&all) {
            let samples: Vec<(i64, u64)> = s
                .samples()
                .unwrap()
                .into_iter()
                .map(|(t, v)| (t, v.to_bits()))
                .collect();
            proptest::prop_assert_eq!(&samples, want);
        }
    }
}
