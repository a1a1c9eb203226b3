//! One target's scrape loop: when to scrape, what to send, and how a scraped
//! body becomes samples in the database, as Prometheus' `scrape/scrape.go`.
//!
//! Owns the schedule (interval with a per-target offset so targets spread
//! over the interval), the HTTP request ([`crate::http_client`] builds the
//! client), the scrape cache that maps each exposed series line to its
//! series ref so steady-state scrapes build no label sets, attaching target
//! labels (`honor_labels`), `metric_relabel_configs`, the sample and label
//! limits, staleness markers, the synthetic report series (`up`, …) and the
//! target's health for the API. Each scrape is one engine commit. It does
//! not own which targets exist (see [`crate::pools`]) nor parsing the text
//! formats ([`crate::textparse`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant, SystemTime, UNIX_EPOCH};

use ember::{Appender, Db, Label, Labels, SeriesRef};
use ember_index::METRIC_NAME;
use parking_lot::Mutex;

use crate::Error;
use crate::config::ScrapeConfig;
use crate::http_client::Fetcher;
use crate::relabel::{self, Builder, RelabelConfig};
use crate::target::Target;
use crate::textparse::{self, Entry, MetricType};

/// Prometheus' staleness marker: a NaN with this exact bit pattern ends a
/// series at its timestamp (the same constant as `ember_query::value`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Names of the series every scrape reports about itself, in Prometheus'
/// order.
pub const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// The settings of one scrape config that decide how a body is appended.
#[derive(Clone, Debug, PartialEq)]
pub struct AppendSettings {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    /// 0: no limit, here and below.
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

impl AppendSettings {
    pub fn from_config(cfg: &ScrapeConfig) -> AppendSettings {
        AppendSettings {
            honor_labels: cfg.honor_labels,
            honor_timestamps: cfg.honor_timestamps,
            track_timestamps_staleness: cfg.track_timestamps_staleness,
            sample_limit: cfg.sample_limit,
            label_limit: cfg.label_limit,
            label_name_length_limit: cfg.label_name_length_limit,
            label_value_length_limit: cfg.label_value_length_limit,
            metric_relabel_configs: cfg.metric_relabel_configs.clone(),
        }
    }
}

/// What one append of a scrape did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Samples in the body (`scrape_samples_scraped`).
    pub scraped: u64,
    /// Samples left after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub post_relabel: u64,
    /// Series new to this target's cache (`scrape_series_added`).
    pub series_added: u64,
    /// Samples the engine refused, by reason; they do not fail the scrape.
    pub out_of_order: u64,
    pub duplicate: u64,
    pub out_of_bounds: u64,
    pub other_refused: u64,
    /// Staleness markers written.
    pub stale_markers: u64,
}

/// Counters shared by all loops, exported on `/metrics` under Prometheus'
/// names.
#[derive(Debug, Default)]
pub struct ScrapeCounters {
    pub exceeded_sample_limit: std::sync::atomic::AtomicU64,
    pub exceeded_body_size_limit: std::sync::atomic::AtomicU64,
    pub exceeded_label_limits: std::sync::atomic::AtomicU64,
    pub sample_out_of_order: std::sync::atomic::AtomicU64,
    pub sample_duplicate_timestamp: std::sync::atomic::AtomicU64,
    pub sample_out_of_bounds: std::sync::atomic::AtomicU64,
    pub scrapes: std::sync::atomic::AtomicU64,
    pub failed_scrapes: std::sync::atomic::AtomicU64,
}

impl ScrapeCounters {
    fn add(c: &std::sync::atomic::AtomicU64, n: u64) {
        if n > 0 {
            c.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A metric family's metadata as the target exposed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

struct CacheEntry {
    r: SeriesRef,
    labels: Labels,
    /// Iteration in which the line was last in a body.
    seen: u64,
    /// Iteration in which the series last counted for staleness (lines
    /// with their own timestamp do not, unless `track_timestamps_staleness`).
    tracked: u64,
    /// `tracked` before the current iteration changed it, to undo a failed append.
    prev_tracked: u64,
}

/// The per-target memory of earlier scrapes (Prometheus' `scrapeCache`):
/// exposed series line to series, lines metric relabeling dropped, and which
/// series the last scrape held, for staleness. Survives a config reload of
/// its target so nothing goes stale or gets rebuilt.
#[derive(Default)]
pub struct ScrapeCache {
    series: HashMap<Box<[u8]>, CacheEntry>,
    /// Lines metric relabeling dropped, with the iteration they were last seen.
    dropped: HashMap<Box<[u8]>, u64>,
    /// Incremented after every scrape; starts at 1 so 0 means "never".
    iter: u64,
    key: Vec<u8>,
    report_refs: [Option<SeriesRef>; 5],
    metadata: BTreeMap<String, Metadata>,
}

impl ScrapeCache {
    pub fn new() -> ScrapeCache {
        ScrapeCache {
            iter: 1,
            ..Default::default()
        }
    }

    /// Series the cache holds (for tests and the API).
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Metadata (`# TYPE`, `# HELP`, `# UNIT`) from the latest scrapes.
    pub fn metadata(&self) -> &BTreeMap<String, Metadata> {
        &self.metadata
    }

    /// Appends one scraped body and the staleness markers for series that
    /// were in the previous scrape and are not in this one. On `Err` the
    /// caller rolls `app` back and calls [`ScrapeCache::append_failed`] on a
    /// fresh appender.
    pub fn append_body(
        &mut self,
        app: &mut Appender,
        body: &[u8],
        content_type: &str,
        ts: i64,
        target: &Labels,
        settings: &AppendSettings,
    ) -> Result<AppendOutcome, Error> {
        let res = self.append_samples(app, body, content_type, ts, target, settings);
        match res {
            Ok(mut out) => {
                out.stale_markers = self.append_stale(app, ts);
                self.finish_iteration(true);
                Ok(out)
            }
            Err(e) => {
                // Forget what the failed attempt marked as seen, so the stale
                // pass of the failed scrape sees the previous scrape.
                for e in self.series.values_mut() {
                    if e.tracked == self.iter {
                        e.tracked = e.prev_tracked;
                    }
                }
                Err(e)
            }
        }
    }

    /// A failed scrape (or a failed append): every series of the previous
    /// scrape goes stale at `ts`, as if the target had returned nothing.
    pub fn append_failed(&mut self, app: &mut Appender, ts: i64) -> u64 {
        let n = self.append_stale(app, ts);
        self.finish_iteration(false);
        n
    }

    /// The target went away: stale markers at `ts` for every series of the
    /// last scrape and for the report series.
    pub fn append_end_of_run(&mut self, app: &mut Appender, ts: i64) -> u64 {
        let mut n = self.append_stale(app, ts);
        for r in self.report_refs.iter().flatten() {
            if app.append_ref(*r, ts, stale_nan()).is_ok() {
                n += 1;
            }
        }
        self.finish_iteration(false);
        n
    }

    fn append_samples(
        &mut self,
        app: &mut Appender,
        body: &[u8],
        content_type: &str,
        ts: i64,
        target: &Labels,
        settings: &AppendSettings,
    ) -> Result<AppendOutcome, Error> {
        let mut out = AppendOutcome::default();
        let iter = self.iter;
        let mut limit_exceeded = false;
        for entry in textparse::parse(content_type, body) {
            let sample = match entry? {
                Entry::Sample(s) => s,
                Entry::Type { family, kind } => {
                    self.family(&family).kind = kind;
                    continue;
                }
                Entry::Help { family, text } => {
                    let m = self.family(&family);
                    if m.help != text {
                        m.help = text.into_owned();
                    }
                    continue;
                }
                Entry::Unit { family, unit } => {
                    let m = self.family(&family);
                    if m.unit != unit {
                        m.unit = unit.into_owned();
                    }
                    continue;
                }
            };
            out.scraped += 1;
            self.key.clear();
            self.key.extend_from_slice(sample.name.as_bytes());
            for (n, v) in &sample.labels {
                self.key.push(0xff);
                self.key.extend_from_slice(n.as_bytes());
                self.key.push(0xfe);
                self.key.extend_from_slice(v.as_bytes());
            }
            let t = match sample.timestamp_ms {
                Some(t) if settings.honor_timestamps => t,
                _ => ts,
            };
            let track = sample.timestamp_ms.is_none()
                || !settings.honor_timestamps
                || settings.track_timestamps_staleness;
            if let Some(seen) = self.dropped.get_mut(self.key.as_slice()) {
                *seen = iter;
                continue;
            }
            let (r, new_labels) = match self.series.get_mut(self.key.as_slice()) {
                Some(e) => {
                    e.seen = iter;
                    if track && e.tracked != iter {
                        e.prev_tracked = e.tracked;
                        e.tracked = iter;
                    }
                    (Some(e.r), None)
                }
                None => {
                    let raw = sample.to_labels().map_err(|e| Error::Scrape {
                        message: format!("invalid series {}: {e}", sample.name),
                    })?;
                    let Some(labels) = mutate_sample_labels(&raw, target, settings) else {
                        self.dropped
                            .insert(self.key.clone().into_boxed_slice(), iter);
                        continue;
                    };
                    if labels.metric_name().is_none_or(str::is_empty) {
                        return Err(Error::Scrape {
                            message: "__name__ label is missing".to_string(),
                        });
                    }
                    check_label_limits(&labels, settings)?;
                    (None, Some(labels))
                }
            };
            out.post_relabel += 1;
            if limit_exceeded
                || (settings.sample_limit > 0 && out.post_relabel > settings.sample_limit)
            {
                // Keep counting what the body holds; nothing more is appended.
                limit_exceeded = true;
                continue;
            }
            let appended = match (r, new_labels) {
                (Some(r), _) => match app.append_ref(r, t, sample.value) {
                    Err(ember::Error::UnknownSeriesRef(_)) => {
                        // The head dropped the series (no samples for a while): recreate it.
                        match self.series.get_mut(self.key.as_slice()) {
                            Some(e) => app.append(&e.labels, t, sample.value).map(|r| e.r = r),
                            None => Ok(()),
                        }
                    }
                    other => other,
                },
                (None, Some(labels)) => match app.append(&labels, t, sample.value) {
                    Ok(r) => {
                        self.series.insert(
                            self.key.clone().into_boxed_slice(),
                            CacheEntry {
                                r,
                                labels,
                                seen: iter,
                                tracked: if track { iter } else { 0 },
                                prev_tracked: 0,
                            },
                        );
                        out.series_added += 1;
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                (None, None) => Ok(()),
            };
            match appended {
                Ok(()) => {}
                Err(ember::Error::OutOfOrderSample { .. }) => out.out_of_order += 1,
                Err(ember::Error::DuplicateSampleForTimestamp { .. }) => out.duplicate += 1,
                Err(ember::Error::OutOfBounds { .. }) => out.out_of_bounds += 1,
                Err(ember::Error::InvalidLabels(e)) => {
                    return Err(Error::Scrape {
                        message: format!("invalid series {}: {e}", sample.name),
                    });
                }
                Err(_) => out.other_refused += 1,
            }
        }
        if limit_exceeded {
            return Err(Error::SampleLimitExceeded {
                limit: settings.sample_limit,
                samples: out.post_relabel,
            });
        }
        Ok(out)
    }

    /// A family's metadata entry; allocates only for a family not seen before.
    fn family(&mut self, name: &str) -> &mut Metadata {
        if !self.metadata.contains_key(name) {
            self.metadata.insert(name.to_string(), Metadata::default());
        }
        self.metadata
            .get_mut(name)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// Stale markers for series tracked in the previous iteration and not in
    /// this one.
    fn append_stale(&mut self, app: &mut Appender, ts: i64) -> u64 {
        let prev = self.iter - 1;
        let mut n = 0;
        for e in self.series.values_mut() {
            if e.tracked != prev || prev == 0 {
                continue;
            }
            let res = match app.append_ref(e.r, ts, stale_nan()) {
                Err(ember::Error::UnknownSeriesRef(_)) => {
                    app.append(&e.labels, ts, stale_nan()).map(|r| e.r = r)
                }
                other => other,
            };
            // A marker older than a sample with its own timestamp is refused: nothing to end then.
            if res.is_ok() {
                n += 1;
            }
        }
        n
    }

    fn finish_iteration(&mut self, success: bool) {
        if success {
            // Lines not in this successful scrape were just marked stale; a
            // line that comes back is rebuilt, which keeps the cache bounded
            // by what the target exposes.
            let iter = self.iter;
            self.series.retain(|_, e| e.seen == iter);
            self.dropped.retain(|_, seen| *seen == iter);
        }
        self.iter += 1;
    }

    /// Appends the five report series at `ts`.
    pub fn append_report(
        &mut self,
        app: &mut Appender,
        target: &Labels,
        ts: i64,
        values: [f64; 5],
    ) -> Result<(), Error> {
        for (i, (name, v)) in REPORT_SERIES.iter().zip(values).enumerate() {
            let res = match self.report_refs[i] {
                Some(r) => match app.append_ref(r, ts, v) {
                    Err(ember::Error::UnknownSeriesRef(_)) => Err(()),
                    other => Ok(other),
                },
                None => Err(()),
            };
            let res = match res {
                Ok(r) => r,
                Err(()) => {
                    let labels = report_labels(name, target);
                    app.append(&labels, ts, v).map(|r| {
                        self.report_refs[i] = Some(r);
                    })
                }
            };
            match res {
                Ok(())
                | Err(ember::Error::OutOfOrderSample { .. })
                | Err(ember::Error::DuplicateSampleForTimestamp { .. }) => {}
                Err(e) => return Err(Error::Storage(e)),
            }
        }
        Ok(())
    }
}

/// A report series' labels: its name and the target's labels.
fn report_labels(name: &str, target: &Labels) -> Labels {
    let mut v: Vec<Label> = target
        .iter()
        .filter(|l| l.name != METRIC_NAME)
        .cloned()
        .collect();
    v.push(Label::new(METRIC_NAME, name));
    Labels::new(v).unwrap_or_default()
}

/// Attaches the target's labels to a scraped series and applies metric
/// relabeling (Prometheus' `mutateSampleLabels`). With `honor_labels` the
/// series' own labels win; without, the target's win and a clashing exposed
/// label is kept as `exported_<name>` (more `exported_` prefixes while that
/// name is taken, shortest names first). `None`: relabeling dropped it.
pub fn mutate_sample_labels(
    series: &Labels,
    target: &Labels,
    settings: &AppendSettings,
) -> Option<Labels> {
    let mut b = Builder::new(series);
    if settings.honor_labels {
        for l in target.iter() {
            if series.get(&l.name).is_none_or(str::is_empty) {
                b.set(&l.name, &l.value);
            }
        }
    } else {
        let mut conflicts: Vec<&Label> = Vec::new();
        for l in target.iter() {
            if let Some(existing) = series
                .iter()
                .find(|s| s.name == l.name && !s.value.is_empty())
            {
                conflicts.push(existing);
            }
            b.set(&l.name, &l.value);
        }
        conflicts.sort_by_key(|l| l.name.len());
        for l in conflicts {
            let mut name = l.name.clone();
            loop {
                name = format!("exported_{name}");
                if b.get(&name).is_empty() {
                    b.set(&name, &l.value);
                    break;
                }
            }
        }
    }
    if settings.metric_relabel_configs.is_empty() {
        return Some(b.labels());
    }
    if !relabel::process_builder(&mut b, &settings.metric_relabel_configs) {
        return None;
    }
    let out = b.labels();
    if out.is_empty() { None } else { Some(out) }
}

/// `label_limit`, `label_name_length_limit`, `label_value_length_limit`,
/// with Prometheus' messages (names and values cut at 50 characters).
fn check_label_limits(labels: &Labels, s: &AppendSettings) -> Result<(), Error> {
    let metric: String = labels
        .metric_name()
        .unwrap_or("")
        .chars()
        .take(50)
        .collect();
    let n = labels.len() as u64;
    if s.label_limit > 0 && n > s.label_limit {
        return Err(Error::LabelLimitExceeded {
            message: format!(
                "label_limit exceeded (metric: {metric}, number of labels: {n}, limit: {})",
                s.label_limit
            ),
        });
    }
    for l in labels.iter() {
        let name: String = l.name.chars().take(50).collect();
        let nlen = l.name.chars().count() as u64;
        if s.label_name_length_limit > 0 && nlen > s.label_name_length_limit {
            return Err(Error::LabelLimitExceeded {
                message: format!(
                    "label_name_length_limit exceeded (metric: {metric}, label name: {name}, length: {nlen}, limit: {})",
                    s.label_name_length_limit
                ),
            });
        }
        let vlen = l.value.chars().count() as u64;
        if s.label_value_length_limit > 0 && vlen > s.label_value_length_limit {
            let value: String = l.value.chars().take(50).collect();
            return Err(Error::LabelLimitExceeded {
                message: format!(
                    "label_value_length_limit exceeded (metric: {metric}, label name: {name}, value: {value:?}, length: {vlen}, limit: {})",
                    s.label_value_length_limit
                ),
            });
        }
    }
    Ok(())
}

/// A target's health as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The latest scrape of a target.
#[derive(Clone, Debug)]
pub struct TargetStatus {
    pub health: Health,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_duration: StdDuration,
}

impl Default for TargetStatus {
    fn default() -> TargetStatus {
        TargetStatus {
            health: Health::Unknown,
            last_error: String::new(),
            last_scrape: None,
            last_duration: StdDuration::ZERO,
        }
    }
}

/// What a scrape loop shares with its pool: the cache (handed to the
/// replacement loop on reload) and the status.
pub struct LoopShared {
    pub cache: Mutex<ScrapeCache>,
    pub status: Mutex<TargetStatus>,
    /// Set while the loop must not scrape (the pool's `target_limit` is
    /// exceeded): each scrape fails with this instead.
    pub forced_error: Mutex<Option<String>>,
}

impl LoopShared {
    pub fn new() -> Arc<LoopShared> {
        Arc::new(LoopShared {
            cache: Mutex::new(ScrapeCache::new()),
            status: Mutex::new(TargetStatus::default()),
            forced_error: Mutex::new(None),
        })
    }
}

/// Everything one loop needs, fixed for its life.
pub struct LoopSpec {
    pub target: Target,
    /// The target's labels that scraped series get (no `__` labels).
    pub series_labels: Labels,
    pub url: String,
    pub interval: StdDuration,
    pub timeout: StdDuration,
    pub settings: AppendSettings,
    pub fetcher: Fetcher,
    /// Mixed into the offset so two Ember servers with different external
    /// labels spread the same targets differently, as Prometheus does.
    pub offset_seed: u64,
}

/// How a loop is told to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// The target went away: mark its series stale.
    Stale,
    /// Replaced by a new loop for the same target, or the server stops: no
    /// markers (the replacement continues the series; a restarted server
    /// starts them over).
    Quiet,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// FNV-1a, for the offset hash; stable across runs and platforms.
pub fn fnv64a(data: &[u8], mut h: u64) -> u64 {
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The hash identifying a target in its pool: its labels and URL (a change
/// of either is a different target).
pub fn target_hash(labels: &Labels, url: &str) -> u64 {
    let h = fnv64a(labels.to_string().as_bytes(), FNV_OFFSET);
    fnv64a(url.as_bytes(), h)
}

/// How long after `now_ns` the first scrape of a target with `hash` is due:
/// each target keeps a fixed phase within the interval, pinned to absolute
/// time, so restarts and reloads keep the spacing (Prometheus' `offset`).
pub fn scrape_offset(interval: StdDuration, hash: u64, seed: u64, now_ns: u128) -> StdDuration {
    let iv = interval.as_nanos().max(1);
    let base = iv - now_ns % iv;
    let offset = u128::from(hash ^ seed) % iv;
    let mut next = base + offset;
    if next > iv {
        next -= iv;
    }
    StdDuration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
}

/// Runs a target's loop until `stop` says so: scrape, append, report, wait.
pub async fn run(
    db: Db,
    spec: Arc<LoopSpec>,
    shared: Arc<LoopShared>,
    counters: Arc<ScrapeCounters>,
    mut stop: tokio::sync::watch::Receiver<Option<StopMode>>,
) {
    let hash = target_hash(&spec.target.labels, &spec.url);
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let first = scrape_offset(spec.interval, hash, spec.offset_seed, now_ns);
    let mut next = tokio::time::Instant::now() + first;
    let mode = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            changed = stop.changed() => {
                // A dropped sender means the pool is gone: stop quietly.
                break if changed.is_ok() { (*stop.borrow()).unwrap_or(StopMode::Quiet) } else { StopMode::Quiet };
            }
        }
        tokio::select! {
            () = scrape_once(&db, &spec, &shared, &counters) => {}
            changed = stop.changed() => {
                break if changed.is_ok() { (*stop.borrow()).unwrap_or(StopMode::Quiet) } else { StopMode::Quiet };
            }
        };
        // Keep the phase: the next scrape is one interval after this one was due,
        // skipping any slots a slow scrape overran.
        next += spec.interval;
        let now = tokio::time::Instant::now();
        while next <= now {
            next += spec.interval;
        }
    };
    if mode == StopMode::Stale {
        let db2 = db.clone();
        let shared2 = shared.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut app = db2.appender();
            shared2.cache.lock().append_end_of_run(&mut app, now_ms());
            app.commit()
        })
        .await;
        if let Ok(Err(e)) = res {
            tracing::warn!(url = %spec.url, error = %e, "writing staleness markers failed");
        }
    }
}

/// One scrape: fetch, append, report, update the status.
async fn scrape_once(
    db: &Db,
    spec: &Arc<LoopSpec>,
    shared: &Arc<LoopShared>,
    counters: &Arc<ScrapeCounters>,
) {
    let start = Instant::now();
    let wall = SystemTime::now();
    let ts = now_ms();
    let forced = shared.forced_error.lock().clone();
    let fetched = match forced {
        Some(message) => Err(Error::Scrape { message }),
        None => spec.fetcher.fetch(&spec.url, spec.timeout).await,
    };
    let db = db.clone();
    let spec2 = spec.clone();
    let shared2 = shared.clone();
    let counters2 = counters.clone();
    let res = tokio::task::spawn_blocking(move || {
        append_scrape(&db, &spec2, &shared2, &counters2, fetched, ts, start)
    })
    .await;
    let err = match res {
        Ok(r) => r,
        Err(e) => Some(format!("internal error: {e}")),
    };
    let mut st = shared.status.lock();
    st.last_scrape = Some(wall);
    st.last_duration = start.elapsed();
    match err {
        None => {
            st.health = Health::Up;
            st.last_error.clear();
        }
        Some(e) => {
            st.health = Health::Down;
            st.last_error = e;
        }
    }
}

/// The blocking part of a scrape: one appender, committed once. Returns the
/// scrape's error, if any.
fn append_scrape(
    db: &Db,
    spec: &LoopSpec,
    shared: &LoopShared,
    counters: &ScrapeCounters,
    fetched: Result<crate::http_client::Body, Error>,
    ts: i64,
    start: Instant,
) -> Option<String> {
    let mut cache = shared.cache.lock();
    let mut app = db.appender();
    counters
        .scrapes
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (outcome, err) = match fetched {
        Ok(body) => {
            match cache.append_body(
                &mut app,
                &body.bytes,
                &body.content_type,
                ts,
                &spec.series_labels,
                &spec.settings,
            ) {
                Ok(o) => (o, None),
                Err(e) => {
                    app.rollback();
                    app = db.appender();
                    cache.append_failed(&mut app, ts);
                    (AppendOutcome::default(), Some(e))
                }
            }
        }
        Err(e) => {
            cache.append_failed(&mut app, ts);
            (AppendOutcome::default(), Some(e))
        }
    };
    if let Some(e) = &err {
        counters
            .failed_scrapes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match e {
            Error::SampleLimitExceeded { .. } => {
                ScrapeCounters::add(&counters.exceeded_sample_limit, 1)
            }
            Error::BodySizeLimitExceeded { .. } => {
                ScrapeCounters::add(&counters.exceeded_body_size_limit, 1)
            }
            Error::LabelLimitExceeded { .. } => {
                ScrapeCounters::add(&counters.exceeded_label_limits, 1)
            }
            _ => {}
        }
    }
    ScrapeCounters::add(&counters.sample_out_of_order, outcome.out_of_order);
    ScrapeCounters::add(&counters.sample_duplicate_timestamp, outcome.duplicate);
    ScrapeCounters::add(&counters.sample_out_of_bounds, outcome.out_of_bounds);
    let (scraped, post) = match &err {
        // Prometheus still reports how many samples a body over the limit held.
        Some(Error::SampleLimitExceeded { samples, .. }) => (*samples, *samples),
        _ => (outcome.scraped, outcome.post_relabel),
    };
    let values = [
        if err.is_none() { 1.0 } else { 0.0 },
        start.elapsed().as_secs_f64(),
        scraped as f64,
        post as f64,
        outcome.series_added as f64,
    ];
    let mut report_err = cache
        .append_report(&mut app, &spec.series_labels, ts, values)
        .err();
    drop(cache);
    if let Err(e) = app.commit() {
        report_err = Some(Error::Storage(e));
    }
    if let Some(e) = &report_err {
        tracing::warn!(url = %spec.url, error = %e, "appending scrape results failed");
    }
    err.or(report_err).map(|e| e.to_string())
}

#[cfg(test)]
mod tests;
