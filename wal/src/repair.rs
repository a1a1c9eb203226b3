//! Cutting a damaged WAL back to its last intact record.
//!
//! Owns: [`repair`] (truncate at a corruption offset, drop later segments) and
//! [`is_torn_tail`] (is a corruption just an interrupted final write?).
//! Does not own: finding corruptions ([`crate::Reader`]) or deciding to repair:
//! the engine repairs torn tails automatically and anything else only on
//! opt-in, because mid-log damage means acknowledged writes are being dropped.

use std::fs::{self, OpenOptions};
use std::path::Path;

use crate::error::{CorruptionKind, Error, IoContext, Result};
use crate::segment::{list_segments, sync_dir};

/// Keep everything before the corruption at (`segment`, `offset`): delete all
/// later segments, truncate `segment` to `offset` bytes (the start of the
/// broken record) and fsync. Records after the corruption are discarded even
/// if intact: records may depend on earlier ones (a sample on its series), so
/// replaying around a hole is not safe.
///
/// Must not run while a [`crate::Wal`] is open on `dir` (replay and repair
/// before opening the WAL for writing).
pub fn repair(dir: &Path, segment: u32, offset: u64) -> Result<()> {
    let segs = list_segments(dir)?;
    let Some(target) = segs.iter().find(|s| s.index == segment) else {
        return Err(Error::InvalidArgument(format!(
            "cannot repair segment {segment}: not present in {}",
            dir.display()
        )));
    };
    let len = fs::metadata(&target.path).at(&target.path)?.len();
    if offset > len {
        return Err(Error::InvalidArgument(format!(
            "repair offset {offset} is past the end of {} ({len} bytes)",
            target.path.display()
        )));
    }
    tracing::warn!(
        dir = %dir.display(), segment, offset,
        "repairing WAL: discarding everything from the corrupt record on"
    );
    // Newest first: a crash part-way leaves a contiguous run of segments that
    // still ends in the corruption, so the next replay finds it and repairs
    // again, instead of seeing a clean cut followed by orphaned later records.
    for later in segs.iter().rev().filter(|s| s.index > segment) {
        fs::remove_file(&later.path).at(&later.path)?;
    }
    let f = OpenOptions::new()
        .write(true)
        .open(&target.path)
        .at(&target.path)?;
    f.set_len(offset).at(&target.path)?;
    f.sync_all().at(&target.path)?;
    sync_dir(dir)
}

/// Whether `err` is a torn tail of the WAL in `dir`: an
/// [`CorruptionKind::UnexpectedEof`] in a segment after which no segment holds
/// any bytes. (After a crash, [`crate::Wal::open`] adds an empty segment, so
/// the torn one is then not literally the last file.) Such damage is what an
/// interrupted final write leaves and is safe to [`repair`] automatically.
pub fn is_torn_tail(dir: &Path, err: &Error) -> Result<bool> {
    let Error::Corruption {
        path,
        segment,
        kind: CorruptionKind::UnexpectedEof,
        ..
    } = err
    else {
        return Ok(false);
    };
    if path.parent() != Some(dir) {
        return Ok(false);
    }
    for s in list_segments(dir)? {
        if s.index > *segment && fs::metadata(&s.path).at(&s.path)?.len() > 0 {
            return Ok(false);
        }
    }
    Ok(true)
}
