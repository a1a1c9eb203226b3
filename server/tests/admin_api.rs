//! The TSDB admin API with the real binary: refused (500, `unavailable`, as Prometheus) without
//! `--web.enable-admin-api`; with it, `delete_series` hides the matched samples in blocks and head (and
//! only those) across a restart, `clean_tombstones` rewrites the block, `snapshot` writes a directory
//! Debian's promtool lists, and bad parameters get Prometheus' `bad_data` errors.

use std::path::Path;

mod common;

use ember::{Db, Labels, Options};
use serde_json::Value;

const H: i64 = 3600 * 1000;
/// A multiple of 2 h, so the block cut from the head covers `[T0, T0 + 2h)`.
const T0: i64 = 1_699_999_200_000;
const STEP: i64 = 60_000;
const END: i64 = T0 + 4 * H;

/// A data directory with series `m{job="a"}` and `m{job="b"}`, one sample a minute over 4 h: the first
/// 2 h in a block, the rest in the head (WAL).
fn prepare(dir: &Path) -> ember::BlockMeta {
    let db = Db::open(dir, Options::default()).unwrap();
    let mut app = db.appender();
    for job in ["a", "b"] {
        let l = Labels::from_pairs([("__name__", "m"), ("job", job)]).unwrap();
        let mut t = T0;
        while t < END {
            app.append(&l, t, 1.0).unwrap();
            t += STEP;
        }
    }
    app.commit().unwrap();
    db.compact().unwrap();
    let blocks = db.blocks();
    assert_eq!(blocks.len(), 1);
    db.close().unwrap();
    blocks[0].clone()
}

/// Starts ember over `dir` with the admin API, compaction out of the way.
fn start(dir: &Path, admin: bool) -> (common::Proc, u16) {
    let mut flags = vec!["--storage.tsdb.compaction-interval=1h"];
    if admin {
        flags.push("--web.enable-admin-api");
    }
    common::start_ember(dir, &flags)
}

fn call(port: u16, method: &str, path: &str, form: Option<&str>) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let agent = common::agent();
    let mut r = match (method, form) {
        ("POST", None) => agent.post(&url).send_empty(),
        ("PUT", None) => agent.put(&url).send_empty(),
        ("POST", Some(f)) => agent
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(f),
        ("PUT", Some(f)) => agent
            .put(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(f),
        ("GET", _) => agent.get(&url).call(),
        _ => unreachable!(),
    }
    .expect("request answered");
    let code = r.status().as_u16();
    (code, r.body_mut().read_to_string().unwrap_or_default())
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Timestamps of the samples of `m{job=…}` over all 4 h, through the query API.
fn samples(port: u16, job: &str) -> Vec<i64> {
    let q = enc(&format!("m{{job=\"{job}\"}}[4h]"));
    let (code, body) = common::get(
        port,
        &format!("/api/v1/query?query={q}&time={}", (END - 1) as f64 / 1000.0),
    )
    .expect("query answered");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let result = v["data"]["result"].as_array().unwrap();
    if result.is_empty() {
        return Vec::new();
    }
    assert_eq!(result.len(), 1, "{body}");
    result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap() * 1000.0).round() as i64)
        .collect()
}

/// One sample a minute over `[T0, END)` outside the closed ranges in `deleted`.
fn expected(deleted: &[(i64, i64)]) -> Vec<i64> {
    // The 4h range selector at END - 1 leaves out its left end, T0 - 1.
    (0..)
        .map(|i| T0 + i * STEP)
        .take_while(|&t| t < END)
        .filter(|&t| deleted.iter().all(|&(lo, hi)| t < lo || t > hi))
        .collect()
}

fn block_dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            ember::block::dir::block_ulid(&name).map(|_| name)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn admin_endpoints_are_unavailable_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    let (p, port) = start(dir.path(), false);
    for path in [
        "/api/v1/admin/tsdb/delete_series?match[]=m",
        "/api/v1/admin/tsdb/clean_tombstones",
        "/api/v1/admin/tsdb/snapshot",
    ] {
        for method in ["POST", "PUT"] {
            let (code, body) = call(port, method, path, None);
            // Status 500 with type `unavailable`: what Prometheus 2.42 answers.
            assert_eq!(code, 500, "{method} {path}: {body}");
            assert_eq!(
                body,
                r#"{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}"#
            );
        }
    }
    assert_eq!(samples(port, "a"), expected(&[]));
    assert!(!dir.path().join("snapshots").exists());
    common::stop(p, "ember");
}

#[test]
fn delete_series_hides_only_the_matched_range_and_clean_tombstones_rewrites_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let block = prepare(dir.path());
    let (p, port) = start(dir.path(), true);
    // Spans the end of the block and the start of the head.
    let (lo, hi) = (T0 + 90 * 60_000, T0 + 150 * 60_000);
    let path = format!(
        "/api/v1/admin/tsdb/delete_series?match[]={}&start={}&end={}",
        enc(r#"m{job="a"}"#),
        lo / 1000,
        hi / 1000
    );
    let (code, body) = call(port, "POST", &path, None);
    assert_eq!((code, body.as_str()), (204, ""));
    assert_eq!(samples(port, "a"), expected(&[(lo, hi)]));
    assert_eq!(samples(port, "b"), expected(&[]));
    // PUT with the parameters in a form body, RFC 3339 times.
    let (lo2, hi2) = (T0 + 10 * 60_000, T0 + 20 * 60_000);
    let form = format!(
        "match[]={}&start={}&end={}",
        enc(r#"{job="b"}"#),
        enc("2023-11-14T22:10:00Z"),
        enc("2023-11-14T22:20:00Z")
    );
    assert_eq!(T0, 1_699_999_200_000, "the RFC 3339 times above assume T0");
    let (code, body) = call(port, "PUT", "/api/v1/admin/tsdb/delete_series", Some(&form));
    assert_eq!((code, body.as_str()), (204, ""));
    assert_eq!(samples(port, "b"), expected(&[(lo2, hi2)]));

    let stones =
        ember::Tombstones::read_from_dir(&dir.path().join(block.ulid.to_string())).unwrap();
    assert_eq!(stones.total(), 2, "one interval per series in the block");
    common::stop(p, "ember");

    // Head tombstones come back from the WAL, block tombstones from the block.
    let (p, port) = start(dir.path(), true);
    assert_eq!(samples(port, "a"), expected(&[(lo, hi)]));
    assert_eq!(samples(port, "b"), expected(&[(lo2, hi2)]));

    let (code, body) = call(port, "POST", "/api/v1/admin/tsdb/clean_tombstones", None);
    assert_eq!((code, body.as_str()), (204, ""));
    let blocks = block_dirs(dir.path());
    assert_eq!(blocks.len(), 1);
    assert_ne!(blocks[0], block.ulid.to_string(), "the block was rewritten");
    let new_dir = dir.path().join(&blocks[0]);
    assert!(
        ember::Tombstones::read_from_dir(&new_dir)
            .unwrap()
            .is_empty()
    );
    let meta = ember::BlockMeta::read_from_dir(&new_dir).unwrap();
    let gone = ((T0 + 2 * H - lo) / STEP + (hi2 - lo2) / STEP + 1) as u64;
    assert_eq!(meta.stats.num_samples, block.stats.num_samples - gone);
    assert_eq!(samples(port, "a"), expected(&[(lo, hi)]));
    assert_eq!(samples(port, "b"), expected(&[(lo2, hi2)]));
    common::stop(p, "ember");
}

#[test]
fn snapshot_writes_a_directory_promtool_lists() {
    let dir = tempfile::tempdir().unwrap();
    let block = prepare(dir.path());
    let (p, port) = start(dir.path(), true);
    let (code, body) = call(port, "POST", "/api/v1/admin/tsdb/snapshot", None);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    let name = v["data"]["name"].as_str().unwrap().to_string();
    let (time, hex) = name.split_once('-').unwrap();
    assert!(time.len() == 16 && time.ends_with('Z'), "{name}");
    assert_eq!(hex.len(), 16, "{name}");
    let snap = dir.path().join("snapshots").join(&name);
    let with_head = block_dirs(&snap);
    assert_eq!(with_head.len(), 2, "the block and the head: {with_head:?}");
    assert!(with_head.contains(&block.ulid.to_string()));

    let (code, body) = call(
        port,
        "PUT",
        "/api/v1/admin/tsdb/snapshot?skip_head=true",
        None,
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let name2 = v["data"]["name"].as_str().unwrap();
    assert_ne!(name2, name);
    let snap2 = dir.path().join("snapshots").join(name2);
    assert_eq!(block_dirs(&snap2), vec![block.ulid.to_string()]);
    common::stop(p, "ember");

    if common::peer_available("promtool") {
        let out = std::process::Command::new("promtool")
            .args(["tsdb", "list"])
            .arg(&snap)
            .output()
            .unwrap();
        assert!(out.status.success(), "promtool tsdb list: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for b in &with_head {
            assert!(text.contains(b.as_str()), "promtool lists {b}:\n{text}");
        }
    }
    // The snapshot is a database with the same samples.
    let db = Db::open(&snap, Options::default()).unwrap();
    let got = db
        .querier(i64::MIN, i64::MAX)
        .try_select(&[ember::Matcher::equal("job", "a")])
        .unwrap();
    let ts: Vec<i64> = got[0].samples().unwrap().iter().map(|s| s.0).collect();
    assert_eq!(ts, expected(&[]));
    db.close().unwrap();
}

#[test]
fn bad_parameters_get_prometheus_bad_data_errors() {
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    let (p, port) = start(dir.path(), true);
    let bad = |path: &str, want: &str| {
        let (code, body) = call(port, "POST", path, None);
        assert_eq!(code, 400, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["errorType"], "bad_data", "{body}");
        assert_eq!(v["error"], want, "{path}");
    };
    bad(
        "/api/v1/admin/tsdb/delete_series",
        "no match[] parameter provided",
    );
    bad(
        "/api/v1/admin/tsdb/delete_series?match[]=m&start=yesterday",
        "invalid parameter \"start\": invalid time value for 'start': cannot parse \"yesterday\" to a valid timestamp",
    );
    bad(
        "/api/v1/admin/tsdb/delete_series?match[]=m&end=x",
        "invalid parameter \"end\": invalid time value for 'end': cannot parse \"x\" to a valid timestamp",
    );
    let (code, body) = call(
        port,
        "POST",
        &format!(
            "/api/v1/admin/tsdb/delete_series?match[]=m&match[]={}",
            enc("m{")
        ),
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains(r#"invalid parameter \"match[]\""#), "{body}");
    bad(
        "/api/v1/admin/tsdb/snapshot?skip_head=maybe",
        "invalid parameter \"skip_head\": unable to parse boolean: strconv.ParseBool: parsing \"maybe\": invalid syntax",
    );
    // A refused request deletes nothing, not even for its valid selectors.
    assert_eq!(samples(port, "a"), expected(&[]));
    assert!(!dir.path().join("snapshots").exists());
    let (code, _) = call(port, "GET", "/api/v1/admin/tsdb/snapshot", None);
    assert_eq!(code, 405);
    common::stop(p, "ember");
}
