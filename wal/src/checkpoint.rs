//! Checkpoints: compacting a prefix of the WAL into the records still needed.
//!
//! Owns: building `checkpoint.NNNNNNNN` directories (themselves a WAL of
//! segments) from the previous checkpoint plus a range of segments, atomically
//! publishing them, deleting superseded ones, and cleaning up `.tmp` leftovers.
//! Does not own: deciding which series are still alive (the caller's
//! `keep_series`), or truncating the WAL afterwards (the caller calls
//! [`crate::Wal::truncate`] with `to + 1` once the checkpoint exists).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::reader::{Reader, select_range};
use crate::record::{
    self, RecordType, RefSample, RefSeries, Tombstone, decode_samples, decode_series,
    decode_tombstones, encode_samples, encode_series, encode_tombstones,
};
use crate::segment::{list_segments, sync_dir};
use crate::writer::{Compression, SyncPolicy, Wal, WalOptions};

const PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";

/// Hand records to the checkpoint writer in batches of about this many bytes.
const BATCH_BYTES: usize = 1 << 20;

/// What a checkpoint kept and dropped. Totals count everything read from the
/// previous checkpoint and the segments, dropped entries included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    pub dropped_series: usize,
    pub dropped_samples: usize,
    pub dropped_tombstones: usize,
    pub total_series: usize,
    pub total_samples: usize,
    pub total_tombstones: usize,
}

/// `wal_dir/checkpoint.00000042`.
pub fn checkpoint_dir(wal_dir: &Path, index: u32) -> PathBuf {
    wal_dir.join(format!("{PREFIX}{index:08}"))
}

/// Write `checkpoint.{to}` from the previous checkpoint (if any) and segments
/// `from..=to`, keeping:
/// * series records of refs for which `keep_series` is true,
/// * samples of kept refs with `t >= mint`,
/// * tombstones of kept refs with an interval ending at or after `mint`.
///
/// `to` must be a completed segment (below [`Wal::current_segment`]), so
/// that nothing is still being appended to what the checkpoint reads.
/// Record types this crate does not decode are dropped. If a checkpoint
/// already exists, reading resumes right after the segment it ends at, and
/// `from` must not leave a gap after it. The new checkpoint is written under a
/// `.tmp` name, fsynced, renamed into place and the WAL directory fsynced;
/// then older checkpoints are deleted.
pub fn checkpoint(
    wal_dir: &Path,
    from: u32,
    to: u32,
    keep_series: &dyn Fn(u64) -> bool,
    mint: i64,
    compression: Compression,
) -> Result<CheckpointStats> {
    remove_tmp_checkpoints(wal_dir)?;

    let mut segments = Vec::new();
    let mut from = from;
    if let Some((prev_dir, prev)) = last_checkpoint(wal_dir)? {
        if to <= prev {
            return Err(Error::InvalidArgument(format!(
                "checkpoint {prev} already covers segments up to {to}"
            )));
        }
        if from > prev + 1 {
            return Err(Error::InvalidArgument(format!(
                "segments {}..{from} would be lost between checkpoint {prev} and segment {from}",
                prev + 1
            )));
        }
        from = prev + 1;
        segments.extend(list_segments(&prev_dir)?);
    }
    if from > to {
        return Err(Error::InvalidArgument(format!(
            "empty checkpoint range {from}..={to}"
        )));
    }
    let wal_segments = select_range(wal_dir, from, to)?;
    if wal_segments.last().map(|s| s.index) != Some(to) {
        return Err(Error::Layout {
            dir: wal_dir.to_path_buf(),
            reason: format!("segment {to} to checkpoint up to is not present"),
        });
    }
    segments.extend(wal_segments);

    let final_dir = checkpoint_dir(wal_dir, to);
    let tmp_dir = tmp_path(&final_dir);
    tracing::info!(dir = %wal_dir.display(), from, to, mint, "creating WAL checkpoint");

    let stats = match write_checkpoint(
        Reader::from_segments(segments),
        &tmp_dir,
        keep_series,
        mint,
        compression,
    ) {
        Ok(stats) => stats,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp_dir);
            return Err(e);
        }
    };
    // The tmp dir's segments and directory entry were fsynced by Wal::close;
    // the rename is made durable by syncing the parent.
    fs::rename(&tmp_dir, &final_dir).at(&final_dir)?;
    sync_dir(wal_dir)?;

    for (dir, index) in list_checkpoints(wal_dir)? {
        if index < to {
            fs::remove_dir_all(&dir).at(&dir)?;
        }
    }
    Ok(stats)
}

fn write_checkpoint(
    mut reader: Reader,
    tmp_dir: &Path,
    keep: &dyn Fn(u64) -> bool,
    mint: i64,
    compression: Compression,
) -> Result<CheckpointStats> {
    let cp = Wal::open(
        tmp_dir,
        WalOptions {
            compression,
            // Durability comes from close() before the rename.
            sync: SyncPolicy::Never,
            ..WalOptions::default()
        },
    )?;
    let mut stats = CheckpointStats::default();
    let mut series: Vec<RefSeries> = Vec::new();
    let mut samples: Vec<RefSample> = Vec::new();
    let mut stones: Vec<Tombstone> = Vec::new();
    // Encoded records of the current batch, back to back, and where each ends.
    let mut buf: Vec<u8> = Vec::new();
    let mut ends: Vec<usize> = Vec::new();

    while let Some(rec) = reader.next_record()? {
        let start = buf.len();
        match record::record_type(rec) {
            RecordType::Series => {
                series.clear();
                decode_series(rec, &mut series).map_err(|e| reader.locate(e))?;
                let total = series.len();
                series.retain(|s| keep(s.r));
                stats.total_series += total;
                stats.dropped_series += total - series.len();
                if !series.is_empty() {
                    encode_series(&series, &mut buf);
                }
            }
            RecordType::Samples => {
                samples.clear();
                decode_samples(rec, &mut samples).map_err(|e| reader.locate(e))?;
                let total = samples.len();
                samples.retain(|s| s.t >= mint && keep(s.r));
                stats.total_samples += total;
                stats.dropped_samples += total - samples.len();
                if !samples.is_empty() {
                    encode_samples(&samples, &mut buf);
                }
            }
            RecordType::Tombstones => {
                stones.clear();
                decode_tombstones(rec, &mut stones).map_err(|e| reader.locate(e))?;
                let total = stones.len();
                stones.retain(|s| keep(s.r) && s.intervals.iter().any(|&(_, maxt)| maxt >= mint));
                stats.total_tombstones += total;
                stats.dropped_tombstones += total - stones.len();
                if !stones.is_empty() {
                    encode_tombstones(&stones, &mut buf);
                }
            }
            RecordType::Unknown(_) => {}
        }
        if buf.len() > start {
            ends.push(buf.len());
        }
        if buf.len() >= BATCH_BYTES {
            log_batch(&cp, &buf, &ends)?;
            buf.clear();
            ends.clear();
        }
    }
    log_batch(&cp, &buf, &ends)?;
    cp.close()?;
    Ok(stats)
}

fn log_batch(cp: &Wal, buf: &[u8], ends: &[usize]) -> Result<()> {
    let mut recs = Vec::with_capacity(ends.len());
    let mut start = 0;
    for &end in ends {
        recs.push(&buf[start..end]);
        start = end;
    }
    cp.log(&recs)
}

/// The newest checkpoint in `wal_dir` and the last segment index it covers.
pub fn last_checkpoint(wal_dir: &Path) -> Result<Option<(PathBuf, u32)>> {
    Ok(list_checkpoints(wal_dir)?.pop())
}

/// Finished checkpoints, oldest first. `.tmp` leftovers are not included.
fn list_checkpoints(wal_dir: &Path) -> Result<Vec<(PathBuf, u32)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(wal_dir).at(wal_dir)? {
        let entry = entry.at(wal_dir)?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(index) = digits.parse::<u32>() else {
            continue;
        };
        let path = entry.path();
        if !entry.file_type().at(&path)?.is_dir() {
            return Err(Error::Layout {
                dir: wal_dir.to_path_buf(),
                reason: format!("checkpoint {} is not a directory", path.display()),
            });
        }
        found.push((path, index));
    }
    found.sort_by_key(|&(_, i)| i);
    Ok(found)
}

/// Remove `checkpoint.*.tmp` directories left by a crash mid-checkpoint.
pub(crate) fn remove_tmp_checkpoints(wal_dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(wal_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(wal_dir, e)),
    };
    for entry in entries {
        let entry = entry.at(wal_dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(PREFIX) && name.ends_with(TMP_SUFFIX) {
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing leftover temporary checkpoint");
            if entry.file_type().at(&path)?.is_dir() {
                fs::remove_dir_all(&path).at(&path)?;
            } else {
                fs::remove_file(&path).at(&path)?;
            }
        }
    }
    Ok(())
}

fn tmp_path(final_dir: &Path) -> PathBuf {
    let mut s = final_dir.as_os_str().to_owned();
    s.push(TMP_SUFFIX);
    PathBuf::from(s)
}
