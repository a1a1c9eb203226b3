//! Scrape loop for targets from a `prometheus.yml` (later issue; not built yet).
