//! The HTTP surface of the server: health and readiness, the remote-write receiver, remote read, the
//! self-metrics endpoint, and the routes of Prometheus' query API (handled in [`crate::api`],
//! [`crate::query_api`] and [`crate::federate`]) and TSDB admin API ([`crate::admin`]).
//!
//! Owns status codes, headers and bodies; decoding and storage rules live in [`crate::remote_write`] and
//! `ember`. CPU-bound work (decompression, decoding, appending) runs on the blocking pool so a large
//! request never stalls the async executor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ember::Db;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tower_http::compression::CompressionLayer;

use crate::admin;
use crate::api;
use crate::config_reload::{self, Reloader};
use crate::federate;
use crate::query_api::{self, QueryConfig, QueryRuntime};
use crate::remote_read;
use crate::remote_write::{self, Limits, Protocol, WriteError};

/// Shared state of all handlers.
pub struct AppState {
    db: std::sync::OnceLock<Db>,
    ready: AtomicBool,
    remote_write_enabled: bool,
    limits: Limits,
    metrics: Metrics,
    pub(crate) start_time: std::time::SystemTime,
    /// Command-line flags by Prometheus-style name, for `/api/v1/status/flags`.
    pub(crate) flags: Vec<(String, String)>,
    /// Engine options and the concurrency gate of PromQL queries.
    pub(crate) query: QueryRuntime,
    /// The loaded `prometheus.yml` and its scrape pools; unset in servers built without scraping.
    reloader: std::sync::OnceLock<Arc<Reloader>>,
    /// `--web.enable-admin-api`: whether the TSDB admin endpoints ([`crate::admin`]) act.
    admin_api: AtomicBool,
    /// Where request work runs: inline on one async worker at a time, else on the blocking pool.
    pub(crate) offload: crate::offload::Offload,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

struct Metrics {
    registry: Registry,
    head_series: Gauge,
    samples_appended: Counter,
    samples_appended_seen: AtomicU64,
    rw_requests: Family<CodeLabel, Counter>,
    rw_samples: Counter,
    rw_rejected: Counter,
    compactions: Counter,
    compactions_failed: Counter,
    head_truncations: Counter,
    blocks_deleted: Counter,
    blocks_loaded: Gauge,
    head_min_time: Gauge,
    head_max_time: Gauge,
    compaction_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    decoded_cache: DecodedCacheMetrics,
}

/// The engine's decoded-chunk cache, mirrored at scrape time (the engine counts; these report).
#[derive(Default)]
struct DecodedCacheMetrics {
    hits: Counter,
    misses: Counter,
    bytes: Gauge,
    budget: Gauge,
    /// The engine's totals at the previous scrape, so the counters advance by the difference.
    seen: (AtomicU64, AtomicU64),
}

impl DecodedCacheMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "ember_decoded_chunk_cache_hits",
            "Block chunks a query found decoded in the cache",
            self.hits.clone(),
        );
        registry.register(
            "ember_decoded_chunk_cache_misses",
            "Block chunks a query had to decode (and then offered to the cache)",
            self.misses.clone(),
        );
        registry.register(
            "ember_decoded_chunk_cache_bytes",
            "Bytes of decoded samples the cache holds",
            self.bytes.clone(),
        );
        registry.register(
            "ember_decoded_chunk_cache_capacity_bytes",
            "Most bytes the cache may hold (--storage.tsdb.decoded-chunk-cache-size)",
            self.budget.clone(),
        );
    }

    fn update(&self, st: ember::DecodedCacheStats) {
        let prev = self.seen.0.swap(st.hits, Ordering::AcqRel);
        self.hits.inc_by(st.hits.saturating_sub(prev));
        let prev = self.seen.1.swap(st.misses, Ordering::AcqRel);
        self.misses.inc_by(st.misses.saturating_sub(prev));
        self.bytes.set(st.bytes as i64);
        self.budget.set(st.budget_bytes as i64);
    }
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let build: Family<Vec<(String, String)>, Gauge> = Family::default();
        build
            .get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())])
            .set(1);
        registry.register("ember_build_info", "Ember's version; always 1", build);
        let head_series = Gauge::default();
        registry.register(
            "prometheus_tsdb_head_series",
            "Total number of series in the head block",
            head_series.clone(),
        );
        let samples_appended = Counter::default();
        registry.register(
            "prometheus_tsdb_head_samples_appended",
            "Total number of appended samples",
            samples_appended.clone(),
        );
        let rw_requests = Family::<CodeLabel, Counter>::default();
        registry.register(
            "ember_remote_write_requests",
            "Remote-write requests received, by HTTP status",
            rw_requests.clone(),
        );
        let rw_samples = Counter::default();
        registry.register(
            "ember_remote_write_samples_written",
            "Samples written through remote write",
            rw_samples.clone(),
        );
        let rw_rejected = Counter::default();
        registry.register(
            "ember_remote_write_samples_rejected",
            "Samples refused through remote write (invalid series, out of order, duplicate, out of bounds)",
            rw_rejected.clone(),
        );
        let compactions = Counter::default();
        registry.register(
            "prometheus_tsdb_compactions",
            "Total number of compactions that were executed for the partition (head blocks and merges)",
            compactions.clone(),
        );
        let compactions_failed = Counter::default();
        registry.register(
            "prometheus_tsdb_compactions_failed",
            "Total number of compactions that failed for the partition",
            compactions_failed.clone(),
        );
        let head_truncations = Counter::default();
        registry.register(
            "prometheus_tsdb_head_truncations",
            "Total number of head truncations attempted",
            head_truncations.clone(),
        );
        let blocks_deleted = Counter::default();
        registry.register(
            "ember_tsdb_blocks_deleted",
            "Blocks deleted because a compacted block replaced them or they passed retention",
            blocks_deleted.clone(),
        );
        let blocks_loaded = Gauge::default();
        registry.register(
            "prometheus_tsdb_blocks_loaded",
            "Number of currently loaded data blocks",
            blocks_loaded.clone(),
        );
        let head_min_time = Gauge::default();
        registry.register(
            "prometheus_tsdb_head_min_time",
            "Minimum time bound of the head block (milliseconds since the epoch)",
            head_min_time.clone(),
        );
        let head_max_time = Gauge::default();
        registry.register(
            "prometheus_tsdb_head_max_time",
            "Maximum timestamp of the head (milliseconds since the epoch)",
            head_max_time.clone(),
        );
        let compaction_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "ember_tsdb_compaction_seconds",
            "Time spent in compaction passes (head blocks, merges, retention)",
            compaction_seconds.clone(),
        );
        let decoded_cache = DecodedCacheMetrics::default();
        decoded_cache.register(&mut registry);
        Metrics {
            registry,
            decoded_cache,
            compactions,
            compactions_failed,
            head_truncations,
            blocks_deleted,
            blocks_loaded,
            head_min_time,
            head_max_time,
            compaction_seconds,
            head_series,
            samples_appended,
            samples_appended_seen: AtomicU64::new(0),
            rw_requests,
            rw_samples,
            rw_rejected,
        }
    }
}

impl AppState {
    pub fn new(
        remote_write_enabled: bool,
        limits: Limits,
        flags: Vec<(String, String)>,
    ) -> Arc<Self> {
        Self::with_query_config(remote_write_enabled, limits, flags, &QueryConfig::default())
    }

    /// [`AppState::new`] with the `--query.*` settings.
    pub fn with_query_config(
        remote_write_enabled: bool,
        limits: Limits,
        flags: Vec<(String, String)>,
        query: &QueryConfig,
    ) -> Arc<Self> {
        Arc::new(AppState {
            db: std::sync::OnceLock::new(),
            ready: AtomicBool::new(false),
            remote_write_enabled,
            limits,
            metrics: Metrics::new(),
            start_time: std::time::SystemTime::now(),
            flags,
            query: QueryRuntime::new(query),
            reloader: std::sync::OnceLock::new(),
            admin_api: AtomicBool::new(false),
            offload: crate::offload::Offload::default(),
        })
    }

    /// Hands over the loaded configuration (scraping, `/-/reload`, `/api/v1/targets`).
    pub fn set_reloader(&self, r: Arc<Reloader>) {
        let _ = self.reloader.set(r);
    }

    pub fn reloader(&self) -> Option<&Arc<Reloader>> {
        self.reloader.get()
    }

    /// Turns the TSDB admin endpoints on (`--web.enable-admin-api`); off by default.
    pub fn set_admin_api(&self, enabled: bool) {
        self.admin_api.store(enabled, Ordering::Release);
    }

    pub fn admin_api_enabled(&self) -> bool {
        self.admin_api.load(Ordering::Acquire)
    }

    /// Hands over the opened database and marks the server ready.
    pub fn set_db(&self, db: Db) {
        let _ = self.db.set(db);
        self.ready.store(true, Ordering::Release);
    }

    pub fn db(&self) -> Option<&Db> {
        self.db.get()
    }

    /// Counts a compaction pass that succeeded (see [`crate::compactor`]).
    pub(crate) fn record_compaction(&self, stats: &ember::CompactStats, took: std::time::Duration) {
        let m = &self.metrics;
        m.compactions
            .inc_by((stats.head_blocks.len() + stats.compacted_blocks.len()) as u64);
        m.head_truncations.inc_by(stats.head_blocks.len() as u64);
        m.blocks_deleted.inc_by(stats.deleted_blocks.len() as u64);
        m.compaction_seconds.inc_by(took.as_secs_f64());
    }

    pub(crate) fn record_compaction_failure(&self) {
        self.metrics.compactions_failed.inc();
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.limits.max_body_bytes;
    // Remote write and read carry snappy bodies and are left uncompressed, as in Prometheus.
    let remote = Router::new()
        .route(
            "/api/v1/write",
            post(write).layer(DefaultBodyLimit::max(limit)),
        )
        .route(
            "/api/v1/read",
            post(read).layer(DefaultBodyLimit::max(limit)),
        );
    let routes = Router::new()
        .route("/-/healthy", get(|| async { "Ember is Healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/metrics", get(metrics))
        .route(
            "/-/reload",
            post(config_reload::reload_handler).put(config_reload::reload_handler),
        )
        .route(
            "/-/quit",
            post(config_reload::quit_handler).put(config_reload::quit_handler),
        )
        .route(
            "/api/v1/query",
            get(query_api::query).post(query_api::query),
        )
        .route(
            "/api/v1/query_range",
            get(query_api::query_range).post(query_api::query_range),
        )
        .route(
            "/api/v1/query_exemplars",
            get(query_api::query_exemplars).post(query_api::query_exemplars),
        )
        .route(
            "/api/v1/format_query",
            get(query_api::format_query).post(query_api::format_query),
        )
        .route(
            "/api/v1/parse_query",
            get(query_api::parse_query_ast).post(query_api::parse_query_ast),
        )
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route("/api/v1/metadata", get(api::metadata))
        .route("/api/v1/targets", get(api::targets))
        .route("/api/v1/targets/metadata", get(api::targets_metadata))
        .route("/api/v1/scrape_pools", get(api::scrape_pools))
        .route("/api/v1/rules", get(api::rules))
        .route("/api/v1/alerts", get(api::alerts))
        .route("/api/v1/status/config", get(api::config))
        .route("/api/v1/status/buildinfo", get(api::buildinfo))
        .route("/api/v1/status/runtimeinfo", get(api::runtimeinfo))
        .route("/api/v1/status/flags", get(api::flags))
        .route("/api/v1/status/tsdb", get(api::tsdb))
        .route("/api/v1/status/walreplay", get(api::walreplay))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(admin::delete_series).put(admin::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(admin::clean_tombstones).put(admin::clean_tombstones),
        )
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(admin::snapshot).put(admin::snapshot),
        )
        .route("/federate", get(federate::federate))
        .route("/", get(root))
        .layer(CompressionLayer::new().gzip(true).deflate(true))
        .merge(remote)
        .fallback(api::not_found)
        .with_state(state);
    // Outside the routes: axum's method routing adds its own `Allow` after any route layer.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn(prometheus_http_conventions))
}

/// `/`: Prometheus redirects to its UI; Ember has none, so it answers with a short page (tools such as
/// prometheus-api-client probe `/` to see whether the server is up).
async fn root() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Ember, a Prometheus-compatible time-series database.\n\
         API: /api/v1/query, /api/v1/query_range, /api/v1/series, /api/v1/labels, /federate\n\
         Status: /api/v1/status/buildinfo, /-/ready, /metrics\n",
    )
        .into_response()
}

/// What Prometheus' router and API wrapper do around every handler: CORS on `/api/v1/` (its
/// `--web.cors.origin` default `.*`: a preflight `OPTIONS` is answered 204, and a request with an
/// `Origin` gets `Access-Control-Allow-Origin: *` and the allowed methods and headers; every answer
/// varies by `Origin`), and Go's plain-text body on 405 with `OPTIONS` in `Allow`.
async fn prometheus_http_conventions(req: axum::extract::Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/v1/");
    let has_origin = req.headers().contains_key(header::ORIGIN);
    let mut resp = if api && req.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = resp.headers().get(header::ALLOW).cloned();
        let mut r = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Method Not Allowed\n",
        )
            .into_response();
        if let Some(allow) = allow.and_then(|a| a.to_str().ok().map(str::to_string)) {
            let with_options = if api {
                format!("{allow},OPTIONS")
            } else {
                allow
            };
            if let Ok(v) = HeaderValue::from_str(&with_options) {
                r.headers_mut().insert(header::ALLOW, v);
            }
        }
        resp = r;
    }
    if api {
        let h = resp.headers_mut();
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        if has_origin {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Date"),
            );
        }
    }
    resp
}

async fn ready(State(st): State<Arc<AppState>>) -> Response {
    if st.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "Ember is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let m = &st.metrics;
    if let Some(db) = st.db() {
        let s = db.stats();
        m.head_series.set(s.num_series as i64);
        let prev = m
            .samples_appended_seen
            .swap(s.samples_appended, Ordering::AcqRel);
        m.samples_appended
            .inc_by(s.samples_appended.saturating_sub(prev));
        m.blocks_loaded.set(db.blocks().len() as i64);
        // Empty head: Prometheus reports math.MaxInt64 and math.MinInt64.
        let (lo, hi) = s.time_range.unwrap_or((i64::MAX, i64::MIN));
        m.head_min_time.set(lo);
        m.head_max_time.set(hi);
        if let Some(c) = db.decoded_cache_stats() {
            m.decoded_cache.update(c);
        }
    }
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response();
    }
    if let Some(r) = st.reloader() {
        // The registry ends the text with `# EOF`; scraping's families go before it.
        let eof = out.rfind("# EOF").unwrap_or(out.len());
        out.insert_str(eof, &r.metrics_text());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn write(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let resp = write_inner(&st, &headers, body).await;
    st.metrics
        .rw_requests
        .get_or_create(&CodeLabel {
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    resp
}

async fn write_inner(st: &Arc<AppState>, headers: &HeaderMap, body: Bytes) -> Response {
    if !st.remote_write_enabled {
        return (
            StatusCode::NOT_FOUND,
            "remote write receiver needs to be enabled with --web.enable-remote-write-receiver\n",
        )
            .into_response();
    }
    let Some(db) = st.db().cloned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: WAL replay in progress\n",
        )
            .into_response();
    };
    let h = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let protocol =
        match remote_write::negotiate(h(header::CONTENT_TYPE), h(header::CONTENT_ENCODING)) {
            Ok(p) => p,
            Err(e) => return error_response(&e),
        };
    let limits = st.limits;
    let work = tokio::task::spawn_blocking(move || {
        let raw = remote_write::decompress(&body, &limits)?;
        remote_write::write(&db, protocol, &raw)
    })
    .await;
    let outcome = match work {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return error_response(&e),
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error: {e}\n"),
            )
                .into_response();
        }
    };
    st.metrics.rw_samples.inc_by(outcome.samples_written);
    st.metrics.rw_rejected.inc_by(outcome.samples_rejected);
    let mut resp = if outcome.has_rejections() {
        (StatusCode::BAD_REQUEST, outcome.message() + "\n").into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    if protocol == Protocol::V2 {
        let hs = resp.headers_mut();
        hs.insert(
            "X-Prometheus-Remote-Write-Samples-Written",
            HeaderValue::from(outcome.samples_written),
        );
        hs.insert(
            "X-Prometheus-Remote-Write-Histograms-Written",
            HeaderValue::from(0u64),
        );
        hs.insert(
            "X-Prometheus-Remote-Write-Exemplars-Written",
            HeaderValue::from(0u64),
        );
    }
    resp
}

async fn read(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let Some(db) = st.db().cloned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: WAL replay in progress\n",
        )
            .into_response();
    };
    let limits = st.limits;
    let work = tokio::task::spawn_blocking(move || {
        let (req, rt) = remote_read::decode_request(&body, &limits)?;
        Ok::<_, WriteError>(match rt {
            remote_read::ResponseType::Samples => (rt, remote_read::samples_response(&db, &req)?),
            remote_read::ResponseType::StreamedXorChunks => {
                (rt, remote_read::streamed_response(&db, &req)?)
            }
        })
    })
    .await;
    match work {
        Ok(Ok((remote_read::ResponseType::Samples, body))) => (
            [
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "snappy"),
            ],
            body,
        )
            .into_response(),
        Ok(Ok((remote_read::ResponseType::StreamedXorChunks, body))) => (
            [(header::CONTENT_TYPE, remote_read::STREAMED_CONTENT_TYPE)],
            body,
        )
            .into_response(),
        Ok(Err(e)) => error_response(&e),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}\n"),
        )
            .into_response(),
    }
}

fn error_response(e: &WriteError) -> Response {
    let code = match e {
        WriteError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        WriteError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        WriteError::BadRequest(_) => StatusCode::BAD_REQUEST,
        WriteError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, format!("{e}\n")).into_response()
}
