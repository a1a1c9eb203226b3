//! Scrape pools: one per `scrape_configs` job, each running one scrape loop
//! per target, following configuration reloads and file discovery (as
//! Prometheus' scrape manager and scrape pools).
//!
//! Owns which loops run: on [`ScrapePools::apply_config`] a job whose
//! settings did not change keeps its loops untouched; a changed job keeps
//! the loops of targets whose labels and URL are the same, restarting them
//! with the new settings (the scrape cache carried over when the settings
//! that shape stored series are unchanged); targets that disappear have
//! their series marked stale. Owns the dropped-target list, `target_limit`,
//! the API snapshot, and reporting service discovery kinds Ember does not
//! implement. It does not own scraping itself ([`crate::scrape_loop`]) or
//! reading discovery files ([`crate::discovery`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration as StdDuration;

use ember::{Db, Labels};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Error;
use crate::config::{Config, ScrapeConfig, TargetGroup};
use crate::discovery::FileSdState;
use crate::http_client::Fetcher;
use crate::scrape_loop::{
    self, AppendSettings, LoopShared, LoopSpec, Metadata, ScrapeCounters, StopMode, TargetStatus,
};
use crate::target::{self, ADDRESS_LABEL, RESERVED_LABEL_PREFIX, Target};

/// How often file discovery checks its files for changes.
const FILE_SD_POLL: StdDuration = StdDuration::from_secs(1);

/// All scrape pools of the running configuration.
pub struct ScrapePools {
    db: Db,
    handle: tokio::runtime::Handle,
    counters: Arc<ScrapeCounters>,
    state: Mutex<State>,
    /// Settings present in the configuration that Ember does not act on
    /// (service discovery kinds among them), from the latest apply.
    unsupported: Mutex<Vec<String>>,
    unsupported_sd: AtomicU64,
    file_sd_read_errors: AtomicU64,
    me: Weak<ScrapePools>,
}

#[derive(Default)]
struct State {
    pools: BTreeMap<String, Pool>,
    offset_seed: u64,
    stopped: bool,
}

struct Pool {
    cfg: Arc<ScrapeConfig>,
    fetcher: Fetcher,
    loops: HashMap<u64, LoopHandle>,
    dropped: Vec<Labels>,
    dropped_count: usize,
    /// Groups from file discovery; static groups come from `cfg`.
    file_groups: Vec<TargetGroup>,
    discovery: Option<JoinHandle<()>>,
}

struct LoopHandle {
    spec: Arc<LoopSpec>,
    shared: Arc<LoopShared>,
    stop: watch::Sender<Option<StopMode>>,
    task: JoinHandle<()>,
}

impl LoopHandle {
    fn stop(self, mode: StopMode) -> JoinHandle<()> {
        let _ = self.stop.send(Some(mode));
        self.task
    }
}

/// One active target as the API shows it.
#[derive(Clone, Debug)]
pub struct ActiveTarget {
    pub pool: String,
    pub discovered: Labels,
    /// The target's labels without internal (`__`) labels.
    pub labels: Labels,
    pub url: String,
    pub status: TargetStatus,
    pub interval: String,
    pub timeout: String,
}

/// A target relabeling dropped.
#[derive(Clone, Debug)]
pub struct DroppedTarget {
    pub pool: String,
    pub discovered: Labels,
}

/// The targets of all pools, sorted by pool.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub active: Vec<ActiveTarget>,
    pub dropped: Vec<DroppedTarget>,
    /// All dropped targets per pool, including those not kept in `dropped`.
    pub dropped_counts: BTreeMap<String, usize>,
}

impl ScrapePools {
    /// Pools for `db`, running none until [`ScrapePools::apply_config`].
    /// Must be called inside a Tokio runtime, on which the loops then run.
    pub fn new(db: Db) -> Arc<ScrapePools> {
        Arc::new_cyclic(|me| ScrapePools {
            db,
            handle: tokio::runtime::Handle::current(),
            counters: Arc::new(ScrapeCounters::default()),
            state: Mutex::new(State::default()),
            unsupported: Mutex::new(Vec::new()),
            unsupported_sd: AtomicU64::new(0),
            file_sd_read_errors: AtomicU64::new(0),
            me: me.clone(),
        })
    }

    pub fn counters(&self) -> &ScrapeCounters {
        &self.counters
    }

    /// Service discovery configurations in the running configuration that
    /// Ember does not implement (their targets are not scraped).
    pub fn unsupported_sd_configs(&self) -> u64 {
        self.unsupported_sd.load(Ordering::Relaxed)
    }

    /// Settings of the running configuration that Ember accepts but does
    /// not act on, as dotted paths.
    pub fn unsupported(&self) -> Vec<String> {
        self.unsupported.lock().clone()
    }

    pub fn file_sd_read_errors(&self) -> u64 {
        self.file_sd_read_errors.load(Ordering::Relaxed)
    }

    /// The job names of the running pools, sorted.
    pub fn pool_names(&self) -> Vec<String> {
        self.state.lock().pools.keys().cloned().collect()
    }

    /// Number of pools and of active targets.
    pub fn sizes(&self) -> (usize, usize) {
        let st = self.state.lock();
        (
            st.pools.len(),
            st.pools.values().map(|p| p.loops.len()).sum(),
        )
    }

    /// Makes the pools follow `cfg`. Every client is built first, so an
    /// unusable setting (an unreadable CA file, say) fails the whole apply
    /// and leaves the running pools as they were.
    pub fn apply_config(&self, cfg: &Config) -> Result<(), Error> {
        let mut fetchers = Vec::with_capacity(cfg.scrape_configs.len());
        for sc in &cfg.scrape_configs {
            fetchers.push(Fetcher::new(sc)?);
        }
        let unsupported_sd: Vec<&String> = cfg
            .unsupported
            .iter()
            .filter(|u| u.ends_with("_sd_configs"))
            .collect();
        for u in &unsupported_sd {
            tracing::warn!(
                setting = %u,
                "service discovery kind not supported by Ember: its targets are not scraped"
            );
        }
        self.unsupported_sd
            .store(unsupported_sd.len() as u64, Ordering::Relaxed);
        self.unsupported.lock().clone_from(&cfg.unsupported);

        let seed = scrape_loop::fnv64a(
            cfg.global.external_labels.to_string().as_bytes(),
            scrape_loop::FNV_OFFSET,
        );
        let mut st = self.state.lock();
        if st.stopped {
            return Ok(());
        }
        let seed_changed = st.offset_seed != seed;
        st.offset_seed = seed;
        let jobs: Vec<&str> = cfg
            .scrape_configs
            .iter()
            .map(|c| c.job_name.as_str())
            .collect();
        let gone: Vec<String> = st
            .pools
            .keys()
            .filter(|k| !jobs.contains(&k.as_str()))
            .cloned()
            .collect();
        for job in gone {
            if let Some(p) = st.pools.remove(&job) {
                tracing::info!(job = %job, "stopping scrape pool");
                p.stop(StopMode::Stale);
            }
        }
        for (sc, fetcher) in cfg.scrape_configs.iter().zip(fetchers) {
            let st = &mut *st;
            match st.pools.get_mut(&sc.job_name) {
                Some(p) if *p.cfg == *sc && !seed_changed => {}
                Some(p) => {
                    let file_sd_changed = p.cfg.file_sd_configs != sc.file_sd_configs;
                    p.cfg = Arc::new(sc.clone());
                    p.fetcher = fetcher;
                    if file_sd_changed {
                        if let Some(d) = p.discovery.take() {
                            d.abort();
                        }
                        p.file_groups.clear();
                    }
                    self.sync_pool(p, st.offset_seed, true);
                    if file_sd_changed {
                        self.start_discovery(p);
                    }
                }
                None => {
                    let mut p = Pool {
                        cfg: Arc::new(sc.clone()),
                        fetcher,
                        loops: HashMap::new(),
                        dropped: Vec::new(),
                        dropped_count: 0,
                        file_groups: Vec::new(),
                        discovery: None,
                    };
                    self.start_discovery(&mut p);
                    self.sync_pool(&mut p, st.offset_seed, false);
                    st.pools.insert(sc.job_name.clone(), p);
                }
            }
        }
        Ok(())
    }

    /// Reads a pool's discovery files once now (so its targets start at
    /// once) and starts the task that follows them.
    fn start_discovery(&self, p: &mut Pool) {
        if p.cfg.file_sd_configs.is_empty() {
            return;
        }
        let cfgs = p.cfg.file_sd_configs.clone();
        let mut sd = FileSdState::default();
        sd.refresh(&cfgs);
        self.note_read_errors(&mut sd);
        p.file_groups = sd.groups();
        let me = self.me.clone();
        let job = p.cfg.job_name.clone();
        p.discovery = Some(self.handle.spawn(async move {
            loop {
                tokio::time::sleep(FILE_SD_POLL).await;
                // A few stat calls; a changed file is read whole, as at start-up.
                let changed = sd.refresh(&cfgs);
                let groups = sd.groups();
                let Some(pools) = me.upgrade() else { return };
                pools.note_read_errors(&mut sd);
                if changed {
                    pools.update_file_groups(&job, groups);
                }
            }
        }));
    }

    fn note_read_errors(&self, sd: &mut FileSdState) {
        let n = std::mem::take(&mut sd.read_errors);
        self.file_sd_read_errors.fetch_add(n, Ordering::Relaxed);
    }

    fn update_file_groups(&self, job: &str, groups: Vec<TargetGroup>) {
        let mut st = self.state.lock();
        let seed = st.offset_seed;
        if let Some(p) = st.pools.get_mut(job) {
            tracing::info!(job = %job, groups = groups.len(), "file discovery changed");
            p.file_groups = groups;
            self.sync_pool(p, seed, false);
        }
    }

    /// Brings a pool's loops in line with its groups. With `restart`, loops
    /// that continue are replaced by loops with the pool's current settings.
    fn sync_pool(&self, p: &mut Pool, seed: u64, restart: bool) {
        let cfg = p.cfg.clone();
        let mut active: Vec<(u64, Target, String)> = Vec::new();
        let mut dropped = Vec::new();
        let mut dropped_count = 0;
        let groups = cfg.static_configs.iter().chain(p.file_groups.iter());
        for g in groups {
            for addr in &g.targets {
                let t = BTreeMap::from([(ADDRESS_LABEL.to_string(), addr.clone())]);
                match target::populate_labels(&cfg, &t, &g.labels) {
                    Ok(Some(t)) => {
                        let url = t.url(&cfg);
                        let h = scrape_loop::target_hash(&t.labels, &url);
                        if !active.iter().any(|a| a.0 == h) {
                            active.push((h, t, url));
                        }
                    }
                    Ok(None) => {
                        dropped_count += 1;
                        if cfg.keep_dropped_targets == 0
                            || (dropped.len() as u64) < cfg.keep_dropped_targets
                        {
                            dropped.push(target::discovered_labels(&cfg, &t, &g.labels).labels());
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job = %cfg.job_name, error = %e, "creating target failed");
                    }
                }
            }
        }
        p.dropped = dropped;
        p.dropped_count = dropped_count;
        let forced = (cfg.target_limit > 0 && active.len() as u64 > cfg.target_limit).then(|| {
            format!(
                "target_limit exceeded (number of targets: {}, limit: {})",
                active.len(),
                cfg.target_limit
            )
        });
        let settings = AppendSettings::from_config(&cfg);
        let mut old = std::mem::take(&mut p.loops);
        for (h, t, url) in active {
            let kept = old.remove(&h);
            let handle = match kept {
                Some(l) if !restart => l,
                kept => {
                    let shared = match kept {
                        Some(l) => {
                            let same_series = l.spec.settings == settings
                                && l.spec.series_labels == t.series_labels();
                            let shared = l.shared.clone();
                            drop(l.stop(StopMode::Quiet));
                            if same_series {
                                shared
                            } else {
                                LoopShared::new()
                            }
                        }
                        None => LoopShared::new(),
                    };
                    self.start_loop(&cfg, &p.fetcher, t, url, shared, seed, &settings)
                }
            };
            handle.shared.forced_error.lock().clone_from(&forced);
            p.loops.insert(h, handle);
        }
        for (_, l) in old {
            drop(l.stop(StopMode::Stale));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_loop(
        &self,
        cfg: &ScrapeConfig,
        fetcher: &Fetcher,
        t: Target,
        url: String,
        shared: Arc<LoopShared>,
        seed: u64,
        settings: &AppendSettings,
    ) -> LoopHandle {
        let (interval, timeout) = t
            .interval_and_timeout()
            .map(|(i, t)| (i.as_std(), t.as_std()))
            .unwrap_or((cfg.scrape_interval.as_std(), cfg.scrape_timeout.as_std()));
        let spec = Arc::new(LoopSpec {
            series_labels: t.series_labels(),
            target: t,
            url,
            interval,
            timeout,
            settings: settings.clone(),
            fetcher: fetcher.clone(),
            offset_seed: seed,
        });
        let (tx, rx) = watch::channel(None);
        let task = self.handle.spawn(scrape_loop::run(
            self.db.clone(),
            spec.clone(),
            shared.clone(),
            self.counters.clone(),
            rx,
        ));
        LoopHandle {
            spec,
            shared,
            stop: tx,
            task,
        }
    }

    /// The targets for `/api/v1/targets`.
    pub fn snapshot(&self) -> Snapshot {
        let st = self.state.lock();
        let mut out = Snapshot::default();
        for (job, p) in &st.pools {
            let mut active: Vec<ActiveTarget> = p
                .loops
                .values()
                .map(|l| {
                    let labels = &l.spec.target.labels;
                    let get = |n| labels.get(n).unwrap_or_default().to_string();
                    ActiveTarget {
                        pool: job.clone(),
                        discovered: l.spec.target.discovered.clone(),
                        labels: labels.without(
                            &labels
                                .iter()
                                .filter(|l| l.name.starts_with(RESERVED_LABEL_PREFIX))
                                .map(|l| l.name.as_str())
                                .collect::<Vec<_>>(),
                        ),
                        url: l.spec.url.clone(),
                        status: l.shared.status.lock().clone(),
                        interval: get(target::SCRAPE_INTERVAL_LABEL),
                        timeout: get(target::SCRAPE_TIMEOUT_LABEL),
                    }
                })
                .collect();
            // Stable order for the API: by URL, then labels.
            active.sort_by(|a, b| {
                (a.url.as_str(), a.labels.to_string()).cmp(&(b.url.as_str(), b.labels.to_string()))
            });
            out.active.extend(active);
            out.dropped.extend(p.dropped.iter().map(|d| DroppedTarget {
                pool: job.clone(),
                discovered: d.clone(),
            }));
            out.dropped_counts.insert(job.clone(), p.dropped_count);
        }
        out
    }

    /// Each active target's public labels with the metric metadata it last
    /// exposed, for `/api/v1/targets/metadata`.
    pub fn target_metadata(&self) -> Vec<(Labels, Vec<(String, Metadata)>)> {
        let st = self.state.lock();
        let mut out = Vec::new();
        for p in st.pools.values() {
            for l in p.loops.values() {
                let md = l.shared.cache.lock();
                let md: Vec<(String, Metadata)> = md
                    .metadata()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                out.push((l.spec.series_labels.clone(), md));
            }
        }
        out
    }

    /// Stops every loop and discovery task without staleness markers (the
    /// server is shutting down), waiting (bounded) for loops mid-scrape.
    pub async fn stop(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut st = self.state.lock();
            st.stopped = true;
            std::mem::take(&mut st.pools)
                .into_values()
                .flat_map(|p| p.stop(StopMode::Quiet))
                .collect()
        };
        for t in tasks {
            let _ = tokio::time::timeout(StdDuration::from_secs(5), t).await;
        }
    }
}

impl Pool {
    fn stop(self, mode: StopMode) -> Vec<JoinHandle<()>> {
        if let Some(d) = self.discovery {
            d.abort();
        }
        self.loops.into_values().map(|l| l.stop(mode)).collect()
    }
}

#[cfg(test)]
mod tests;
