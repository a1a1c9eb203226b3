//! Golden test against Prometheus itself: Debian's `promtool tsdb create-blocks-from openmetrics` writes
//! a block from a known input; every XOR chunk in its chunk segment file must decode with Ember's
//! iterator to samples of the input, Ember's encoder must produce the identical bytes from those samples,
//! and Ember's head must cut chunks at the same places for the same input (except where Prometheus 2.42
//! predates the 1 KiB chunk cap of current Prometheus; checked separately). Re-encoding: Prometheus 2.x, which Debian ships, adds one empty trailing byte to a chunk whose bits end on a
//! byte boundary after a whole-byte write; that single difference is allowed and counted). Needs `promtool` (Debian package `prometheus`, installed by `.ci/run`); without it the test
//! fails rather than passing silently, unless EMBER_SKIP_PEER_TESTS=1 is set (then it says it skipped).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use ember::chunkenc::{XorAppender, XorIterator};

const MAGIC_CHUNKS: u32 = 0x85BD_40DD;

fn promtool_available() -> bool {
    if Command::new("promtool").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("EMBER_SKIP_PEER_TESTS").as_deref() == Ok("1"),
        "promtool not found: install Debian's `prometheus` package (or set EMBER_SKIP_PEER_TESTS=1 to skip)"
    );
    eprintln!("SKIPPED: promtool not installed");
    false
}

/// Series of varied shapes: constant, counter with jittered scrapes, 2-decimal gauge, special values,
/// a series with a gap, and one with irregular wide timestamp steps. Returns the OpenMetrics text and the
/// samples per series name.
fn input() -> (String, HashMap<String, Vec<(i64, f64)>>) {
    let base: i64 = 1_700_000_000_000;
    let mut series: Vec<(String, Vec<(i64, f64)>)> = Vec::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let steps = 700; // ~3 h at 15 s: several chunks and two block ranges
    let mut add = |name: &str, f: &mut dyn FnMut(usize) -> Option<(i64, f64)>| {
        let v: Vec<(i64, f64)> = (0..steps).filter_map(&mut *f).collect();
        series.push((name.to_string(), v));
    };
    add("constant", &mut |k| Some((base + k as i64 * 15_000, 1.0)));
    let mut c = 0.0;
    add("counter", &mut |k| {
        c += (rnd() % 5000) as f64;
        let jitter = if rnd() % 10 == 0 {
            (rnd() % 5) as i64 + 1
        } else {
            0
        };
        Some((base + k as i64 * 15_000 + jitter, c))
    });
    let mut g: i64 = 5_000;
    add("gauge", &mut |k| {
        g += (rnd() % 200) as i64 - 100;
        Some((base + k as i64 * 15_000, g as f64 / 100.0))
    });
    add("special", &mut |k| {
        let v = match k % 7 {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => 1e300,
            4 => -2.5e-300,
            _ => k as f64,
        };
        Some((base + k as i64 * 15_000, v))
    });
    add("gappy", &mut |k| {
        (k % 50 < 30).then(|| (base + k as i64 * 15_000, (k / 10) as f64))
    });
    let mut t = base;
    add("irregular", &mut |k| {
        t += [1, 999, 15_000, 65_000, 1_000_000][k % 5];
        Some((t, k as f64 * 0.1))
    });
    let mut om = String::new();
    for (name, samples) in &series {
        for &(t, v) in samples {
            let vs = if v.is_nan() {
                "NaN".to_string()
            } else if v.is_infinite() {
                if v > 0.0 {
                    "+Inf".into()
                } else {
                    "-Inf".into()
                }
            } else {
                format!("{v:?}")
            };
            // Seconds with millisecond precision; promtool truncates `ts * 1000`, so a trailing guard digit
            // keeps float error from moving a sample by a millisecond.
            writeln!(
                om,
                "{name}{{job=\"golden\"}} {vs} {}.{:03}4",
                t.div_euclid(1000),
                t.rem_euclid(1000)
            )
            .unwrap();
        }
    }
    om.push_str("# EOF\n");
    (om, series.into_iter().collect())
}

/// The chunks of one Prometheus chunk segment file: magic, version, 3 padding bytes, then per chunk
/// uvarint(data length), encoding byte, data, CRC32C of encoding byte and data.
fn read_segment(path: &Path) -> Vec<(u8, Vec<u8>)> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        u32::from_be_bytes(b[0..4].try_into().unwrap()),
        MAGIC_CHUNKS,
        "{}",
        path.display()
    );
    assert_eq!(b[4], 1, "chunk format version");
    let mut pos = 8;
    let mut out = Vec::new();
    while pos < b.len() {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let byte = b[pos];
            pos += 1;
            len |= ((byte & 0x7f) as usize) << shift;
            if byte < 0x80 {
                break;
            }
            shift += 7;
        }
        let enc = b[pos];
        let data = b[pos + 1..pos + 1 + len].to_vec();
        let crc = u32::from_be_bytes(b[pos + 1 + len..pos + 5 + len].try_into().unwrap());
        assert_eq!(
            crc32c::crc32c(&b[pos..pos + 1 + len]),
            crc,
            "chunk CRC at offset {pos}"
        );
        pos += 5 + len;
        out.push((enc, data));
    }
    out
}

/// Sample identity for the input check: Go's text parser yields its own NaN payload, so NaN is NaN here
/// (the re-encoding check below stays bit-exact, payload included).
fn key(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

#[test]
fn chunks_written_by_promtool_decode_and_reencode_identically() {
    if !promtool_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (om, series) = input();
    let input_path = dir.path().join("in.om");
    std::fs::write(&input_path, om).unwrap();
    let out = dir.path().join("blocks");
    std::fs::create_dir(&out).unwrap();
    let res = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input_path)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );

    // Every sample of the input, to check decoded chunks against (t -> values at t, as bits).
    let mut expected: HashMap<(i64, u64), usize> = HashMap::new();
    for samples in series.values() {
        for &(t, v) in samples {
            *expected.entry((t, key(v))).or_default() += 1;
        }
    }
    let total_expected: usize = expected.values().sum();
    let (mut chunks, mut decoded, mut exact, mut legacy_trailing_byte) = (0, 0, 0, 0);
    let mut theirs_spans: Vec<(i64, i64, u16)> = Vec::new();
    let mut special_chunk_bytes = Vec::new();
    for block in std::fs::read_dir(&out).unwrap() {
        let block = block.unwrap().path();
        for seg in std::fs::read_dir(block.join("chunks")).unwrap() {
            for (enc, data) in read_segment(&seg.unwrap().path()) {
                assert_eq!(enc, 1, "only XOR chunks expected");
                let samples: Vec<(i64, f64)> = XorIterator::new(&data).unwrap().collect();
                // The "special" series (NaN, ±Inf, huge values: ~9 bytes a sample) is the only one whose
                // chunks reach the 1,024-byte cap; Prometheus 2.42 predates that cap, so its boundaries are
                // compared separately below.
                if samples.iter().any(|s| !s.1.is_finite()) {
                    special_chunk_bytes.push(data.len());
                } else {
                    theirs_spans.push((
                        samples[0].0,
                        samples[samples.len() - 1].0,
                        samples.len() as u16,
                    ));
                }
                assert_eq!(
                    samples.len(),
                    XorIterator::new(&data).unwrap().num_samples() as usize
                );
                let mut app = XorAppender::new();
                for &(t, v) in &samples {
                    app.append(t, v);
                    let n = expected
                        .get_mut(&(t, key(v)))
                        .unwrap_or_else(|| panic!("sample ({t}, {v}) not in input"));
                    *n = n
                        .checked_sub(1)
                        .expect("sample decoded more often than written");
                }
                let ours = app.into_bytes();
                if ours == data {
                    exact += 1;
                } else {
                    // Prometheus 2.x's bit stream appended a byte after every whole-byte write, so a chunk
                    // whose last write ended on a byte boundary carries one empty trailing byte. Prometheus
                    // 3.x (and Ember) write none; readers of both ignore it.
                    assert!(
                        data.len() == ours.len() + 1
                            && data.last() == Some(&0)
                            && data[..ours.len()] == ours[..],
                        "re-encoding chunk {chunks} gave other bytes:\n ours {ours:?}\n theirs {data:?}"
                    );
                    legacy_trailing_byte += 1;
                }
                chunks += 1;
                decoded += samples.len();
            }
        }
    }
    assert_eq!(
        decoded, total_expected,
        "every input sample is in exactly one chunk"
    );
    assert!(
        chunks >= 6 * 6,
        "expected several chunks per series, got {chunks}"
    );
    // Chunk boundaries: the same samples appended through Ember's head must be cut where Prometheus cut.
    let mut ours_spans = Vec::new();
    let mut ours_special = Vec::new();
    for (name, samples) in &series {
        // A database per series, so one series' newest sample never puts another's behind the appendable
        // window (promtool writes each 2 h range separately).
        let db_dir = tempfile::tempdir().unwrap();
        let db = ember::Db::open(db_dir.path(), ember::Options::default()).unwrap();
        let l =
            ember::Labels::from_pairs([("__name__", name.as_str()), ("job", "golden")]).unwrap();
        let mut app = db.appender();
        for &(t, v) in samples {
            app.append(&l, t, v).unwrap();
        }
        app.commit().unwrap();
        for s in db.querier(i64::MIN, i64::MAX).select(&[]) {
            if name == "special" {
                ours_special.extend(s.chunk_spans());
            } else {
                ours_spans.extend(s.chunk_spans());
            }
        }
    }
    theirs_spans.sort_unstable();
    ours_spans.sort_unstable();
    assert_eq!(
        ours_spans, theirs_spans,
        "chunk boundaries differ from Prometheus'"
    );
    eprintln!(
        "{chunks} chunks: {exact} byte-identical, {legacy_trailing_byte} identical but for 2.x's trailing empty byte"
    );
    assert!(
        exact * 2 > chunks,
        "most chunks must match byte for byte ({exact} of {chunks})"
    );
}
