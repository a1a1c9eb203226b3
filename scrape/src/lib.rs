//! Prometheus-compatible scraping pieces for Ember: the `prometheus.yml`
//! model ([`config`]), relabeling ([`relabel`]), target label construction
//! ([`target`]) and the text exposition parsers ([`textparse`]).
//!
//! The scrape loop itself (HTTP, timing, staleness, appending) is not here
//! yet; the server builds it on these modules.

pub mod config;
pub mod duration;
pub mod relabel;
pub mod target;
pub mod textparse;

use std::path::PathBuf;

pub use config::Config;
pub use duration::Duration;

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
}
