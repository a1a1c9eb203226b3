//! Prometheus-compatible scraping for Ember: the `prometheus.yml` model
//! ([`config`]), relabeling ([`relabel`]), target label construction
//! ([`target`]), the text exposition parsers ([`textparse`]), the HTTP client
//! ([`http_client`]), one target's scrape loop ([`scrape_loop`]: timing,
//! appending, staleness, report series), and the scrape pools that run the
//! loops of a configuration and follow its reloads ([`pools`], with file
//! discovery in [`discovery`]).
//!
//! The server owns flags, signals, reload endpoints and the HTTP API on top.

pub mod config;
pub mod discovery;
pub mod duration;
pub mod http_client;
pub mod pools;
pub mod relabel;
pub mod scrape_loop;
pub mod target;
pub mod textparse;

use std::path::PathBuf;

pub use config::Config;
pub use duration::Duration;
pub use pools::ScrapePools;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The configuration is not valid; `line` is 1-based where the problem
    /// has a position in the text.
    #[error("{}{}{message}", .file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default(), .line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Config {
        file: Option<PathBuf>,
        line: Option<usize>,
        message: String,
    },
    /// A target's labels after relabeling do not make a scrapable target.
    #[error("invalid target {labels}: {message}")]
    InvalidTarget { labels: String, message: String },
    /// Scraped text is not valid exposition format; `line` is 1-based.
    #[error("line {line}: {message}")]
    Exposition { line: usize, message: String },
    /// A scrape failed: the request, the response, or the body's content.
    #[error("{message}")]
    Scrape { message: String },
    /// More samples than `sample_limit` after metric relabeling.
    #[error("sample limit exceeded ({samples} samples, limit {limit})")]
    SampleLimitExceeded { limit: u64, samples: u64 },
    /// A body larger than `body_size_limit`.
    #[error("body size limit exceeded (limit {limit} bytes)")]
    BodySizeLimitExceeded { limit: u64 },
    /// A series over `label_limit` or a label length limit.
    #[error("{message}")]
    LabelLimitExceeded { message: String },
    /// The database refused a commit.
    #[error("storage: {0}")]
    Storage(#[from] ember::Error),
    /// A file discovery file could not be used.
    #[error("file discovery: {path}: {message}")]
    Discovery { path: PathBuf, message: String },
}
