//! The `prometheus.yml` model: what Ember reads from `--config.file`.
//!
//! Owns parsing (YAML through serde, every mapping closed to unknown fields
//! as Prometheus' strict unmarshalling is), Prometheus' defaults, the
//! validation Prometheus does at load time, and error messages that name the
//! field and line. Sections Prometheus knows but Ember does not act on yet
//! (alerting, rule files, service discovery other than static and file, …)
//! are accepted and listed in [`Config::unsupported`] so a real Prometheus
//! configuration loads. It does not own acting on any of it: the scrape loop,
//! discovery and remote write live elsewhere. The supported subset is
//! documented in `docs/format/config.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ember_index::Labels;
use serde::Deserialize;
use serde_norway::Value;

use crate::Duration;
use crate::Error;
use crate::relabel::RelabelConfig;

/// The configuration `ember` runs with when given no `--config.file`: scrape
/// itself every 15 s, as Prometheus' example configuration does.
pub const EMBEDDED_DEFAULT: &str = "\
global:
  scrape_interval: 15s
  evaluation_interval: 15s

scrape_configs:
  - job_name: ember
    static_configs:
      - targets: ['localhost:9090']
";

/// A whole configuration file, defaults applied and validated.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Config {
    pub global: GlobalConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
    pub remote_write: Vec<RemoteWriteConfig>,
    pub remote_read: Vec<RemoteReadConfig>,
    /// Settings present in the file that Ember accepts but ignores, as
    /// dotted paths (`alerting`, `scrape_configs[0].kubernetes_sd_configs`),
    /// so the server can warn about each.
    pub unsupported: Vec<String>,
}

/// `global:`.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub evaluation_interval: Duration,
    pub external_labels: Labels,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub keep_dropped_targets: u64,
    /// Largest scrape body accepted, in bytes after decompression; 0: no limit.
    pub body_size_limit: u64,
    /// Formats to ask for, best first (Prometheus' protocol names).
    pub scrape_protocols: Vec<String>,
}

/// Prometheus' scrape protocol names and the media types they stand for.
pub const SCRAPE_PROTOCOLS: [(&str, &str); 5] = [
    (
        "PrometheusProto",
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
    ),
    ("PrometheusText0.0.4", "text/plain;version=0.0.4"),
    ("PrometheusText1.0.0", "text/plain;version=1.0.0"),
    (
        "OpenMetricsText0.0.1",
        "application/openmetrics-text;version=0.0.1",
    ),
    (
        "OpenMetricsText1.0.0",
        "application/openmetrics-text;version=1.0.0",
    ),
];

/// Prometheus 3's default `scrape_protocols`.
pub const DEFAULT_SCRAPE_PROTOCOLS: [&str; 4] = [
    "OpenMetricsText1.0.0",
    "OpenMetricsText0.0.1",
    "PrometheusText1.0.0",
    "PrometheusText0.0.4",
];

/// The media type of a protocol name, if it is one.
pub fn protocol_media_type(name: &str) -> Option<&'static str> {
    SCRAPE_PROTOCOLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
}

fn check_protocols(list: &[String]) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    for p in list {
        if seen.contains(&p.to_lowercase()) {
            return Err(format!(
                "duplicated protocol in scrape_protocols, got {list:?}"
            ));
        }
        if protocol_media_type(p).is_none() {
            let mut names: Vec<&str> = SCRAPE_PROTOCOLS.iter().map(|(n, _)| *n).collect();
            names.sort_unstable();
            return Err(format!(
                "scrape_protocols: unknown scrape protocol {p}, supported: {names:?}"
            ));
        }
        seen.push(p.to_lowercase());
    }
    Ok(())
}

impl Default for GlobalConfig {
    fn default() -> GlobalConfig {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            evaluation_interval: Duration::from_secs(60),
            external_labels: Labels::empty(),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            body_size_limit: 0,
            scrape_protocols: DEFAULT_SCRAPE_PROTOCOLS
                .iter()
                .map(|p| p.to_string())
                .collect(),
        }
    }
}

/// One entry of `scrape_configs:`, with the global defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    /// Query parameters; the first value of each also becomes a
    /// `__param_<name>` target label.
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub enable_compression: bool,
    /// 0 means no limit, here and in the other limits.
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub keep_dropped_targets: u64,
    /// Largest scrape body accepted, in bytes after decompression; 0: no limit.
    pub body_size_limit: u64,
    /// Formats to ask for, best first (Prometheus' protocol names).
    pub scrape_protocols: Vec<String>,
    /// The protocol to read a body as when its `Content-Type` is blank or unknown.
    pub fallback_scrape_protocol: Option<String>,
    pub static_configs: Vec<TargetGroup>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub http_client: HttpClientConfig,
}

/// A `static_configs` entry (Prometheus' `targetgroup.Group`).
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A `file_sd_configs` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

/// `remote_write:` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteWriteConfig {
    pub url: String,
    pub name: String,
    pub remote_timeout: Duration,
    pub headers: BTreeMap<String, String>,
    pub write_relabel_configs: Vec<RelabelConfig>,
    pub send_exemplars: bool,
    pub send_native_histograms: bool,
    pub round_robin_dns: bool,
    /// `prometheus.WriteRequest` (1.0, the default) or `io.prometheus.write.v2.Request`.
    pub protobuf_message: String,
    pub http_client: HttpClientConfig,
}

/// `remote_read:` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteReadConfig {
    pub url: String,
    pub name: String,
    pub remote_timeout: Duration,
    pub headers: BTreeMap<String, String>,
    pub read_recent: bool,
    pub required_matchers: BTreeMap<String, String>,
    pub filter_external_labels: bool,
    pub chunked_read_limit: u64,
    pub http_client: HttpClientConfig,
}

/// The HTTP client settings Prometheus inlines into scrape, remote-write and
/// remote-read configs. Parsed and kept; whether the client honours each is
/// up to the code that makes requests.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls_config: Option<TlsConfig>,
    pub proxy_url: Option<String>,
    pub follow_redirects: bool,
    pub enable_http2: bool,
}

/// A secret from the file: printed as `<secret>` by `Debug`, as Prometheus
/// marshals it.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: String,
    pub username_file: Option<String>,
    pub username_ref: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<String>,
    pub password_ref: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Defaults to `Bearer`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<Secret>,
    pub credentials_file: Option<String>,
    pub credentials_ref: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca: Option<String>,
    pub ca_file: Option<String>,
    pub ca_ref: Option<String>,
    pub cert: Option<String>,
    pub cert_file: Option<String>,
    pub cert_ref: Option<String>,
    pub key: Option<Secret>,
    pub key_file: Option<String>,
    pub key_ref: Option<String>,
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
}

/// Declares a raw (as-written) struct with the HTTP client fields Prometheus
/// inlines, so every struct that has them stays closed to unknown fields.
macro_rules! with_http_client_fields {
    (struct $name:ident { $($field:ident : $ty:ty,)* }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $($field: $ty,)*
            basic_auth: Option<BasicAuth>,
            authorization: Option<Authorization>,
            tls_config: Option<TlsConfig>,
            proxy_url: Option<String>,
            follow_redirects: Option<bool>,
            enable_http2: Option<bool>,
            // Accepted, not acted on.
            oauth2: Option<Value>,
            bearer_token: Option<Value>,
            bearer_token_file: Option<Value>,
            no_proxy: Option<Value>,
            proxy_from_environment: Option<Value>,
            proxy_connect_header: Option<Value>,
            http_headers: Option<Value>,
        }

        impl $name {
            fn http_client(&self, default_http2: bool) -> HttpClientConfig {
                HttpClientConfig {
                    basic_auth: self.basic_auth.clone(),
                    authorization: self.authorization.clone(),
                    tls_config: self.tls_config.clone(),
                    proxy_url: self.proxy_url.clone(),
                    follow_redirects: self.follow_redirects.unwrap_or(true),
                    enable_http2: self.enable_http2.unwrap_or(default_http2),
                }
            }

            fn unsupported_http(&self, at: &str, out: &mut Vec<String>) {
                let fields = [
                    ("oauth2", self.oauth2.is_some()),
                    ("bearer_token", self.bearer_token.is_some()),
                    ("bearer_token_file", self.bearer_token_file.is_some()),
                    ("no_proxy", self.no_proxy.is_some()),
                    ("proxy_from_environment", self.proxy_from_environment.is_some()),
                    ("proxy_connect_header", self.proxy_connect_header.is_some()),
                    ("http_headers", self.http_headers.is_some()),
                ];
                out.extend(fields.iter().filter(|f| f.1).map(|f| format!("{at}.{}", f.0)));
            }
        }
    };
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    global: Option<RawGlobal>,
    scrape_configs: Option<Vec<RawScrapeConfig>>,
    remote_write: Option<Vec<RawRemoteWrite>>,
    remote_read: Option<Vec<RawRemoteRead>>,
    // Accepted, not acted on.
    runtime: Option<Value>,
    alerting: Option<Value>,
    rule_files: Option<Value>,
    scrape_config_files: Option<Value>,
    storage: Option<Value>,
    tracing: Option<Value>,
    otlp: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    scrape_interval: Option<Duration>,
    scrape_timeout: Option<Duration>,
    evaluation_interval: Option<Duration>,
    external_labels: Option<BTreeMap<String, String>>,
    sample_limit: Option<u64>,
    target_limit: Option<u64>,
    label_limit: Option<u64>,
    label_name_length_limit: Option<u64>,
    label_value_length_limit: Option<u64>,
    keep_dropped_targets: Option<u64>,
    // Accepted, not acted on.
    rule_query_offset: Option<Duration>,
    query_log_file: Option<Value>,
    scrape_failure_log_file: Option<Value>,
    scrape_protocols: Option<Vec<String>>,
    body_size_limit: Option<Value>,
    scrape_native_histograms: Option<Value>,
    always_scrape_classic_histograms: Option<Value>,
    convert_classic_histograms_to_nhcb: Option<Value>,
    extra_scrape_metrics: Option<Value>,
    metric_name_validation_scheme: Option<Value>,
    metric_name_escaping_scheme: Option<Value>,
}

with_http_client_fields! {
    struct RawScrapeConfig {
        job_name: Option<String>,
        honor_labels: Option<bool>,
        honor_timestamps: Option<bool>,
        track_timestamps_staleness: Option<bool>,
        params: Option<BTreeMap<String, Vec<String>>>,
        scrape_interval: Option<Duration>,
        scrape_timeout: Option<Duration>,
        metrics_path: Option<String>,
        scheme: Option<String>,
        enable_compression: Option<bool>,
        sample_limit: Option<u64>,
        target_limit: Option<u64>,
        label_limit: Option<u64>,
        label_name_length_limit: Option<u64>,
        label_value_length_limit: Option<u64>,
        keep_dropped_targets: Option<u64>,
        static_configs: Option<Vec<TargetGroup>>,
        file_sd_configs: Option<Vec<RawFileSd>>,
        relabel_configs: Option<Vec<RelabelConfig>>,
        metric_relabel_configs: Option<Vec<RelabelConfig>>,
        // Accepted, not acted on.
        scrape_protocols: Option<Vec<String>>,
        fallback_scrape_protocol: Option<String>,
        scrape_native_histograms: Option<Value>,
        always_scrape_classic_histograms: Option<Value>,
        convert_classic_histograms_to_nhcb: Option<Value>,
        scrape_failure_log_file: Option<Value>,
        body_size_limit: Option<Value>,
        native_histogram_bucket_limit: Option<Value>,
        native_histogram_min_bucket_factor: Option<Value>,
        metric_name_validation_scheme: Option<Value>,
        metric_name_escaping_scheme: Option<Value>,
        extra_scrape_metrics: Option<Value>,
        azure_sd_configs: Option<Value>,
        consul_sd_configs: Option<Value>,
        digitalocean_sd_configs: Option<Value>,
        docker_sd_configs: Option<Value>,
        dockerswarm_sd_configs: Option<Value>,
        dns_sd_configs: Option<Value>,
        ec2_sd_configs: Option<Value>,
        eureka_sd_configs: Option<Value>,
        gce_sd_configs: Option<Value>,
        hetzner_sd_configs: Option<Value>,
        http_sd_configs: Option<Value>,
        ionos_sd_configs: Option<Value>,
        kubernetes_sd_configs: Option<Value>,
        kuma_sd_configs: Option<Value>,
        lightsail_sd_configs: Option<Value>,
        linode_sd_configs: Option<Value>,
        marathon_sd_configs: Option<Value>,
        nerve_sd_configs: Option<Value>,
        nomad_sd_configs: Option<Value>,
        openstack_sd_configs: Option<Value>,
        ovhcloud_sd_configs: Option<Value>,
        puppetdb_sd_configs: Option<Value>,
        scaleway_sd_configs: Option<Value>,
        serverset_sd_configs: Option<Value>,
        stackit_sd_configs: Option<Value>,
        triton_sd_configs: Option<Value>,
        uyuni_sd_configs: Option<Value>,
        vultr_sd_configs: Option<Value>,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSd {
    files: Option<Vec<String>>,
    refresh_interval: Option<Duration>,
}

with_http_client_fields! {
    struct RawRemoteWrite {
        url: Option<String>,
        name: Option<String>,
        remote_timeout: Option<Duration>,
        headers: Option<BTreeMap<String, String>>,
        write_relabel_configs: Option<Vec<RelabelConfig>>,
        send_exemplars: Option<bool>,
        send_native_histograms: Option<bool>,
        round_robin_dns: Option<bool>,
        protobuf_message: Option<String>,
        // Accepted, not acted on.
        failed_request_logging: Option<Value>,
        queue_config: Option<Value>,
        metadata_config: Option<Value>,
        sigv4: Option<Value>,
        azuread: Option<Value>,
        google_iam: Option<Value>,
    }
}

with_http_client_fields! {
    struct RawRemoteRead {
        url: Option<String>,
        name: Option<String>,
        remote_timeout: Option<Duration>,
        headers: Option<BTreeMap<String, String>>,
        read_recent: Option<bool>,
        required_matchers: Option<BTreeMap<String, String>>,
        filter_external_labels: Option<bool>,
        chunked_read_limit: Option<u64>,
    }
}

/// Lists the names of `Some` fields, for [`Config::unsupported`].
macro_rules! note_unsupported {
    ($out:expr, $at:expr, $raw:expr, [$($field:ident),* $(,)?]) => {
        $(
            if $raw.$field.is_some() {
                $out.push(format!("{}{}", $at, stringify!($field)));
            }
        )*
    };
}

/// Headers Prometheus sets itself and refuses in `headers:`.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "authorization",
    "content-encoding",
    "content-type",
    "x-prometheus-remote-write-version",
    "user-agent",
];

impl Config {
    /// Reads and parses a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            Error::Config {
                file: None,
                line,
                message,
            } => Error::Config {
                file: Some(path.to_path_buf()),
                line,
                message,
            },
            other => other,
        })
    }

    /// Parses configuration text. An empty document is the default
    /// configuration (no scrape jobs), as in Prometheus.
    pub fn parse(text: &str) -> Result<Config, Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let raw: Option<RawConfig> = serde_norway::from_str(text).map_err(yaml_error)?;
        match raw {
            None => Ok(Config::default()),
            Some(raw) => build(raw).map_err(|message| Error::Config {
                file: None,
                line: None,
                message,
            }),
        }
    }

    /// Makes the relative file paths in the configuration (file discovery
    /// files, secret, CA, certificate and key files) relative to `dir`, the
    /// configuration file's directory, as Prometheus resolves them.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut String| {
            if !p.is_empty() && Path::new(p.as_str()).is_relative() {
                *p = dir.join(p.as_str()).display().to_string();
            }
        };
        for sc in &mut self.scrape_configs {
            for f in &mut sc.file_sd_configs {
                f.files.iter_mut().for_each(fix);
            }
            let h = &mut sc.http_client;
            if let Some(b) = &mut h.basic_auth {
                b.username_file.iter_mut().for_each(fix);
                b.password_file.iter_mut().for_each(fix);
            }
            if let Some(a) = &mut h.authorization {
                a.credentials_file.iter_mut().for_each(fix);
            }
            if let Some(t) = &mut h.tls_config {
                t.ca_file.iter_mut().for_each(fix);
                t.cert_file.iter_mut().for_each(fix);
                t.key_file.iter_mut().for_each(fix);
            }
        }
    }

    /// The configuration `ember` uses without `--config.file`.
    pub fn embedded_default() -> Config {
        Config::parse(EMBEDDED_DEFAULT)
            .unwrap_or_else(|e| unreachable!("embedded default config is valid: {e}"))
    }
}

fn build(raw: RawConfig) -> Result<Config, String> {
    let mut unsupported = Vec::new();
    note_unsupported!(
        unsupported,
        "",
        raw,
        [
            runtime,
            alerting,
            rule_files,
            scrape_config_files,
            storage,
            tracing,
            otlp
        ]
    );
    let global = build_global(raw.global.unwrap_or_default(), &mut unsupported)?;

    let mut scrape_configs: Vec<ScrapeConfig> = Vec::new();
    for (i, rs) in raw
        .scrape_configs
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let sc = build_scrape(
            rs,
            &global,
            &format!("scrape_configs[{i}]."),
            &mut unsupported,
        )?;
        if let Some(first) = scrape_configs
            .iter()
            .position(|c| c.job_name == sc.job_name)
        {
            return Err(format!(
                "found multiple scrape configs with job name {:?} (scrape_configs[{first}] and scrape_configs[{i}])",
                sc.job_name
            ));
        }
        scrape_configs.push(sc);
    }

    let mut remote_write: Vec<RemoteWriteConfig> = Vec::new();
    for (i, rw) in raw.remote_write.unwrap_or_default().into_iter().enumerate() {
        let at = format!("remote_write[{i}].");
        let url = rw.url.clone().filter(|u| !u.is_empty());
        let url = url.ok_or_else(|| format!("url for remote_write is empty ({at})"))?;
        check_url(&url)?;
        let headers = rw.headers.clone().unwrap_or_default();
        check_headers(&headers)?;
        let name = rw.name.clone().unwrap_or_default();
        if !name.is_empty() && remote_write.iter().any(|w| w.name == name) {
            return Err(format!(
                "found multiple remote write configs with job name {name:?}"
            ));
        }
        let protobuf_message = rw
            .protobuf_message
            .clone()
            .unwrap_or_else(|| "prometheus.WriteRequest".to_string());
        if !matches!(
            protobuf_message.as_str(),
            "prometheus.WriteRequest" | "io.prometheus.write.v2.Request"
        ) {
            return Err(format!(
                "invalid protobuf_message value: unknown type for remote write protobuf message {protobuf_message}, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request"
            ));
        }
        rw.unsupported_http(&format!("remote_write[{i}]"), &mut unsupported);
        note_unsupported!(
            unsupported,
            at,
            rw,
            [
                failed_request_logging,
                queue_config,
                metadata_config,
                sigv4,
                azuread,
                google_iam
            ]
        );
        check_auth(&rw.http_client(false), &at)?;
        remote_write.push(RemoteWriteConfig {
            http_client: rw.http_client(false),
            url,
            name,
            remote_timeout: rw.remote_timeout.unwrap_or(Duration::from_secs(30)),
            headers,
            write_relabel_configs: rw.write_relabel_configs.unwrap_or_default(),
            send_exemplars: rw.send_exemplars.unwrap_or(false),
            send_native_histograms: rw.send_native_histograms.unwrap_or(false),
            round_robin_dns: rw.round_robin_dns.unwrap_or(false),
            protobuf_message,
        });
    }

    let mut remote_read: Vec<RemoteReadConfig> = Vec::new();
    for (i, rr) in raw.remote_read.unwrap_or_default().into_iter().enumerate() {
        let at = format!("remote_read[{i}]");
        let url = rr.url.clone().filter(|u| !u.is_empty());
        let url = url.ok_or_else(|| format!("url for remote_read is empty ({at})"))?;
        check_url(&url)?;
        let headers = rr.headers.clone().unwrap_or_default();
        check_headers(&headers)?;
        let name = rr.name.clone().unwrap_or_default();
        if !name.is_empty() && remote_read.iter().any(|r| r.name == name) {
            return Err(format!(
                "found multiple remote read configs with job name {name:?}"
            ));
        }
        rr.unsupported_http(&at, &mut unsupported);
        check_auth(&rr.http_client(true), &at)?;
        remote_read.push(RemoteReadConfig {
            http_client: rr.http_client(true),
            url,
            name,
            remote_timeout: rr.remote_timeout.unwrap_or(Duration::from_secs(60)),
            headers,
            read_recent: rr.read_recent.unwrap_or(false),
            required_matchers: rr.required_matchers.unwrap_or_default(),
            filter_external_labels: rr.filter_external_labels.unwrap_or(true),
            chunked_read_limit: rr.chunked_read_limit.unwrap_or(50_000_000),
        });
    }

    Ok(Config {
        global,
        scrape_configs,
        remote_write,
        remote_read,
        unsupported,
    })
}

fn build_global(g: RawGlobal, unsupported: &mut Vec<String>) -> Result<GlobalConfig, String> {
    let def = GlobalConfig::default();
    note_unsupported!(
        unsupported,
        "global.",
        g,
        [
            rule_query_offset,
            query_log_file,
            scrape_failure_log_file,
            scrape_native_histograms,
            always_scrape_classic_histograms,
            convert_classic_histograms_to_nhcb,
            extra_scrape_metrics,
            metric_name_validation_scheme,
            metric_name_escaping_scheme,
        ]
    );
    let external_labels = g.external_labels.unwrap_or_default();
    if let Some(name) = external_labels.keys().find(|k| k.is_empty()) {
        return Err(format!("{name:?} is not a valid label name"));
    }
    let external_labels = Labels::from_pairs(&external_labels).map_err(|e| e.to_string())?;
    // A zero interval means "unset", as in Prometheus.
    let scrape_interval = g
        .scrape_interval
        .filter(|d| !d.is_zero())
        .unwrap_or(def.scrape_interval);
    let scrape_timeout = g.scrape_timeout.unwrap_or_default();
    if scrape_timeout > scrape_interval {
        return Err("global scrape timeout greater than scrape interval".to_string());
    }
    let scrape_timeout = if scrape_timeout.is_zero() {
        def.scrape_timeout.min(scrape_interval)
    } else {
        scrape_timeout
    };
    Ok(GlobalConfig {
        scrape_interval,
        scrape_timeout,
        evaluation_interval: g
            .evaluation_interval
            .filter(|d| !d.is_zero())
            .unwrap_or(def.evaluation_interval),
        external_labels,
        sample_limit: g.sample_limit.unwrap_or(0),
        target_limit: g.target_limit.unwrap_or(0),
        label_limit: g.label_limit.unwrap_or(0),
        label_name_length_limit: g.label_name_length_limit.unwrap_or(0),
        label_value_length_limit: g.label_value_length_limit.unwrap_or(0),
        keep_dropped_targets: g.keep_dropped_targets.unwrap_or(0),
        body_size_limit: match &g.body_size_limit {
            Some(v) => parse_byte_size(v).map_err(|e| format!("global.body_size_limit: {e}"))?,
            None => 0,
        },
        scrape_protocols: match g.scrape_protocols {
            Some(list) => {
                check_protocols(&list)?;
                note_proto(&list, "global.", unsupported);
                list
            }
            None => def.scrape_protocols,
        },
    })
}

fn build_scrape(
    rs: RawScrapeConfig,
    global: &GlobalConfig,
    at: &str,
    unsupported: &mut Vec<String>,
) -> Result<ScrapeConfig, String> {
    let job_name = rs.job_name.clone().unwrap_or_default();
    if job_name.is_empty() {
        return Err(format!("job_name is empty ({})", at.trim_end_matches('.')));
    }
    rs.unsupported_http(at.trim_end_matches('.'), unsupported);
    note_unsupported!(
        unsupported,
        at,
        rs,
        [
            scrape_native_histograms,
            always_scrape_classic_histograms,
            convert_classic_histograms_to_nhcb,
            scrape_failure_log_file,
            native_histogram_bucket_limit,
            native_histogram_min_bucket_factor,
            metric_name_validation_scheme,
            metric_name_escaping_scheme,
            extra_scrape_metrics,
            azure_sd_configs,
            consul_sd_configs,
            digitalocean_sd_configs,
            docker_sd_configs,
            dockerswarm_sd_configs,
            dns_sd_configs,
            ec2_sd_configs,
            eureka_sd_configs,
            gce_sd_configs,
            hetzner_sd_configs,
            http_sd_configs,
            ionos_sd_configs,
            kubernetes_sd_configs,
            kuma_sd_configs,
            lightsail_sd_configs,
            linode_sd_configs,
            marathon_sd_configs,
            nerve_sd_configs,
            nomad_sd_configs,
            openstack_sd_configs,
            ovhcloud_sd_configs,
            puppetdb_sd_configs,
            scaleway_sd_configs,
            serverset_sd_configs,
            stackit_sd_configs,
            triton_sd_configs,
            uyuni_sd_configs,
            vultr_sd_configs,
        ]
    );
    let http_client = rs.http_client(true);
    check_auth(&http_client, at)?;

    let relabel_configs = rs.relabel_configs.unwrap_or_default();
    let static_configs = rs.static_configs.unwrap_or_default();
    // Prometheus catches URLs in place of host:port unless relabeling could
    // still turn them into addresses.
    if relabel_configs.is_empty() {
        for t in static_configs.iter().flat_map(|g| &g.targets) {
            if t.contains('/') {
                return Err(format!("{t:?} is not a valid hostname"));
            }
        }
    }
    let mut file_sd_configs = Vec::new();
    for f in rs.file_sd_configs.unwrap_or_default() {
        let files = f.files.unwrap_or_default();
        if files.is_empty() {
            return Err(
                "file service discovery config must contain at least one path name".to_string(),
            );
        }
        if let Some(bad) = files.iter().find(|f| !valid_file_sd_name(f)) {
            return Err(format!("path name {bad:?} is not valid for file discovery"));
        }
        file_sd_configs.push(FileSdConfig {
            files,
            refresh_interval: f.refresh_interval.unwrap_or(Duration::from_secs(300)),
        });
    }

    let scrape_interval = rs
        .scrape_interval
        .filter(|d| !d.is_zero())
        .unwrap_or(global.scrape_interval);
    let scrape_timeout = rs.scrape_timeout.unwrap_or_default();
    if scrape_timeout > scrape_interval {
        return Err(format!(
            "scrape timeout greater than scrape interval for scrape config with job name {job_name:?}"
        ));
    }
    let scrape_timeout = if scrape_timeout.is_zero() {
        global.scrape_timeout.min(scrape_interval)
    } else {
        scrape_timeout
    };
    let or_global = |v: Option<u64>, g: u64| v.filter(|v| *v != 0).unwrap_or(g);
    let scrape_protocols = match &rs.scrape_protocols {
        Some(list) => {
            check_protocols(list)?;
            note_proto(list, at, unsupported);
            list.clone()
        }
        None => global.scrape_protocols.clone(),
    };
    if let Some(f) = &rs.fallback_scrape_protocol
        && protocol_media_type(f).is_none()
    {
        return Err(format!(
            "invalid fallback_scrape_protocol for scrape config with job name {job_name:?}: unknown scrape protocol {f}"
        ));
    }
    let body_size_limit = match &rs.body_size_limit {
        Some(v) => Some(parse_byte_size(v).map_err(|e| format!("{at}body_size_limit: {e}"))?),
        None => None,
    };
    Ok(ScrapeConfig {
        body_size_limit: or_global(body_size_limit, global.body_size_limit),
        scrape_protocols,
        fallback_scrape_protocol: rs.fallback_scrape_protocol.clone(),
        job_name,
        scrape_interval,
        scrape_timeout,
        metrics_path: rs
            .metrics_path
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/metrics".to_string()),
        scheme: rs
            .scheme
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "http".to_string()),
        params: rs.params.unwrap_or_default(),
        honor_labels: rs.honor_labels.unwrap_or(false),
        honor_timestamps: rs.honor_timestamps.unwrap_or(true),
        track_timestamps_staleness: rs.track_timestamps_staleness.unwrap_or(false),
        enable_compression: rs.enable_compression.unwrap_or(true),
        sample_limit: or_global(rs.sample_limit, global.sample_limit),
        target_limit: or_global(rs.target_limit, global.target_limit),
        label_limit: or_global(rs.label_limit, global.label_limit),
        label_name_length_limit: or_global(
            rs.label_name_length_limit,
            global.label_name_length_limit,
        ),
        label_value_length_limit: or_global(
            rs.label_value_length_limit,
            global.label_value_length_limit,
        ),
        keep_dropped_targets: or_global(rs.keep_dropped_targets, global.keep_dropped_targets),
        static_configs,
        file_sd_configs,
        relabel_configs,
        metric_relabel_configs: rs.metric_relabel_configs.unwrap_or_default(),
        http_client,
    })
}

/// Ember does not read the protobuf format: a list naming it is accepted
/// and the protocol noted as unsupported (it is left out of requests).
fn note_proto(list: &[String], at: &str, unsupported: &mut Vec<String>) {
    if list.iter().any(|p| p == "PrometheusProto") {
        unsupported.push(format!("{at}scrape_protocols.PrometheusProto"));
    }
}

/// A byte size as Prometheus' `units.Base2Bytes` reads it: a bare number of
/// bytes, or a number with B, KB, MB, GB, TB, PB (powers of 1024; the `iB`
/// forms alike).
fn parse_byte_size(v: &Value) -> Result<u64, String> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    let Some(s) = v.as_str() else {
        return Err(format!("{v:?} is not a size such as 10MB"));
    };
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected a number and a unit such as 10MB"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "KB" | "KIB" => 10,
        "MB" | "MIB" => 20,
        "GB" | "GIB" => 30,
        "TB" | "TIB" => 40,
        "PB" | "PIB" => 50,
        _ => return Err(format!("invalid size {s:?}: unknown unit {unit:?}")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))
}

/// Prometheus' file SD name pattern: a path with at most one `*` in the last
/// element, ending in `.json`, `.yml` or `.yaml` (either case).
fn valid_file_sd_name(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    if !matches!(ext, "json" | "yml" | "yaml" | "JSON" | "YML" | "YAML") {
        return false;
    }
    match stem.split_once('*') {
        None => true,
        Some((_, after)) => !after.contains('*') && !after.contains('/'),
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let ok = ["http://", "https://"]
        .iter()
        .any(|p| url.len() > p.len() && url.starts_with(p));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid URL {url:?}: only http and https URLs are accepted"
        ))
    }
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), String> {
    for h in headers.keys() {
        if RESERVED_HEADERS.contains(&h.to_lowercase().as_str()) {
            return Err(format!("{h} is a reserved header. It must not be changed"));
        }
    }
    Ok(())
}

fn check_auth(c: &HttpClientConfig, at: &str) -> Result<(), String> {
    if c.basic_auth.is_some() && c.authorization.is_some() {
        return Err(format!(
            "at most one of basic_auth, oauth2 & authorization must be configured ({})",
            at.trim_end_matches('.')
        ));
    }
    if let Some(a) = &c.authorization
        && a.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("basic"))
    {
        return Err(
            "authorization type cannot be set to \"basic\", use \"basic_auth\" instead".to_string(),
        );
    }
    Ok(())
}

/// Turns a YAML error into [`Error::Config`] with its line, rewording
/// serde's unknown-field message into Prometheus'
/// (`field foo not found in type config.ScrapeConfig`).
fn yaml_error(e: serde_norway::Error) -> Error {
    let line = e.location().map(|l| l.line());
    let mut text = e.to_string();
    // serde_norway appends " at line L column C"; the line is kept separately.
    if let Some(i) = text.rfind(" at line ") {
        text.truncate(i);
    }
    // And prefixes the path to the failing node, "scrape_configs[0].x: ".
    let (path, msg) = match text.find(": ") {
        Some(i) if !text[..i].contains(' ') => (text[..i].to_string(), text[i + 2..].to_string()),
        _ => (String::new(), text),
    };
    let message = match unknown_field(&msg) {
        Some(field) => format!("field {field} not found in type {}", go_type(&path)),
        None if path.is_empty() => msg,
        None => format!("{path}: {msg}"),
    };
    Error::Config {
        file: None,
        line,
        message,
    }
}

fn unknown_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// The Prometheus (Go) type of the mapping at a serde path, for messages
/// that read like Prometheus'.
fn go_type(path: &str) -> &'static str {
    let last = path.rsplit('.').next().unwrap_or("");
    let last = last.split('[').next().unwrap_or("");
    match last {
        "" => "config.Config",
        "global" => "config.GlobalConfig",
        "scrape_configs" => "config.ScrapeConfig",
        "static_configs" => "targetgroup.Group",
        "file_sd_configs" => "file.SDConfig",
        "relabel_configs" | "metric_relabel_configs" | "write_relabel_configs" => "relabel.Config",
        "remote_write" => "config.RemoteWriteConfig",
        "remote_read" => "config.RemoteReadConfig",
        "basic_auth" => "config.BasicAuth",
        "authorization" => "config.Authorization",
        "tls_config" => "config.TLSConfig",
        _ => "(unknown)",
    }
}

#[cfg(test)]
mod tests;
