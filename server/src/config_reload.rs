//! The running `prometheus.yml`: loading it at start-up, reloading it on
//! SIGHUP or `POST /-/reload` (with `--web.enable-lifecycle`), `/-/quit`,
//! and the figures Prometheus exports about it
//! (`prometheus_config_last_reload_successful`, …) and about scraping.
//!
//! Owns the reload policy: a configuration that does not parse or that the
//! scrape pools cannot use leaves the running one in place, and the failure
//! is reported (500 with the error from `/-/reload`, the success gauge set to
//! 0). It does not own scraping ([`ember_scrape::pools`]) or the HTTP API
//! answers built from it ([`crate::api`]).

use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ember::Labels;
use ember_scrape::{Config, ScrapePools};
use parking_lot::Mutex;

use crate::http::AppState;

/// Where the configuration comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// `--config.file`.
    File(PathBuf),
    /// No file: the embedded default, scraping this server at `address`.
    Embedded { address: String },
}

impl Source {
    fn read(&self) -> Result<(Config, String), String> {
        match self {
            Source::File(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read configuration file {}: {e}", p.display()))?;
                let mut cfg = Config::parse(&text).map_err(|e| match e {
                    ember_scrape::Error::Config { line, message, .. } => format!(
                        "{}: {}{message}",
                        p.display(),
                        line.map(|l| format!("line {l}: ")).unwrap_or_default()
                    ),
                    other => format!("{}: {other}", p.display()),
                })?;
                if let Some(dir) = p.parent() {
                    cfg.resolve_paths(dir);
                }
                Ok((cfg, text))
            }
            Source::Embedded { address } => {
                let text = embedded_config(address);
                let cfg = Config::parse(&text).map_err(|e| e.to_string())?;
                Ok((cfg, text))
            }
        }
    }
}

/// The embedded default configuration, scraping `address` (this server).
pub fn embedded_config(address: &str) -> String {
    ember_scrape::config::EMBEDDED_DEFAULT.replace("localhost:9090", address)
}

/// The loaded configuration and what follows it.
pub struct Reloader {
    source: Source,
    lifecycle: bool,
    current: Mutex<(Config, String)>,
    pools: std::sync::OnceLock<Arc<ScrapePools>>,
    /// Serialises reloads: two at once must not interleave their applies.
    reloading: tokio::sync::Mutex<()>,
    last_ok: AtomicBool,
    last_ok_ts: AtomicI64,
    reloads_failed: AtomicU64,
    /// Wakes the server's shutdown on `/-/quit`.
    pub quit: tokio::sync::Notify,
}

impl Reloader {
    /// Loads the configuration once; an error stops start-up, as in Prometheus.
    pub fn load(source: Source, lifecycle: bool) -> Result<Arc<Reloader>, String> {
        let (cfg, text) = source.read()?;
        log_unsupported(&cfg);
        Ok(Arc::new(Reloader {
            source,
            lifecycle,
            current: Mutex::new((cfg, text)),
            pools: std::sync::OnceLock::new(),
            reloading: tokio::sync::Mutex::new(()),
            last_ok: AtomicBool::new(true),
            last_ok_ts: AtomicI64::new(now_secs()),
            reloads_failed: AtomicU64::new(0),
            quit: tokio::sync::Notify::new(),
        }))
    }

    /// Starts scraping the loaded configuration into `pools`' database. Holds the reload lock so a
    /// reload that comes meanwhile applies after, not before.
    pub async fn attach(&self, pools: Arc<ScrapePools>) -> Result<(), String> {
        let _guard = self.reloading.lock().await;
        let cfg = self.current.lock().0.clone();
        pools.apply_config(&cfg).map_err(|e| e.to_string())?;
        let _ = self.pools.set(pools);
        Ok(())
    }

    pub fn pools(&self) -> Option<&Arc<ScrapePools>> {
        self.pools.get()
    }

    pub fn lifecycle_enabled(&self) -> bool {
        self.lifecycle
    }

    /// The running configuration and its text as loaded.
    pub fn config(&self) -> (Config, String) {
        self.current.lock().clone()
    }

    pub fn external_labels(&self) -> Labels {
        self.current.lock().0.global.external_labels.clone()
    }

    /// Re-reads the source and applies it; on failure the running
    /// configuration stays.
    pub async fn reload(&self) -> Result<(), String> {
        let _guard = self.reloading.lock().await;
        let res = self.reload_inner();
        match &res {
            Ok(()) => {
                self.last_ok.store(true, Ordering::Relaxed);
                self.last_ok_ts.store(now_secs(), Ordering::Relaxed);
                tracing::info!("completed loading of configuration file");
            }
            Err(e) => {
                self.last_ok.store(false, Ordering::Relaxed);
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "error reloading config; keeping the running configuration");
            }
        }
        res
    }

    fn reload_inner(&self) -> Result<(), String> {
        let (cfg, text) = self.source.read()?;
        if let Some(p) = self.pools.get() {
            p.apply_config(&cfg).map_err(|e| e.to_string())?;
        }
        log_unsupported(&cfg);
        *self.current.lock() = (cfg, text);
        Ok(())
    }

    /// Prometheus' figures about the configuration and scraping, in the text
    /// of `/metrics` (OpenMetrics).
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}_total {v}"
            );
        };
        gauge(
            &mut out,
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            u8::from(self.last_ok.load(Ordering::Relaxed)).to_string(),
        );
        gauge(
            &mut out,
            "prometheus_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            self.last_ok_ts.load(Ordering::Relaxed).to_string(),
        );
        counter(
            &mut out,
            "ember_config_reloads_failed",
            "Configuration reloads that failed and left the running configuration in place.",
            self.reloads_failed.load(Ordering::Relaxed),
        );
        let Some(p) = self.pools.get() else {
            return out;
        };
        let c = p.counters();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (pools, targets) = p.sizes();
        gauge(
            &mut out,
            "prometheus_target_scrape_pools",
            "Current number of scrape pools.",
            pools.to_string(),
        );
        gauge(
            &mut out,
            "ember_target_active",
            "Current number of active scrape targets.",
            targets.to_string(),
        );
        gauge(
            &mut out,
            "ember_sd_unsupported_configs",
            "Service discovery configurations Ember does not implement (their targets are not scraped).",
            p.unsupported_sd_configs().to_string(),
        );
        counter(
            &mut out,
            "prometheus_sd_file_read_errors",
            "The number of File-SD read errors.",
            p.file_sd_read_errors(),
        );
        for (name, help, v) in [
            (
                "prometheus_target_scrapes_exceeded_sample_limit",
                "Total number of scrapes that hit the sample limit and were rejected.",
                get(&c.exceeded_sample_limit),
            ),
            (
                "prometheus_target_scrapes_exceeded_body_size_limit",
                "Total number of scrapes that hit the body size limit.",
                get(&c.exceeded_body_size_limit),
            ),
            (
                "prometheus_target_scrape_pool_exceeded_label_limits",
                "Total number of times scrapes hit the label limits.",
                get(&c.exceeded_label_limits),
            ),
            (
                "prometheus_target_scrapes_sample_out_of_order",
                "Total number of samples rejected due to not being out of the expected order.",
                get(&c.sample_out_of_order),
            ),
            (
                "prometheus_target_scrapes_sample_duplicate_timestamp",
                "Total number of samples rejected due to duplicate timestamps but different values.",
                get(&c.sample_duplicate_timestamp),
            ),
            (
                "prometheus_target_scrapes_sample_out_of_bounds",
                "Total number of samples rejected due to timestamp falling outside of the time bounds.",
                get(&c.sample_out_of_bounds),
            ),
            (
                "ember_target_scrapes",
                "Scrapes attempted.",
                get(&c.scrapes),
            ),
            (
                "ember_target_scrapes_failed",
                "Scrapes that failed (target down, bad body, or a limit exceeded).",
                get(&c.failed_scrapes),
            ),
        ] {
            counter(&mut out, name, help, v);
        }
        out
    }
}

fn log_unsupported(cfg: &Config) {
    for u in cfg
        .unsupported
        .iter()
        .filter(|u| !u.ends_with("_sd_configs"))
    {
        tracing::warn!(setting = %u, "configuration setting accepted but not acted on by Ember");
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Installs the SIGHUP handler at once (so an early SIGHUP does not end the process, the signal's
/// default) and returns the task that reloads on each one until the process ends.
pub fn reload_on_sighup(r: Arc<Reloader>) -> tokio::task::JoinHandle<()> {
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    tokio::spawn(async move {
        let Ok(mut hup) = hup else {
            tracing::error!("cannot install the SIGHUP handler: reload by signal is off");
            return;
        };
        hup_loop(&r, &mut hup).await;
    })
}

async fn hup_loop(r: &Reloader, hup: &mut tokio::signal::unix::Signal) {
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading configuration");
        let _ = r.reload().await;
    }
}

const LIFECYCLE_OFF: &str = "Lifecycle API is not enabled.";

/// `POST`/`PUT /-/reload`.
pub async fn reload_handler(State(st): State<Arc<AppState>>) -> Response {
    let Some(r) = st.reloader() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response();
    };
    if !r.lifecycle_enabled() {
        return (StatusCode::FORBIDDEN, LIFECYCLE_OFF).into_response();
    }
    match r.reload().await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

/// `POST`/`PUT /-/quit`.
pub async fn quit_handler(State(st): State<Arc<AppState>>) -> Response {
    let Some(r) = st.reloader() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response();
    };
    if !r.lifecycle_enabled() {
        return (StatusCode::FORBIDDEN, LIFECYCLE_OFF).into_response();
    }
    r.quit.notify_one();
    (StatusCode::OK, "Requesting termination... Goodbye!").into_response()
}
