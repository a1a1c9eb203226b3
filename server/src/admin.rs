//! Prometheus' TSDB admin API: `POST|PUT /api/v1/admin/tsdb/delete_series`, `…/clean_tombstones` and
//! `…/snapshot`, answered only with `--web.enable-admin-api` (otherwise `unavailable`, "admin APIs
//! disabled", with status 500 as Prometheus answers).
//!
//! Owns parameter checks, status codes and the snapshot's name (`snapshots/<UTC time>-<16 hex digits>`
//! in the data directory); what deleting, cleaning and snapshotting do is `ember`'s
//! ([`ember::Db::delete`], [`ember::Db::clean_tombstones`], [`ember::Db::snapshot`]). The work runs on
//! the blocking pool: it writes files and can take a while on large blocks.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ember::Matcher;
use serde_json::json;

use crate::api::{ApiError, ready_db, success};
use crate::http::AppState;
use crate::params::{Form, MAX_TIME_MS, MIN_TIME_MS, parse_metric_selector, parse_time_param};

/// Prometheus' answer while the admin API is off: error type `unavailable`, but status 500, because its
/// error-type-to-status table has no entry for `unavailable` (checked against Prometheus 2.42).
fn refused(st: &AppState) -> Option<Response> {
    (!st.admin_api_enabled()).then(|| {
        crate::api::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unavailable",
            "admin APIs disabled",
        )
    })
}

/// Runs `f` on the blocking pool; an engine error is `internal`, as in Prometheus.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ember::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| ApiError::Internal(e.to_string())),
        Err(e) => Err(ApiError::Internal(format!("admin task failed: {e}"))),
    }
}

/// `delete_series`: every `match[]` selector (at least one) over `[start, end]` (default: all time).
/// 204 without a body on success.
pub async fn delete_series(
    State(st): State<Arc<AppState>>,
    form: Form,
) -> Result<Response, ApiError> {
    if let Some(r) = refused(&st) {
        return Ok(r);
    }
    let selectors = form.values("match[]");
    if selectors.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let start = parse_time_param(&form, "start", MIN_TIME_MS)
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time_param(&form, "end", MAX_TIME_MS)
        .map_err(|e| ApiError::invalid_param("end", e))?;
    // All selectors are checked before anything is deleted (Prometheus deletes selector by selector
    // and may stop halfway at a bad one).
    let sets: Vec<Vec<Matcher>> = selectors
        .iter()
        .map(|s| parse_metric_selector(s).map_err(|e| ApiError::invalid_param("match[]", e)))
        .collect::<Result<_, _>>()?;
    let db = ready_db(&st)?;
    blocking(move || {
        for set in &sets {
            let stats = db.delete(set, start, end)?;
            tracing::info!(matchers = ?set, start, end, ?stats, "series deleted");
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `clean_tombstones`: rewrites every block with tombstones. 204 on success.
pub async fn clean_tombstones(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    if let Some(r) = refused(&st) {
        return Ok(r);
    }
    let db = ready_db(&st)?;
    blocking(move || {
        let (replaced, written) = db.clean_tombstones()?;
        tracing::info!(?replaced, ?written, "tombstones cleaned");
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `snapshot?skip_head=<bool>`: `{"name": "<dir under DATA/snapshots>"}`.
pub async fn snapshot(State(st): State<Arc<AppState>>, form: Form) -> Result<Response, ApiError> {
    if let Some(r) = refused(&st) {
        return Ok(r);
    }
    let skip_head = match form.value("skip_head") {
        "" => false,
        v => parse_go_bool(v).ok_or_else(|| {
            ApiError::invalid_param(
                "skip_head",
                format!(
                    "unable to parse boolean: strconv.ParseBool: parsing {}: invalid syntax",
                    ember_query::functions::gofmt::quote(v)
                ),
            )
        })?,
    };
    let db = ready_db(&st)?;
    let name = snapshot_name(std::time::SystemTime::now());
    let dir = db.dir().join("snapshots").join(&name);
    blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|source| ember::Error::Io {
            path: dir.clone(),
            source,
        })?;
        let stats = db.snapshot(&dir, !skip_head)?;
        tracing::info!(dir = %dir.display(), ?stats, "snapshot written");
        Ok(())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("create snapshot: {}", e.message())))?;
    Ok(success(json!({ "name": name })))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Prometheus' snapshot name: the UTC time as `20060102T150405Z`, a dash, and a random non-negative
/// 63-bit number in 16 hex digits.
fn snapshot_name(now: std::time::SystemTime) -> String {
    // "2026-12-07T13:15:21.123Z" -> "20261207T131521Z"
    let t: String = crate::api::rfc3339(now)
        .chars()
        .take_while(|&c| c != '.')
        .filter(|&c| c != '-' && c != ':')
        .collect();
    // A per-process random key hashed with the clock: unpredictable enough for a directory name,
    // without a random-number dependency.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        now.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{t}Z-{:016x}", h.finish() >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_have_prometheus_shape() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_649_321_123);
        let name = snapshot_name(t);
        let (time, hex) = name.split_once('-').unwrap();
        assert_eq!(time, "20261207T131521Z");
        assert_eq!(hex.len(), 16);
        assert!(u64::from_str_radix(hex, 16).unwrap() < 1 << 63);
        assert_ne!(snapshot_name(t), name, "two snapshots get two names");
    }

    #[test]
    fn booleans_parse_as_go() {
        assert_eq!(parse_go_bool("True"), Some(true));
        assert_eq!(parse_go_bool("0"), Some(false));
        assert_eq!(parse_go_bool("yes"), None);
        assert_eq!(parse_go_bool("tRUE"), None);
    }
}
