//! Target labels: from a target group entry and its scrape config to the
//! label set a scrape uses, as Prometheus' `scrape/target.go`.
//!
//! Owns the discovered labels (`__address__`, `job`, `__scheme__`,
//! `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__`,
//! `__param_<name>`), target relabeling, the checks Prometheus makes after it,
//! dropping `__meta_*` labels and defaulting `instance`, and the scrape URL.
//! It does not own discovery (reading file SD files) or scraping.

use std::collections::BTreeMap;

use ember_index::Labels;

use crate::Duration;
use crate::Error;
use crate::config::{ScrapeConfig, TargetGroup};
use crate::relabel::{self, Builder};

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";
/// Labels starting with this are internal: they steer the scrape and never
/// reach stored series.
pub const RESERVED_LABEL_PREFIX: &str = "__";

/// A target after relabeling.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Discovered labels, before relabeling (what Prometheus shows as
    /// "discovered labels").
    pub discovered: Labels,
    /// Labels after relabeling, internal `__` labels included.
    pub labels: Labels,
}

impl Target {
    /// The labels a scraped series gets from its target: every label not
    /// starting with `__`.
    pub fn series_labels(&self) -> Labels {
        let keep: Vec<_> = self
            .labels
            .iter()
            .filter(|l| !l.name.starts_with(RESERVED_LABEL_PREFIX))
            .cloned()
            .collect();
        Labels::new(keep).unwrap_or_default()
    }

    /// `scheme://address/path?params`, where `__param_<name>` labels override
    /// the first value of the config's parameter of that name.
    pub fn url(&self, cfg: &ScrapeConfig) -> String {
        let get = |n: &str| self.labels.get(n).unwrap_or_default();
        let mut params: BTreeMap<String, Vec<String>> = cfg.params.clone();
        for l in self.labels.iter() {
            if let Some(name) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
                let vals = params.entry(name.to_string()).or_default();
                if vals.is_empty() {
                    vals.push(l.value.clone());
                } else if let Some(first) = vals.first_mut() {
                    first.clone_from(&l.value);
                }
            }
        }
        let mut url = format!(
            "{}://{}{}",
            get(SCHEME_LABEL),
            get(ADDRESS_LABEL),
            get(METRICS_PATH_LABEL)
        );
        let mut sep = '?';
        for (k, vs) in &params {
            for v in vs {
                url.push(sep);
                url.push_str(&query_escape(k));
                url.push('=');
                url.push_str(&query_escape(v));
                sep = '&';
            }
        }
        url
    }

    /// The scrape interval and timeout, which relabeling may have changed.
    pub fn interval_and_timeout(&self) -> Option<(Duration, Duration)> {
        let i = Duration::parse(self.labels.get(SCRAPE_INTERVAL_LABEL)?).ok()?;
        let t = Duration::parse(self.labels.get(SCRAPE_TIMEOUT_LABEL)?).ok()?;
        Some((i, t))
    }
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest
/// percent-encoded.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The labels of one target before relabeling (Prometheus'
/// `PopulateDiscoveredLabels`): the target's own labels, then the group's
/// where the target has none of that name, then the config's defaults where
/// nothing set them.
pub fn discovered_labels(
    cfg: &ScrapeConfig,
    target: &BTreeMap<String, String>,
    group: &BTreeMap<String, String>,
) -> Builder {
    let mut b = Builder::default();
    for (n, v) in target {
        b.set(n, v);
    }
    for (n, v) in group {
        if !target.contains_key(n) {
            b.set(n, v);
        }
    }
    let defaults = [
        (JOB_LABEL, cfg.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, cfg.scrape_interval.to_string()),
        (SCRAPE_TIMEOUT_LABEL, cfg.scrape_timeout.to_string()),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (SCHEME_LABEL, cfg.scheme.clone()),
    ];
    for (n, v) in defaults {
        if b.get(n).is_empty() {
            b.set(n, &v);
        }
    }
    for (k, vs) in &cfg.params {
        let name = format!("{PARAM_LABEL_PREFIX}{k}");
        if let Some(first) = vs.first()
            && b.get(&name).is_empty()
        {
            b.set(&name, first);
        }
    }
    b
}

/// Builds one target (Prometheus' `PopulateLabels`). `Ok(None)` means
/// relabeling dropped it.
pub fn populate_labels(
    cfg: &ScrapeConfig,
    target: &BTreeMap<String, String>,
    group: &BTreeMap<String, String>,
) -> Result<Option<Target>, Error> {
    let mut b = discovered_labels(cfg, target, group);
    let discovered = b.labels();
    if !relabel::process_builder(&mut b, &cfg.relabel_configs) {
        return Ok(None);
    }
    let invalid = |b: &Builder, message: String| Error::InvalidTarget {
        labels: b.labels().to_string(),
        message,
    };
    let addr = b.get(ADDRESS_LABEL).to_string();
    if addr.is_empty() {
        return Err(invalid(&b, "no address".to_string()));
    }
    if addr.contains('/') {
        return Err(invalid(&b, format!("{addr:?} is not a valid hostname")));
    }
    let interval = b.get(SCRAPE_INTERVAL_LABEL).to_string();
    let interval_d = Duration::parse(&interval)
        .map_err(|e| invalid(&b, format!("error parsing scrape interval: {e}")))?;
    if interval_d.is_zero() {
        return Err(invalid(&b, "scrape interval cannot be 0".to_string()));
    }
    let timeout = b.get(SCRAPE_TIMEOUT_LABEL).to_string();
    let timeout_d = Duration::parse(&timeout)
        .map_err(|e| invalid(&b, format!("error parsing scrape timeout: {e}")))?;
    if timeout_d.is_zero() {
        return Err(invalid(&b, "scrape timeout cannot be 0".to_string()));
    }
    if timeout_d > interval_d {
        return Err(invalid(
            &b,
            format!(
                "scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})"
            ),
        ));
    }
    for l in b.snapshot() {
        if l.name.starts_with(META_LABEL_PREFIX) {
            b.del(&l.name);
        }
    }
    if b.get(INSTANCE_LABEL).is_empty() {
        b.set(INSTANCE_LABEL, &addr);
    }
    Ok(Some(Target {
        discovered,
        labels: b.labels(),
    }))
}

/// Every target of one group, in order; dropped targets are left out, and
/// invalid ones are returned as errors in place.
pub fn targets_from_group(cfg: &ScrapeConfig, group: &TargetGroup) -> Vec<Result<Target, Error>> {
    group
        .targets
        .iter()
        .filter_map(|addr| {
            let t = BTreeMap::from([(ADDRESS_LABEL.to_string(), addr.clone())]);
            populate_labels(cfg, &t, &group.labels).transpose()
        })
        .collect()
}

/// The targets of a scrape config's `static_configs`.
pub fn static_targets(cfg: &ScrapeConfig) -> Vec<Result<Target, Error>> {
    cfg.static_configs
        .iter()
        .flat_map(|g| targets_from_group(cfg, g))
        .collect()
}

#[cfg(test)]
mod tests;
