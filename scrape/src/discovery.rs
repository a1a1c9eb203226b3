//! File-based service discovery (`file_sd_configs`): target groups read
//! from YAML or JSON files named by patterns with at most one `*` in the
//! file name, re-read when a file changes (checked by a bounded poll of
//! modification time and size) and at each `refresh_interval`.
//!
//! Owns expanding patterns, reading and validating the files, the
//! `__meta_filepath` label, and keeping a file's last good groups when it
//! becomes unreadable or invalid (as Prometheus does: a half-written file
//! must not drop its targets). It does not own what happens to the groups
//! (see [`crate::pools`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::Error;
use crate::config::{FileSdConfig, TargetGroup};

/// The label naming the file a group came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// The files a pattern names now, sorted. A pattern without `*` names its
/// file whether or not it exists (a missing file simply has no groups).
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![path.to_path_buf()];
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            (n.len() >= prefix.len() + suffix.len() && n.starts_with(prefix) && n.ends_with(suffix))
                .then(|| dir.join(n))
        })
        .collect();
    out.sort();
    out
}

/// Reads one discovery file: a list of `{targets: [...], labels: {...}}`,
/// as JSON when the name ends in `.json`, else YAML. Each group gets
/// `__meta_filepath`.
pub fn read_file(path: &Path) -> Result<Vec<TargetGroup>, Error> {
    let fail = |message: String| Error::Discovery {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let is_json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let groups: Option<Vec<TargetGroup>> = if is_json {
        serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?
    } else if text.trim().is_empty() {
        None
    } else {
        serde_norway::from_str(&text).map_err(|e| fail(e.to_string()))?
    };
    let mut groups = groups.unwrap_or_default();
    for (i, g) in groups.iter_mut().enumerate() {
        if let Some(name) = g.labels.keys().find(|n| n.is_empty()) {
            return Err(fail(format!("group {i}: invalid label name {name:?}")));
        }
        if let Some(t) = g.targets.iter().find(|t| t.is_empty()) {
            return Err(fail(format!("group {i}: invalid target {t:?}")));
        }
        g.labels
            .insert(FILEPATH_LABEL.to_string(), path.display().to_string());
    }
    Ok(groups)
}

/// What a pool's file discovery knows: each file's last good groups and the
/// file's modification time and size when it was read.
#[derive(Default)]
pub struct FileSdState {
    files: BTreeMap<PathBuf, (Option<SystemTime>, u64, Vec<TargetGroup>)>,
    last_full: Option<Instant>,
    /// Reads that failed, for `/metrics`.
    pub read_errors: u64,
}

impl FileSdState {
    /// Checks the files of `cfgs`; re-reads those that changed (or all, when
    /// the smallest `refresh_interval` has passed). True if the groups
    /// changed.
    pub fn refresh(&mut self, cfgs: &[FileSdConfig]) -> bool {
        let refresh = cfgs
            .iter()
            .map(|c| c.refresh_interval.as_std())
            .min()
            .unwrap_or_default();
        let full = self.last_full.is_none_or(|t| t.elapsed() >= refresh);
        if full {
            self.last_full = Some(Instant::now());
        }
        let mut present: Vec<PathBuf> = cfgs
            .iter()
            .flat_map(|c| c.files.iter())
            .flat_map(|p| expand(p))
            .collect();
        present.sort();
        present.dedup();
        let mut changed = false;
        let before = self.files.len();
        self.files.retain(|p, _| present.contains(p));
        changed |= before != self.files.len();
        for p in present {
            let meta = std::fs::metadata(&p).ok();
            let stamp = (
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.as_ref().map_or(0, |m| m.len()),
            );
            let known = self.files.get(&p).map(|f| (f.0, f.1));
            if !full && known == Some(stamp) {
                continue;
            }
            if meta.is_none() {
                changed |= self.files.remove(&p).is_some();
                continue;
            }
            match read_file(&p) {
                Ok(groups) => {
                    let same = self.files.get(&p).is_some_and(|f| f.2 == groups);
                    changed |= !same;
                    self.files.insert(p, (stamp.0, stamp.1, groups));
                }
                Err(e) => {
                    self.read_errors += 1;
                    tracing::error!(error = %e, "file discovery: keeping the file's previous targets");
                    // Remember the stamp so a broken file is not re-read (and logged) every poll.
                    let old = self.files.remove(&p).map(|f| f.2).unwrap_or_default();
                    self.files.insert(p, (stamp.0, stamp.1, old));
                }
            }
        }
        changed
    }

    /// All groups, in file order.
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.files
            .values()
            .flat_map(|f| f.2.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Duration;

    #[test]
    fn file_groups_follow_edits_and_survive_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yml");
        std::fs::write(&f, "- targets: ['h1:1']\n  labels: {env: prod}\n").unwrap();
        std::fs::write(dir.path().join("b.json"), r#"[{"targets": ["h2:2"]}]"#).unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "x").unwrap();
        let cfg = FileSdConfig {
            files: vec![
                format!("{}/*.yml", dir.path().display()),
                format!("{}/b.json", dir.path().display()),
            ],
            refresh_interval: Duration::from_secs(300),
        };
        let mut st = FileSdState::default();
        assert!(st.refresh(std::slice::from_ref(&cfg)));
        let g = st.groups();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].targets, vec!["h1:1"]);
        assert_eq!(g[0].labels["env"], "prod");
        assert_eq!(g[0].labels[FILEPATH_LABEL], f.display().to_string());
        assert_eq!(g[1].targets, vec!["h2:2"]);
        assert!(!st.refresh(std::slice::from_ref(&cfg)), "nothing changed");
        // An edit that changes the size is seen without waiting for the refresh interval.
        std::fs::write(&f, "- targets: ['h1:1', 'h3:3']\n").unwrap();
        assert!(st.refresh(std::slice::from_ref(&cfg)));
        assert_eq!(st.groups()[0].targets, vec!["h1:1", "h3:3"]);
        // A broken file keeps its previous groups and counts an error.
        std::fs::write(&f, "- targets: [unclosed\n").unwrap();
        st.refresh(std::slice::from_ref(&cfg));
        assert_eq!(st.groups()[0].targets, vec!["h1:1", "h3:3"]);
        assert_eq!(st.read_errors, 1);
        // A removed file drops its groups.
        std::fs::remove_file(&f).unwrap();
        assert!(st.refresh(std::slice::from_ref(&cfg)));
        assert_eq!(st.groups().len(), 1);
    }

    #[test]
    fn read_file_names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.json");
        std::fs::write(&f, r#"[{"targets": ["a:1"], "bogus": 1}]"#).unwrap();
        let e = read_file(&f).unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("bogus"), "{e}");
    }
}
