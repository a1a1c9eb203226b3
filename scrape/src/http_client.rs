//! The HTTP side of scraping: a client per scrape config built from its
//! `basic_auth`, `authorization`, `tls_config`, `proxy_url`,
//! `follow_redirects`, `enable_http2` and `enable_compression`, and one GET
//! per scrape with the headers Prometheus sends, a timeout and a cap on the
//! (decompressed) body size.
//!
//! Owns request headers, status and size checks and the error text a failed
//! scrape shows in the API. It does not own what the body means. TLS is
//! rustls; secrets in files (`password_file`, `credentials_file`, key and
//! certificate files) are read when the client is built, i.e. at each config
//! load.

use std::time::Duration as StdDuration;

use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};

use crate::Error;
use crate::config::{HttpClientConfig, SCRAPE_PROTOCOLS, ScrapeConfig, protocol_media_type};

/// What Prometheus 3 asks for by default (its default `scrape_protocols`),
/// best first, with UTF-8 names allowed.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// The `Accept` header for `scrape_protocols`, as Prometheus builds it:
/// descending q-values from 0.6, `escaping=allow-utf-8` on the 1.0.0
/// formats, anything else last. The protobuf format is left out: Ember does
/// not parse it.
pub fn accept_header(protocols: &[String]) -> String {
    let mut weight = SCRAPE_PROTOCOLS.len() + 1;
    let mut parts = Vec::new();
    for p in protocols {
        let Some(media) = protocol_media_type(p) else {
            continue;
        };
        if p == "PrometheusProto" {
            continue;
        }
        let mut v = media.to_string();
        if p.ends_with("1.0.0") {
            v.push_str(";escaping=allow-utf-8");
        }
        parts.push(format!("{v};q=0.{weight}"));
        weight -= 1;
    }
    parts.push(format!("*/*;q=0.{weight}"));
    parts.join(",")
}

/// The media type to parse a body as (Prometheus 3's rules): the
/// `Content-Type` if it names a text format Ember reads, else the job's
/// `fallback_scrape_protocol`, else the scrape fails.
fn resolve_content_type(ct: &str, fallback: Option<&str>) -> Result<String, Error> {
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let known = matches!(
        media.as_str(),
        "application/openmetrics-text" | "text/plain"
    );
    if known {
        return Ok(ct.to_string());
    }
    let fallback = fallback.and_then(protocol_media_type);
    let problem = if ct.trim().is_empty() {
        "non-compliant scrape target sending blank Content-Type".to_string()
    } else if media == "application/vnd.google.protobuf" {
        "received protobuf Content-Type, a format Ember does not read".to_string()
    } else {
        format!("received unsupported Content-Type {ct:?}")
    };
    match fallback {
        Some(f) if !f.starts_with("application/vnd.google.protobuf") => Ok(f.to_string()),
        _ => Err(Error::Scrape {
            message: format!(
                "{problem} and no usable fallback_scrape_protocol specified for target"
            ),
        }),
    }
}

/// A scraped body.
#[derive(Debug)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: String,
}

/// A configured HTTP client for one scrape config.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    headers: HeaderMap,
    /// 0: no limit.
    body_size_limit: u64,
    fallback: Option<String>,
}

impl Fetcher {
    /// Builds the client of `cfg`; fails naming the setting that cannot be used.
    pub fn new(cfg: &ScrapeConfig) -> Result<Fetcher, Error> {
        let job = &cfg.job_name;
        let bad = |message: String| Error::Scrape {
            message: format!("scrape config {job:?}: {message}"),
        };
        let h = &cfg.http_client;
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(if h.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            });
        if !h.enable_http2 {
            b = b.http1_only();
        }
        if !cfg.enable_compression {
            b = b.no_gzip();
        }
        match &h.proxy_url {
            Some(p) if !p.is_empty() => {
                let proxy =
                    reqwest::Proxy::all(p).map_err(|e| bad(format!("proxy_url {p:?}: {e}")))?;
                b = b.proxy(proxy);
            }
            _ => b = b.no_proxy(),
        }
        if let Some(tls) = &h.tls_config {
            b = tls_settings(b, tls).map_err(bad)?;
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(&accept_header(&cfg.scrape_protocols))
                .map_err(|e| bad(e.to_string()))?,
        );
        headers.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static(if cfg.enable_compression {
                "gzip"
            } else {
                "identity"
            }),
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("Ember/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(auth) = auth_header(h).map_err(bad)? {
            let mut v = HeaderValue::from_str(&auth)
                .map_err(|_| bad("credentials are not valid in an HTTP header".into()))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let client = b.build().map_err(|e| bad(e.to_string()))?;
        Ok(Fetcher {
            client,
            headers,
            body_size_limit: cfg.body_size_limit,
            fallback: cfg.fallback_scrape_protocol.clone(),
        })
    }

    /// GETs `url`; any status but 200, a timeout or a body over the limit is
    /// an error.
    pub async fn fetch(&self, url: &str, timeout: StdDuration) -> Result<Body, Error> {
        let fail = |message: String| Error::Scrape { message };
        let work = async {
            let mut resp = self
                .client
                .get(url)
                .headers(self.headers.clone())
                // The target's own timeout: relabeling may have changed it from the job's.
                .header(
                    "X-Prometheus-Scrape-Timeout-Seconds",
                    format_seconds(timeout),
                )
                .send()
                .await
                .map_err(|e| fail(describe(&e)))?;
            if resp.status() != reqwest::StatusCode::OK {
                return Err(fail(format!(
                    "server returned HTTP status {}",
                    resp.status()
                )));
            }
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let content_type = resolve_content_type(content_type, self.fallback.as_deref())?;
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| fail(describe(&e)))? {
                bytes.extend_from_slice(&chunk);
                if self.body_size_limit > 0 && bytes.len() as u64 > self.body_size_limit {
                    return Err(Error::BodySizeLimitExceeded {
                        limit: self.body_size_limit,
                    });
                }
            }
            Ok(Body {
                bytes,
                content_type,
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(fail(format!(
                "Get \"{url}\": context deadline exceeded (scrape timeout {})",
                format_seconds(timeout)
            ))),
        }
    }
}

/// reqwest's error with its causes, which hold the useful part ("connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn format_seconds(d: StdDuration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

fn read_secret(path: &str, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {what} {path:?}: {e}"))
}

/// The `Authorization` header value from `basic_auth` or `authorization`.
fn auth_header(h: &HttpClientConfig) -> Result<Option<String>, String> {
    use base64::Engine as _;
    if let Some(ba) = &h.basic_auth {
        if ba.username_ref.is_some() || ba.password_ref.is_some() {
            return Err("basic_auth username_ref/password_ref are not supported".into());
        }
        let user = match &ba.username_file {
            Some(f) => read_secret(f, "basic_auth username_file")?,
            None => ba.username.clone(),
        };
        let pass = match (&ba.password, &ba.password_file) {
            (Some(p), _) => p.0.clone(),
            (None, Some(f)) => read_secret(f, "basic_auth password_file")?,
            (None, None) => String::new(),
        };
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        return Ok(Some(format!("Basic {enc}")));
    }
    if let Some(a) = &h.authorization {
        if a.credentials_ref.is_some() {
            return Err("authorization credentials_ref is not supported".into());
        }
        let kind = a.kind.clone().unwrap_or_else(|| "Bearer".to_string());
        let cred = match (&a.credentials, &a.credentials_file) {
            (Some(c), _) => c.0.clone(),
            (None, Some(f)) => read_secret(f, "authorization credentials_file")?,
            (None, None) => String::new(),
        };
        return Ok(Some(format!("{kind} {cred}")));
    }
    Ok(None)
}

fn tls_settings(
    mut b: reqwest::ClientBuilder,
    tls: &crate::config::TlsConfig,
) -> Result<reqwest::ClientBuilder, String> {
    let pem = |inline: &Option<String>, file: &Option<String>, what: &str| match (inline, file) {
        (Some(s), _) => Ok(Some(s.clone().into_bytes())),
        (None, Some(f)) => std::fs::read(f)
            .map(Some)
            .map_err(|e| format!("tls_config: cannot read {what} {f:?}: {e}")),
        (None, None) => Ok(None),
    };
    if tls.ca_ref.is_some() || tls.cert_ref.is_some() || tls.key_ref.is_some() {
        return Err("tls_config *_ref settings are not supported".into());
    }
    if let Some(ca) = pem(&tls.ca, &tls.ca_file, "ca_file")? {
        let certs = reqwest::Certificate::from_pem_bundle(&ca)
            .map_err(|e| format!("tls_config: CA certificates: {e}"))?;
        if certs.is_empty() {
            return Err("tls_config: no CA certificate found in ca/ca_file".into());
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    let cert = pem(&tls.cert, &tls.cert_file, "cert_file")?;
    let key = pem(
        &tls.key.as_ref().map(|k| k.0.clone()),
        &tls.key_file,
        "key_file",
    )?;
    match (cert, key) {
        (Some(mut c), Some(k)) => {
            c.push(b'\n');
            c.extend_from_slice(&k);
            let id = reqwest::Identity::from_pem(&c)
                .map_err(|e| format!("tls_config: client certificate and key: {e}"))?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => return Err("tls_config: client cert and key must both be configured".into()),
    }
    if tls.insecure_skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    if let Some(v) = &tls.min_version {
        let ver = match v.as_str() {
            "TLS12" => reqwest::tls::Version::TLS_1_2,
            "TLS13" => reqwest::tls::Version::TLS_1_3,
            other => {
                return Err(format!(
                    "tls_config: min_version {other:?} is not supported (TLS12 or TLS13)"
                ));
            }
        };
        b = b.min_tls_version(ver);
    }
    if let Some(v) = &tls.max_version {
        let ver = match v.as_str() {
            "TLS12" => reqwest::tls::Version::TLS_1_2,
            "TLS13" => reqwest::tls::Version::TLS_1_3,
            other => {
                return Err(format!(
                    "tls_config: max_version {other:?} is not supported (TLS12 or TLS13)"
                ));
            }
        };
        b = b.max_tls_version(ver);
    }
    Ok(b)
}

#[cfg(test)]
mod tests;
