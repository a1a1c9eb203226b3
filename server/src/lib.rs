//! The `ember` server as a library, so tests and fuzz targets reach its pieces: the remote-write protocol
//! layer (`remote_write`) and the HTTP surface (`http`). The query API, scraping and self-metrics join it as issue 5 progresses.

pub mod api;
pub mod http;
pub mod remote_read;
pub mod remote_write;
