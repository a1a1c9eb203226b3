use std::collections::BTreeMap;
use std::path::Path;

use super::*;

/// Written by `promtool tsdb create-blocks-from openmetrics` (Prometheus 2.42) for three samples.
const PROMTOOL_META: &str = "{
\t\"ulid\": \"01M898C59D598Z8D2ECH8Y7E02\",
\t\"minTime\": 1700000000000,
\t\"maxTime\": 1700000015001,
\t\"stats\": {
\t\t\"numSamples\": 3,
\t\t\"numSeries\": 2,
\t\t\"numChunks\": 2
\t},
\t\"compaction\": {
\t\t\"level\": 1,
\t\t\"sources\": [
\t\t\t\"01M898C59D598Z8D2ECH8Y7E02\"
\t\t]
\t},
\t\"version\": 1
}";

/// A compacted block as Thanos' sidecar uploads it, with Thanos fields Ember does not model.
const THANOS_META: &str = r#"{
    "ulid": "01HQ3Z1B2C3D4E5F6G7H8J9K0M",
    "minTime": 1000, "maxTime": 7201000,
    "stats": {"numSamples": 10, "numFloatSamples": 10, "numSeries": 1, "numChunks": 1, "numTombstones": 2},
    "compaction": {
        "level": 2,
        "sources": ["01HQ3Z1B2C3D4E5F6G7H8J9K0A", "01HQ3Z1B2C3D4E5F6G7H8J9K0B"],
        "parents": [
            {"ulid": "01HQ3Z1B2C3D4E5F6G7H8J9K0A", "minTime": 1000, "maxTime": 3601000},
            {"ulid": "01HQ3Z1B2C3D4E5F6G7H8J9K0B", "minTime": 3601000, "maxTime": 7201000}
        ],
        "deletable": true, "failed": true, "hints": ["from-out-of-order"]
    },
    "version": 1,
    "thanos": {
        "version": 1,
        "labels": {"cluster": "eu-1", "replica": "a"},
        "downsample": {"resolution": 0},
        "source": "sidecar",
        "segment_files": ["000001"],
        "files": [{"rel_path": "chunks/000001", "size_bytes": 1234}, {"rel_path": "meta.json"}],
        "index_stats": {"series_max_size": 100}
    }
}"#;

fn ulid(s: &str) -> Ulid {
    Ulid::from_string(s).unwrap()
}

#[test]
fn meta_written_by_promtool_parses_and_reserializes_byte_for_byte() {
    let m = BlockMeta::from_json(PROMTOOL_META.as_bytes(), Path::new("meta.json")).unwrap();
    assert_eq!(m.ulid, ulid("01M898C59D598Z8D2ECH8Y7E02"));
    assert_eq!(
        (m.min_time, m.max_time),
        (1_700_000_000_000, 1_700_000_015_001)
    );
    assert_eq!(
        m.stats,
        BlockStats {
            num_samples: 3,
            num_series: 2,
            num_chunks: 2,
            ..BlockStats::default()
        }
    );
    assert_eq!(m.compaction.level, 1);
    assert_eq!(m.compaction.sources, vec![m.ulid]);
    assert_eq!(m.thanos, None);
    // Same key order, tab indentation and omitted zero counts as Prometheus' MarshalIndent.
    assert_eq!(String::from_utf8(m.to_json()).unwrap(), PROMTOOL_META);
}

#[test]
fn thanos_meta_parses_and_keeps_fields_ember_does_not_model() {
    let m = BlockMeta::from_json(THANOS_META.as_bytes(), Path::new("meta.json")).unwrap();
    assert_eq!(m.stats.num_tombstones, 2);
    assert_eq!(m.stats.num_float_samples, 10);
    let c = &m.compaction;
    assert_eq!(c.level, 2);
    assert!(c.deletable && c.failed);
    assert_eq!(c.hints, vec!["from-out-of-order"]);
    assert_eq!(c.parents[1].min_time, 3_601_000);
    let t = m.thanos.as_ref().unwrap();
    assert_eq!(t.labels.get("cluster").map(String::as_str), Some("eu-1"));
    assert_eq!((t.downsample.resolution, t.source.as_str()), (0, "sidecar"));
    assert_eq!(
        t.extra.keys().collect::<Vec<_>>(),
        ["files", "index_stats", "segment_files"]
    );

    let again = BlockMeta::from_json(&m.to_json(), Path::new("meta.json")).unwrap();
    assert_eq!(again, m);
}

#[test]
fn new_meta_is_level_one_with_itself_as_source_and_thanos_section_is_optional() {
    let mut m = BlockMeta::new(0, 7_200_000);
    assert_eq!(m.compaction.sources, vec![m.ulid]);
    assert_eq!((m.compaction.level, m.version), (1, META_VERSION));
    let json = String::from_utf8(m.to_json()).unwrap();
    assert!(
        !json.contains("thanos") && !json.contains("numSamples"),
        "{json}"
    );

    let labels = BTreeMap::from([("replica".to_string(), "r1".to_string())]);
    m.thanos = Some(ThanosMeta::new(labels, "ember"));
    let v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
    assert_eq!(
        v["thanos"],
        serde_json::json!({
            "version": 1,
            "labels": {"replica": "r1"},
            "downsample": {"resolution": 0},
            "source": "ember"
        })
    );
    assert_eq!(m.desc().ulid, m.ulid);
}

#[test]
fn meta_round_trips_through_the_block_directory_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = BlockMeta::from_json(THANOS_META.as_bytes(), Path::new("x")).unwrap();
    m.version = 7; // write_to_dir always writes the one version there is
    let size = m.write_to_dir(dir.path()).unwrap();
    let path = dir.path().join("meta.json");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    assert!(!dir.path().join("meta.json.tmp").exists());
    let back = BlockMeta::read_from_dir(dir.path()).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.version, 1);

    // Rewriting replaces the file whole.
    m.stats.num_samples = 11;
    m.write_to_dir(dir.path()).unwrap();
    assert_eq!(
        BlockMeta::read_from_dir(dir.path())
            .unwrap()
            .stats
            .num_samples,
        11
    );
}

#[test]
fn go_null_lists_and_missing_optional_fields_read_as_empty() {
    let json = r#"{"ulid":"01M898C59D598Z8D2ECH8Y7E02","minTime":1,"maxTime":2,"version":1,
        "compaction":{"level":1,"sources":null,"parents":null,"hints":null},
        "thanos":{"labels":null,"source":"receive"},"somethingNew":{"x":1}}"#;
    let m = BlockMeta::from_json(json.as_bytes(), Path::new("m")).unwrap();
    assert!(m.compaction.sources.is_empty() && m.compaction.parents.is_empty());
    assert_eq!(m.stats, BlockStats::default());
    let t = m.thanos.unwrap();
    assert!(t.labels.is_empty());
    assert_eq!((t.version, t.downsample.resolution), (0, 0));
}

#[test]
fn invalid_meta_errors_name_the_file_and_the_problem() {
    let path = Path::new("/data/01ABC/meta.json");
    let cases: &[(&str, &str)] = &[
        ("", "EOF"),
        ("{", "EOF"),
        ("[]", "expected struct BlockMeta"),
        (r#"{"minTime":1,"maxTime":2,"version":1}"#, "ulid"),
        (
            r#"{"ulid":"01M898C59D598Z8D2ECH8Y7E02","minTime":1,"maxTime":2,"version":1,"compaction":{"sources":["zz"]}}"#,
            "invalid ULID",
        ),
        (
            r#"{"ulid":"01M898C59D598Z8D2ECH8Y7E02","maxTime":2,"version":1}"#,
            "minTime",
        ),
        (
            r#"{"ulid":"not-a-ulid","minTime":1,"maxTime":2,"version":1}"#,
            "invalid ULID",
        ),
        (
            r#"{"ulid":"81M898C59D598Z8D2ECH8Y7E02","minTime":1,"maxTime":2,"version":1}"#,
            "overflows",
        ),
        (
            r#"{"ulid":"01M898C59D598Z8D2ECH8Y7E02","minTime":1,"maxTime":2}"#,
            "version",
        ),
        (
            r#"{"ulid":"01M898C59D598Z8D2ECH8Y7E02","minTime":1,"maxTime":2,"version":2}"#,
            "unsupported version 2",
        ),
        (
            r#"{"ulid":"01M898C59D598Z8D2ECH8Y7E02","minTime":1,"minTime":1,"maxTime":2,"version":1}"#,
            "duplicate field",
        ),
        (
            r#"{"ulid":"01M898C59D598Z8D2ECH8Y7E02","minTime":1.5,"maxTime":2,"version":1}"#,
            "invalid type",
        ),
        (
            r#"{"ulid":"01M898C59D598Z8D2ECH8Y7E02","minTime":1,"maxTime":2,"version":1,"thanos":{"version":2}}"#,
            "thanos section version 2",
        ),
    ];
    for (json, want) in cases {
        let e = BlockMeta::from_json(json.as_bytes(), path).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::InvalidMeta { .. }) && msg.contains("/data/01ABC/meta.json"),
            "{json}: {msg}"
        );
        assert!(msg.contains(want), "{json}: {msg}");
    }

    let dir = tempfile::tempdir().unwrap();
    let e = BlockMeta::read_from_dir(dir.path()).unwrap_err();
    assert!(matches!(e, Error::Io { ref path, .. } if path.ends_with("meta.json")));
}
