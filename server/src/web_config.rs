//! `--web.config.file`: Prometheus' web configuration file (the exporter-toolkit format, documented in
//! `docs/format/web-config.md`). It turns on TLS for the listener, HTTP basic auth, extra response
//! headers and a request rate limit.
//!
//! Owns reading and checking the file ([`WebConfig::parse`]), noticing when it or a file it names
//! changes ([`WebConfigFile::current`]) and serving a router with it ([`serve`]). The pieces: [`tls`]
//! turns the TLS section into a rustls configuration, [`auth`] checks credentials and adds headers,
//! [`listen`] accepts connections. Does not own the routes: it wraps whatever router it is given.

mod auth;
mod listen;
mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;

pub use listen::serve;
pub use tls::{CLIENT_AUTH_TYPES, CURVES, ClientAuth, GO_CIPHER_SUITES, TlsVersion};

/// Why a web configuration file cannot be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebConfigError {
    /// The file, or a certificate or key file it names, cannot be read.
    #[error("web config {config}: cannot read {path}: {source}")]
    Read {
        config: PathBuf,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The YAML does not parse, or has a field the format does not know (serde names it).
    #[error("web config {config}: {msg}")]
    Yaml { config: PathBuf, msg: String },
    /// A field holds a value the format or Ember does not accept.
    #[error("web config {config}: {field}: {msg}")]
    Invalid {
        config: PathBuf,
        field: String,
        msg: String,
    },
}

impl WebConfigError {
    fn invalid(config: &Path, field: impl Into<String>, msg: impl Into<String>) -> Self {
        WebConfigError::Invalid {
            config: config.to_path_buf(),
            field: field.into(),
            msg: msg.into(),
        }
    }
}

/// The file as written; field names are the YAML keys. Strict like Prometheus' `UnmarshalStrict`:
/// an unknown key is an error naming it. Every field is optional and an explicit `null` means unset.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    rate_limit: Option<RawRateLimit>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) client_ca: Option<String>,
    pub(crate) cert_file: Option<String>,
    pub(crate) key_file: Option<String>,
    pub(crate) client_auth_type: Option<String>,
    pub(crate) client_ca_file: Option<String>,
    pub(crate) cipher_suites: Option<Vec<String>>,
    pub(crate) curve_preferences: Option<Vec<String>>,
    pub(crate) min_version: Option<String>,
    pub(crate) max_version: Option<String>,
    pub(crate) prefer_server_cipher_suites: Option<bool>,
    pub(crate) client_allowed_sans: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    burst: Option<u32>,
    interval: Option<String>,
}

/// Where PEM text comes from: a file (re-read when it changes) or the YAML itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PemSource {
    File(PathBuf),
    Inline(String),
}

/// The TLS section, checked; [`tls::server_config`] turns it into rustls' form.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub cert: PemSource,
    pub key: PemSource,
    pub client_ca: Option<PemSource>,
    pub client_auth: ClientAuth,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// Go names as written; those rustls cannot do are accepted and left out (see [`GO_CIPHER_SUITES`]).
    pub cipher_suites: Vec<String>,
    pub prefer_server_cipher_suites: bool,
    /// Go names as written (see [`CURVES`]).
    pub curve_preferences: Vec<String>,
    /// When set, a client certificate must carry one of these subject alternative names.
    pub client_allowed_sans: Option<Vec<String>>,
}

/// Requests allowed: `burst` at once, refilled one per `interval` (Go's `rate.Limiter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub interval: Duration,
}

/// A parsed and checked web configuration file.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// `None`: serve plain HTTP (no TLS field was set).
    pub tls: Option<TlsSettings>,
    /// Offer HTTP/2 through ALPN on TLS connections.
    pub http2: bool,
    /// Extra response headers, from the small set Prometheus allows.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// User name to bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
    pub rate_limit: Option<RateLimit>,
}

/// The headers a web config may set, with the values allowed (empty: any value), as Prometheus
/// restricts them so every Prometheus-ecosystem server behaves alike.
pub const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

impl WebConfig {
    /// Parses `text`, the contents of the file at `path`; relative file names in it are taken from
    /// `path`'s directory. Checks everything that needs no file access (names, enumerations, hashes).
    pub fn parse(path: &Path, text: &str) -> Result<WebConfig, WebConfigError> {
        // An empty file (or one of comments only) is a valid, empty configuration, as in Prometheus.
        let raw: Option<RawConfig> =
            serde_norway::from_str(text).map_err(|e| WebConfigError::Yaml {
                config: path.to_path_buf(),
                msg: e.to_string(),
            })?;
        let raw = raw.unwrap_or_default();
        let dir = path.parent().unwrap_or(Path::new(""));
        let tls = match raw.tls_server_config {
            Some(t) => tls::settings(path, dir, t)?,
            None => None,
        };
        let http = raw.http_server_config.unwrap_or_default();
        let http2 = http.http2.unwrap_or(true);
        let headers = headers(path, http.headers.unwrap_or_default())?;
        let users = raw.basic_auth_users.unwrap_or_default();
        for (user, hash) in &users {
            check_bcrypt_hash(hash).map_err(|msg| {
                WebConfigError::invalid(path, format!("basic_auth_users.{user}"), msg)
            })?;
        }
        let rate_limit = match raw.rate_limit {
            None => None,
            Some(r) => {
                let interval = match r.interval.as_deref() {
                    None | Some("") => Duration::ZERO,
                    Some(s) => parse_go_duration(s)
                        .map_err(|msg| WebConfigError::invalid(path, "rate_limit.interval", msg))?,
                };
                // As in Prometheus, a zero interval turns the limiter off.
                (!interval.is_zero()).then_some(RateLimit {
                    burst: r.burst.unwrap_or(0),
                    interval,
                })
            }
        };
        if let Some(t) = &tls {
            tls::check_http2_cipher(path, t, http2)?;
        }
        Ok(WebConfig {
            tls,
            http2,
            headers,
            users,
            rate_limit,
        })
    }

    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            config: path.to_path_buf(),
            path: path.to_path_buf(),
            source,
        })?;
        WebConfig::parse(path, &text)
    }

    /// The files this configuration reads besides itself: a change to any of them means a reload.
    fn named_files(&self) -> Vec<PathBuf> {
        let Some(t) = &self.tls else { return vec![] };
        [Some(&t.cert), Some(&t.key), t.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|s| match s {
                PemSource::File(p) => Some(p.clone()),
                PemSource::Inline(_) => None,
            })
            .collect()
    }
}

fn headers(
    path: &Path,
    raw: BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigError> {
    let mut out = Vec::new();
    for (name, value) in raw {
        let field = format!("http_server_config.headers.{name}");
        let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(WebConfigError::invalid(
                path,
                field,
                format!("this header cannot be set (allowed: {})", names.join(", ")),
            ));
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(WebConfigError::invalid(
                path,
                field,
                format!("{value:?} is not one of {allowed:?}"),
            ));
        }
        // Blank means unset, as Prometheus documents.
        if value.is_empty() {
            continue;
        }
        let v = HeaderValue::from_str(&value)
            .map_err(|_| WebConfigError::invalid(path, &field, "not a valid HTTP header value"))?;
        let n = HeaderName::try_from(name.as_str())
            .map_err(|_| WebConfigError::invalid(path, &field, "not a valid HTTP header name"))?;
        out.push((n, v));
    }
    Ok(out)
}

/// What Go's `bcrypt.Cost` checks at start-up: the hash parses and its cost is in 4..=31.
fn check_bcrypt_hash(hash: &str) -> Result<(), String> {
    let parts: bcrypt::HashParts = hash
        .parse()
        .map_err(|e| format!("not a bcrypt hash ({e})"))?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(format!("bcrypt cost {cost} is outside 4..=31"));
    }
    Ok(())
}

/// A duration as Go's `time.ParseDuration` reads it (`1s`, `1.5s`, `1m30s`, `250ms`, `0`), which is
/// how Prometheus reads `rate_limit.interval`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (expected e.g. 1s, 250ms, 1m30s)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += num * secs;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// What a file looked like when last read; a different stamp means read it again.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: m.modified().ok(),
        len: m.len(),
        // Certificate rotation often renames a new file into place: the inode changes even when the
        // modification time is coarse or copied.
        inode: m.ino(),
    })
}

/// A configuration ready to serve with: the checked file plus its rustls configuration.
#[derive(Debug)]
pub struct Loaded {
    pub config: WebConfig,
    /// Built only when the file asks for TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Loaded {
    fn load(path: &Path) -> Result<Loaded, WebConfigError> {
        let config = WebConfig::read(path)?;
        let tls = match &config.tls {
            Some(t) => Some(tls::server_config(path, t, config.http2)?),
            None => None,
        };
        Ok(Loaded { config, tls })
    }
}

struct Watched {
    stamps: Vec<(PathBuf, Option<FileStamp>)>,
    current: Result<Arc<Loaded>, Arc<WebConfigError>>,
    checked_at: Instant,
}

/// The web config file being served with: re-read when it, or a certificate, key or CA file it names,
/// changes (Prometheus re-reads on every connection and request; comparing file stamps gives the same
/// effect without parsing and loading keys each time). Shared by the listener and the auth layer.
pub struct WebConfigFile {
    path: PathBuf,
    watched: Mutex<Watched>,
    /// Whether the listener was started with TLS: that cannot change without a restart.
    serves_tls: bool,
    auth: auth::BasicAuth,
    limiter: Option<auth::RateLimiter>,
}

/// How long a failed load is trusted before the files are read again even with unchanged stamps (a
/// reader can catch a file half-written and see the same stamp as the finished one).
const RETRY_FAILED_LOAD: Duration = Duration::from_secs(1);

impl WebConfigFile {
    /// Loads `path` at start-up; any error here should stop the server, as in Prometheus.
    pub fn open(path: &Path) -> Result<Arc<WebConfigFile>, WebConfigError> {
        let loaded = Loaded::load(path)?;
        let limiter = loaded.config.rate_limit.map(auth::RateLimiter::new);
        let stamps = stamps_for(path, &loaded.config);
        Ok(Arc::new(WebConfigFile {
            path: path.to_path_buf(),
            serves_tls: loaded.tls.is_some(),
            watched: Mutex::new(Watched {
                stamps,
                current: Ok(Arc::new(loaded)),
                checked_at: Instant::now(),
            }),
            auth: auth::BasicAuth::new(),
            limiter,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether connections are served with TLS (decided at start-up).
    pub fn serves_tls(&self) -> bool {
        self.serves_tls
    }

    /// The configuration now in force, reloaded first if any file changed. An error means the files
    /// are broken now: requests answer 500 and TLS handshakes fail until they are fixed, as in
    /// Prometheus (the last good configuration is not kept, so a broken edit cannot silently keep old
    /// users or certificates alive).
    pub fn current(&self) -> Result<Arc<Loaded>, Arc<WebConfigError>> {
        let mut w = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        let changed = w.stamps.iter().any(|(p, s)| stamp(p) != *s);
        let retry = w.current.is_err() && w.checked_at.elapsed() >= RETRY_FAILED_LOAD;
        if changed || retry {
            // Stamps are taken before reading so a change during the read is seen next time.
            let config_stamp = stamp(&self.path);
            w.checked_at = Instant::now();
            match Loaded::load(&self.path) {
                Ok(l) => {
                    let mut stamps = stamps_for(&self.path, &l.config);
                    stamps[0].1 = config_stamp;
                    w.stamps = stamps;
                    tracing::info!(file = %self.path.display(), "web config reloaded");
                    w.current = Ok(Arc::new(l));
                }
                Err(e) => {
                    tracing::error!(error = %e, "web config reload failed; refusing requests until it is fixed");
                    w.stamps = vec![(self.path.clone(), config_stamp)];
                    w.current = Err(Arc::new(e));
                }
            }
        }
        w.current.clone()
    }
}

fn stamps_for(path: &Path, config: &WebConfig) -> Vec<(PathBuf, Option<FileStamp>)> {
    std::iter::once(path.to_path_buf())
        .chain(config.named_files())
        .map(|p| {
            let s = stamp(&p);
            (p, s)
        })
        .collect()
}

#[cfg(test)]
mod tests;
