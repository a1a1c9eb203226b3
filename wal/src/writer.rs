//! The WAL writer: [`Wal`].
//!
//! Owns: appending records to the active segment (fragmenting them into pages,
//! optional zstd compression), rolling to new segments, group-commit fsync,
//! the background interval syncer, and deleting old segments (`truncate`).
//! Does not own: reading ([`crate::Reader`]), record encodings
//! ([`crate::record`]), or deciding when to checkpoint/truncate (the engine).
//!
//! # Locking
//!
//! Two mutexes, always taken in the order `sync` → `inner`:
//! * `inner` guards the active segment, the page position and the pending
//!   byte buffer. Writers hold it only while framing records and issuing the
//!   `write(2)`; never while fsyncing.
//! * `sync` serialises fsyncs and records `synced_seq`, the highest commit
//!   sequence number known durable.
//!
//! Every `log` call gets a sequence number (under `inner`, after its bytes
//! reached the OS). With [`SyncPolicy::EveryCommit`] the caller then takes
//! `sync`; if a concurrent caller's fsync already covered its sequence number it
//! returns at once, otherwise it snapshots the newest sequence number, fsyncs
//! (outside `inner`, so other writers keep appending) and publishes the
//! snapshot. One fsync thus commits every `log` that finished before it
//! started: group commit.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, IoContext, Result};
use crate::segment::{
    DEFAULT_SEGMENT_SIZE, FragmentCompression, FragmentType, HEADER_SIZE, MAX_RECORD_SIZE,
    PAGE_SIZE, checksum, list_segments, segment_path, sync_dir, type_byte,
};

/// When the WAL fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every [`Wal::log`] returns only after its records are fsynced
    /// (group-committed with concurrent callers).
    EveryCommit,
    /// A background thread fsyncs at this interval; a crash can lose up to one
    /// interval of acknowledged writes on power loss (not on a process kill:
    /// every `log` hands its bytes to the OS before returning).
    Interval(Duration),
    /// Never fsync except when a segment is completed and on close.
    Never,
}

/// Record payload compression for new records. Reading handles every
/// compression regardless of this setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
}

/// Options for [`Wal::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// Target segment size in bytes; a multiple of 32 KiB. A single record
    /// larger than a segment still goes into one (oversized) segment.
    pub segment_size: usize,
    pub compression: Compression,
    pub sync: SyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            compression: Compression::None,
            sync: SyncPolicy::EveryCommit,
        }
    }
}

/// zstd level for new records. The WAL sits on the ingestion path, so favour
/// speed; level 1 still shrinks sample records well.
const ZSTD_LEVEL: i32 = 1;

/// Inside one `log` call, hand bytes to the OS once this much is pending, so a
/// huge batch does not buffer itself entirely in memory.
const FLUSH_THRESHOLD: usize = 1 << 20;

/// A write-ahead log over one directory. `Send + Sync`: share it by reference
/// or `Arc` between appending threads.
pub struct Wal {
    shared: Arc<Shared>,
    syncer: Option<JoinHandle<()>>,
}

struct Shared {
    dir: PathBuf,
    segment_size: usize,
    policy: SyncPolicy,
    inner: Mutex<Inner>,
    sync: Mutex<SyncState>,
    /// Stop flag + wakeup for the interval syncer thread.
    stop: Mutex<bool>,
    stop_cv: Condvar,
    /// Number of fsync rounds issued (for metrics and group-commit tests).
    fsyncs: AtomicU64,
}

struct SyncState {
    /// Every `log` with a sequence number <= this is durable.
    synced_seq: u64,
}

struct Inner {
    segment: u32,
    path: PathBuf,
    file: Arc<File>,
    /// Logical size of the active segment, including `pending` bytes.
    seg_off: u64,
    /// Framed bytes not yet written to the file.
    pending: Vec<u8>,
    /// Sequence number of the last `log` whose bytes reached the OS.
    written_seq: u64,
    /// Completed segments that may still have un-fsynced data.
    unsynced: Vec<(PathBuf, Arc<File>)>,
    /// A segment file was created since the directory was last fsynced.
    dir_dirty: bool,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    zbuf: Vec<u8>,
    poisoned: Option<String>,
    closed: bool,
}

impl Wal {
    /// Open (creating if needed) the WAL in `dir` and start a new segment after
    /// the last existing one. Existing segments are never appended to: their
    /// tails may be torn, and a fresh segment keeps new writes clear of them.
    /// Leftover `checkpoint.*.tmp` directories from a crash are removed.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal> {
        if opts.segment_size == 0 || !opts.segment_size.is_multiple_of(PAGE_SIZE) {
            return Err(Error::InvalidArgument(format!(
                "segment size {} is not a positive multiple of the {PAGE_SIZE}-byte page",
                opts.segment_size
            )));
        }
        if let SyncPolicy::Interval(d) = opts.sync
            && d.is_zero()
        {
            return Err(Error::InvalidArgument(
                "sync interval must be non-zero".into(),
            ));
        }
        std::fs::create_dir_all(dir).at(dir)?;
        crate::checkpoint::remove_tmp_checkpoints(dir)?;

        let next = match list_segments(dir)?.last() {
            None => 0,
            Some(last) => last
                .index
                .checked_add(1)
                .ok_or_else(|| Error::InvalidArgument("segment index space exhausted".into()))?,
        };
        let path = segment_path(dir, next);
        let file = create_segment(&path)?;
        // Make the new segment's directory entry durable before anything is
        // acknowledged from it.
        sync_dir(dir)?;

        let compressor = match opts.compression {
            Compression::None => None,
            Compression::Zstd => {
                Some(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| Error::io(dir, e))?)
            }
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            segment_size: opts.segment_size,
            policy: opts.sync,
            inner: Mutex::new(Inner {
                segment: next,
                path,
                file: Arc::new(file),
                seg_off: 0,
                pending: Vec::with_capacity(2 * PAGE_SIZE),
                written_seq: 0,
                unsynced: Vec::new(),
                dir_dirty: false,
                compressor,
                zbuf: Vec::new(),
                poisoned: None,
                closed: false,
            }),
            sync: Mutex::new(SyncState { synced_seq: 0 }),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
            fsyncs: AtomicU64::new(0),
        });
        let syncer = match opts.sync {
            SyncPolicy::Interval(every) => {
                let shared = Arc::clone(&shared);
                Some(
                    std::thread::Builder::new()
                        .name("ember-wal-sync".into())
                        .spawn(move || shared.run_syncer(every))
                        .map_err(|e| Error::io(dir, e))?,
                )
            }
            _ => None,
        };
        tracing::debug!(dir = %dir.display(), segment = next, "opened WAL");
        Ok(Wal { shared, syncer })
    }

    /// Append `records` in order. On return their bytes have been handed to
    /// the OS (a killed process loses nothing acknowledged) and, with
    /// [`SyncPolicy::EveryCommit`], fsynced. A failure poisons the WAL.
    pub fn log(&self, records: &[&[u8]]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(r) = records.iter().find(|r| r.len() > MAX_RECORD_SIZE) {
            return Err(Error::InvalidArgument(format!(
                "record of {} bytes exceeds the {MAX_RECORD_SIZE}-byte limit",
                r.len()
            )));
        }
        let s = &*self.shared;
        let (seq, rolled) = {
            let mut w = s.inner.lock();
            w.check()?;
            let mut rolled = false;
            let res = records
                .iter()
                .try_for_each(|rec| {
                    rolled |= w.append(&s.dir, s.segment_size, rec)?;
                    Ok(())
                })
                .and_then(|()| w.flush_pending());
            if let Err(e) = res {
                w.poison(&e);
                return Err(e);
            }
            w.written_seq += 1;
            (w.written_seq, rolled)
        };
        match s.policy {
            SyncPolicy::EveryCommit => s.sync_through(Some(seq)),
            // A completed segment is made durable when it is left behind
            // whatever the policy, so only the active segment is ever at risk.
            _ if rolled => s.sync_rolled(),
            _ => Ok(()),
        }
    }

    /// fsync everything logged so far.
    pub fn sync(&self) -> Result<()> {
        self.shared.sync_through(None)
    }

    /// Finish the active segment (pad its last page, fsync it) and start a new
    /// one; returns the new segment's index.
    pub fn next_segment(&self) -> Result<u32> {
        let s = &*self.shared;
        let index = {
            let mut w = s.inner.lock();
            w.check()?;
            if let Err(e) = w.roll(&s.dir) {
                w.poison(&e);
                return Err(e);
            }
            w.segment
        };
        s.sync_rolled()?;
        Ok(index)
    }

    /// First and last segment index present in `dir`, or `None` if it has no
    /// segments. Errors if the segments are not contiguous.
    pub fn segment_range(dir: &Path) -> Result<Option<(u32, u32)>> {
        let segs = list_segments(dir)?;
        Ok(segs
            .first()
            .zip(segs.last())
            .map(|(f, l)| (f.index, l.index)))
    }

    /// Index of the segment new records go to.
    pub fn current_segment(&self) -> u32 {
        self.shared.inner.lock().segment
    }

    /// How many fsync rounds this WAL has issued. With group commit this grows
    /// slower than the number of `log` calls under concurrency.
    pub fn fsync_count(&self) -> u64 {
        self.shared.fsyncs.load(Ordering::Relaxed)
    }

    /// Delete every segment with index < `before` (typically after a
    /// checkpoint covering them). The active segment cannot be deleted.
    pub fn truncate(&self, before: u32) -> Result<()> {
        let s = &*self.shared;
        // The active index only grows, so checking it once is enough; the
        // deletions themselves need not block writers.
        let active = s.inner.lock().segment;
        if before > active {
            return Err(Error::InvalidArgument(format!(
                "cannot truncate before segment {before}: segment {active} is still being written"
            )));
        }
        let mut removed = 0;
        // Ascending order: a failure part-way leaves a contiguous suffix.
        for seg in list_segments(&s.dir)? {
            if seg.index >= before {
                break;
            }
            std::fs::remove_file(&seg.path).at(&seg.path)?;
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&s.dir)?;
            tracing::debug!(dir = %s.dir.display(), before, removed, "truncated WAL");
        }
        Ok(())
    }

    /// Pad and flush the active segment, fsync everything, stop the syncer.
    pub fn close(mut self) -> Result<()> {
        let res = self.finish();
        self.stop_syncer();
        res
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn finish(&self) -> Result<()> {
        let s = &*self.shared;
        {
            let mut w = s.inner.lock();
            w.check()?;
            // Pad the last page so every closed segment is whole pages, as
            // Prometheus leaves them.
            let res = w.pad_page().and_then(|()| w.flush_pending());
            if let Err(e) = res {
                w.poison(&e);
                return Err(e);
            }
        }
        s.sync_through(None)?;
        s.inner.lock().closed = true;
        Ok(())
    }

    fn stop_syncer(&mut self) {
        if let Some(handle) = self.syncer.take() {
            *self.shared.stop.lock() = true;
            self.shared.stop_cv.notify_all();
            let _ = handle.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop_syncer();
        // Dropped without close(): every log already reached the OS; make it
        // durable on a best-effort basis (a no-op if nothing is unsynced).
        if !self.shared.inner.lock().closed && self.shared.policy != SyncPolicy::Never {
            let _ = self.shared.sync_through(None);
        }
    }
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .field("segment_size", &self.shared.segment_size)
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

fn create_segment(path: &Path) -> Result<File> {
    // create_new: an existing file with this name would be a segment we failed
    // to list; never clobber it.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .at(path)
}

impl Shared {
    /// fsync the active segment, every completed-but-unsynced segment and (if
    /// needed) the directory, unless `seq` is already covered by someone
    /// else's fsync. `None` means "everything written so far".
    fn sync_through(&self, seq: Option<u64>) -> Result<()> {
        let mut state = self.sync.lock();
        if seq.is_some_and(|seq| state.synced_seq >= seq) {
            return Ok(());
        }
        // `target`, the rolled segments and the active file are read in one
        // critical section: every write counted in `target` is then in one of
        // `files`, or in a segment an earlier (finished) fsync already took.
        let (target, files, dir_dirty) = {
            let mut w = self.inner.lock();
            w.check()?;
            if seq.is_none()
                && w.written_seq == state.synced_seq
                && w.unsynced.is_empty()
                && !w.dir_dirty
            {
                return Ok(());
            }
            let mut files = std::mem::take(&mut w.unsynced);
            files.push((w.path.clone(), Arc::clone(&w.file)));
            (w.written_seq, files, std::mem::take(&mut w.dir_dirty))
        };
        self.fsync_all(&files, dir_dirty)?;
        state.synced_seq = target;
        Ok(())
    }

    /// fsync the segments left behind by rolls, without claiming anything
    /// about the active one.
    fn sync_rolled(&self) -> Result<()> {
        let _state = self.sync.lock();
        let (files, dir_dirty) = {
            let mut w = self.inner.lock();
            w.check()?;
            (
                std::mem::take(&mut w.unsynced),
                std::mem::take(&mut w.dir_dirty),
            )
        };
        self.fsync_all(&files, dir_dirty)
    }

    fn fsync_all(&self, files: &[(PathBuf, Arc<File>)], dir_dirty: bool) -> Result<()> {
        if files.is_empty() && !dir_dirty {
            return Ok(());
        }
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        for (path, file) in files {
            // sync_data suffices for appends: it flushes the size change too.
            if let Err(e) = file.sync_data() {
                let err = Error::io(path, e);
                self.inner.lock().poison(&err);
                return Err(err);
            }
        }
        if dir_dirty && let Err(err) = sync_dir(&self.dir) {
            self.inner.lock().poison(&err);
            return Err(err);
        }
        Ok(())
    }

    fn run_syncer(&self, every: Duration) {
        let mut stop = self.stop.lock();
        let mut deadline = Instant::now() + every;
        while !*stop {
            if self.stop_cv.wait_until(&mut stop, deadline).timed_out() {
                deadline = Instant::now() + every;
                MutexGuard::unlocked(&mut stop, || {
                    if let Err(e) = self.sync_through(None) {
                        tracing::error!(dir = %self.dir.display(), error = %e, "WAL interval fsync failed");
                    }
                });
            }
        }
    }
}

impl Inner {
    fn check(&self) -> Result<()> {
        if let Some(why) = &self.poisoned {
            return Err(Error::Poisoned(why.clone()));
        }
        if self.closed {
            return Err(Error::Poisoned("WAL was closed".into()));
        }
        Ok(())
    }

    fn poison(&mut self, err: &Error) {
        if self.poisoned.is_none() {
            tracing::error!(segment = self.segment, error = %err, "WAL poisoned");
            self.poisoned = Some(err.to_string());
        }
    }

    /// Frame one record into `pending`, rolling to a new segment first if it
    /// would not fit. Returns whether a roll happened.
    fn append(&mut self, dir: &Path, segment_size: usize, rec: &[u8]) -> Result<bool> {
        let mut zbuf = std::mem::take(&mut self.zbuf);
        let res = self.append_with(dir, segment_size, rec, &mut zbuf);
        self.zbuf = zbuf;
        res
    }

    fn append_with(
        &mut self,
        dir: &Path,
        segment_size: usize,
        rec: &[u8],
        zbuf: &mut Vec<u8>,
    ) -> Result<bool> {
        let (data, compression) = match &mut self.compressor {
            None => (rec, FragmentCompression::None),
            Some(c) => {
                zbuf.clear();
                zbuf.reserve(zstd::zstd_safe::compress_bound(rec.len()));
                c.compress_to_buffer(rec, zbuf)
                    .map_err(|e| Error::io(&self.path, e))?;
                // Like Prometheus: keep the raw bytes when compression does
                // not actually save space (tiny records).
                if zbuf.len() < rec.len() {
                    (&zbuf[..], FragmentCompression::Zstd)
                } else {
                    (rec, FragmentCompression::None)
                }
            }
        };

        // Prometheus' rule: the record must fit in what is left of the
        // segment, counting one header per remaining page; otherwise it starts
        // a new segment, so records never span segments and a complete
        // segment can be deleted without cutting a record in half. (Unlike
        // Prometheus we do not roll away from a still-empty segment: the record
        // would not fit in the next one either.)
        let page = PAGE_SIZE as i64;
        let hdr = HEADER_SIZE as i64;
        let in_page = self.seg_off as i64 % page;
        let done_pages = self.seg_off as i64 / page;
        let pages_per_segment = (segment_size / PAGE_SIZE) as i64;
        let left = (page - in_page - hdr) + (page - hdr) * (pages_per_segment - done_pages - 1);
        let mut rolled = false;
        if data.len() as i64 > left && self.seg_off > 0 {
            self.roll(dir)?;
            rolled = true;
        }

        let mut rest = data;
        let mut first = true;
        loop {
            let in_page = (self.seg_off % PAGE_SIZE as u64) as usize;
            // Invariant (kept by pad_if_full): a header always fits here.
            let room = PAGE_SIZE - in_page - HEADER_SIZE;
            let n = rest.len().min(room);
            let last = n == rest.len();
            let t = match (first, last) {
                (true, true) => FragmentType::Full,
                (true, false) => FragmentType::First,
                (false, true) => FragmentType::Last,
                (false, false) => FragmentType::Middle,
            };
            let (part, tail) = rest.split_at(n);
            self.pending.push(type_byte(t, compression));
            self.pending.extend_from_slice(&(n as u16).to_be_bytes());
            self.pending
                .extend_from_slice(&checksum(part).to_be_bytes());
            self.pending.extend_from_slice(part);
            self.seg_off += (HEADER_SIZE + n) as u64;
            rest = tail;
            self.pad_if_full();
            if self.pending.len() >= FLUSH_THRESHOLD {
                self.flush_pending()?;
            }
            if last {
                return Ok(rolled);
            }
            first = false;
        }
    }

    /// A header may not start in the last < 7 bytes of a page: zero-fill them.
    fn pad_if_full(&mut self) {
        let in_page = (self.seg_off % PAGE_SIZE as u64) as usize;
        if in_page != 0 && PAGE_SIZE - in_page < HEADER_SIZE {
            self.pad_page_from(in_page);
        }
    }

    /// Zero-fill the rest of the current page (no-op at a page boundary).
    fn pad_page(&mut self) -> Result<()> {
        let in_page = (self.seg_off % PAGE_SIZE as u64) as usize;
        if in_page != 0 {
            self.pad_page_from(in_page);
        }
        Ok(())
    }

    fn pad_page_from(&mut self, in_page: usize) {
        let n = PAGE_SIZE - in_page;
        self.pending.resize(self.pending.len() + n, 0);
        self.seg_off += n as u64;
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        (&*self.file).write_all(&self.pending).at(&self.path)?;
        self.pending.clear();
        Ok(())
    }

    /// Complete the active segment and switch to the next one. The old file is
    /// queued for fsync; the caller decides when that happens.
    fn roll(&mut self, dir: &Path) -> Result<()> {
        self.pad_page()?;
        self.flush_pending()?;
        let next = self
            .segment
            .checked_add(1)
            .ok_or_else(|| Error::InvalidArgument("segment index space exhausted".into()))?;
        let path = segment_path(dir, next);
        let file = Arc::new(create_segment(&path)?);
        let old_path = std::mem::replace(&mut self.path, path);
        let old_file = std::mem::replace(&mut self.file, file);
        self.unsynced.push((old_path, old_file));
        self.dir_dirty = true;
        self.segment = next;
        self.seg_off = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_covered_by_another_fsync_do_not_fsync_again() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(Wal::open(dir.path(), WalOptions::default()).unwrap());
        let before = wal.fsync_count();
        // Hold the sync lock, as a thread in the middle of a slow fsync would.
        let guard = wal.shared.sync.lock();
        let handles: Vec<_> = (0..3u8)
            .map(|i| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || wal.log(&[&[i; 100]]).unwrap())
            })
            .collect();
        // All three have written and now queue behind the "in-flight" fsync.
        while wal.shared.inner.lock().written_seq < 3 {
            std::thread::yield_now();
        }
        drop(guard);
        for h in handles {
            h.join().unwrap();
        }
        // The first to get the lock fsyncs for everyone.
        assert_eq!(wal.fsync_count() - before, 1);
    }

    #[test]
    fn wal_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Wal>();
    }

    #[test]
    fn open_rejects_segment_sizes_that_are_not_whole_pages() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0, 1000, PAGE_SIZE + 1] {
            let opts = WalOptions {
                segment_size: size,
                ..WalOptions::default()
            };
            assert!(matches!(
                Wal::open(dir.path(), opts),
                Err(Error::InvalidArgument(_))
            ));
        }
    }
}
