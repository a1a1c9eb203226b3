//! The `ember` server as a library, so tests and fuzz targets reach its pieces: the remote-write protocol
//! layer (`remote_write`). The HTTP API, scraping and self-metrics join it as issue 5 progresses.

pub mod remote_write;
