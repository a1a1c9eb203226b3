//! File-system steps shared by the writers of block files: fsyncing a directory and replacing a file
//! atomically. Nothing here knows what the files contain.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Fsyncs a directory so that entries created or renamed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new contents, never a mix:
/// the bytes go to `<path>.tmp`, are fsynced, the temporary file is renamed over `path`, and the
/// directory is fsynced. A failure removes the temporary file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    let written = File::create(tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(|e| io_err(tmp, e))
        .and_then(|()| fs::rename(tmp, path).map_err(|e| io_err(path, e)));
    if let Err(e) = written {
        fs::remove_file(tmp).ok();
        return Err(e);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sync_dir(dir)
}
