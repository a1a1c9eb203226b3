//! The `ember` server as a library, so tests and fuzz targets reach its pieces: the remote-write protocol
//! layer (`remote_write`), the HTTP surface (`http`), Prometheus' HTTP API (`api` for series, labels and
//! status, `query_api` for PromQL, `federate`; `params` reads their parameters, `query_json` writes
//! results), and scraping's server side (`config_reload`: the loaded `prometheus.yml`, its reloads and
//! `/-/reload`, `/-/quit`).

pub mod admin;
pub mod api;
pub mod compactor;
pub mod config_reload;
pub mod federate;
pub mod http;
pub mod offload;
pub mod params;
pub mod query_api;
pub mod query_json;
pub mod remote_read;
pub mod remote_write;
pub mod web_config;
