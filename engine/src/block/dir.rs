//! Block directories inside a data directory: telling block directories from temporary ones, removing
//! leftovers of interrupted writes and deletions, and deleting a block so that a crash never leaves a
//! half-deleted block under its real name.
//!
//! A block is visible under `<ulid>/` only once complete: writers build it in `<ulid>.tmp-for-creation/`
//! and rename it; deletion first renames it to `<ulid>.tmp-for-deletion/` and then removes the files.
//! Any directory named `<ulid>.tmp…` found on open is therefore garbage.

use std::fs;
use std::path::{Path, PathBuf};

use ulid::Ulid;

use super::fileutil::{io_err, sync_dir};
use crate::Result;

/// Suffix of a block being written.
pub const TMP_FOR_CREATION: &str = ".tmp-for-creation";
/// Suffix of a block being deleted.
pub const TMP_FOR_DELETION: &str = ".tmp-for-deletion";

/// The ULID a block directory is named by, if `name` is exactly one (26 Crockford base-32 characters,
/// not overflowing 128 bits, as Go's strict parser requires).
pub fn block_ulid(name: &str) -> Option<Ulid> {
    if name.len() != 26 || name.as_bytes().first().is_some_and(|&c| c > b'7') {
        return None;
    }
    Ulid::from_string(name).ok()
}

/// Whether `name` is a temporary block directory: a ULID followed by a suffix starting `.tmp`
/// (`.tmp-for-creation`, `.tmp-for-deletion`, or the plain `.tmp` older Prometheus versions used).
pub fn is_tmp_block_dir(name: &str) -> bool {
    match name.find(".tmp") {
        Some(i) => block_ulid(&name[..i]).is_some(),
        None => false,
    }
}

/// Block directories found by [`scan`], by ULID.
pub(crate) type BlockDirs = Vec<(Ulid, PathBuf)>;

/// The block directories in `dir` (by ULID), sorted by name, and the temporary directories.
pub(crate) fn scan(dir: &Path) -> Result<(BlockDirs, Vec<PathBuf>)> {
    let mut blocks = Vec::new();
    let mut tmp = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((blocks, tmp)),
        Err(e) => return Err(io_err(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| io_err(&entry.path(), e))?
            .is_dir();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !is_dir {
            continue;
        }
        if let Some(u) = block_ulid(&name) {
            blocks.push((u, entry.path()));
        } else if is_tmp_block_dir(&name) {
            tmp.push(entry.path());
        }
    }
    blocks.sort();
    tmp.sort();
    Ok((blocks, tmp))
}

/// Removes the temporary block directories in `dir`; returns those removed.
pub(crate) fn remove_tmp_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let (_, tmp) = scan(dir)?;
    for p in &tmp {
        fs::remove_dir_all(p).map_err(|e| io_err(p, e))?;
        tracing::info!(dir = %p.display(), "removed leftover temporary block directory");
    }
    Ok(tmp)
}

/// Deletes block `ulid` from `dir` if it exists: renamed to `<ulid>.tmp-for-deletion` (and the rename
/// made durable) before its files are removed, so a crash midway leaves a temporary directory, which the
/// next open removes, rather than a block missing some of its files.
pub(crate) fn delete_block(dir: &Path, ulid: Ulid) -> Result<bool> {
    let path = dir.join(ulid.to_string());
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(&path, e)),
        Ok(_) => {}
    }
    let tmp = dir.join(format!("{ulid}{TMP_FOR_DELETION}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    }
    fs::rename(&path, &tmp).map_err(|e| io_err(&path, e))?;
    sync_dir(dir)?;
    fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    Ok(true)
}

/// Total bytes of the regular files under `path` (0 if it does not exist).
pub(crate) fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_temporary_directory_names_are_told_apart() {
        let u = "01H5Z1Y5ZQJ8K3V2X9W4T6N7M8";
        assert!(block_ulid(u).is_some());
        assert!(
            block_ulid("81H5Z1Y5ZQJ8K3V2X9W4T6N7M8").is_none(),
            "overflow"
        );
        assert!(block_ulid("01H5Z1Y5ZQJ8K3V2X9W4T6N7M").is_none(), "short");
        assert!(block_ulid("wal").is_none());
        for suffix in [TMP_FOR_CREATION, TMP_FOR_DELETION, ".tmp"] {
            assert!(is_tmp_block_dir(&format!("{u}{suffix}")));
        }
        assert!(!is_tmp_block_dir(u));
        assert!(!is_tmp_block_dir("mine.tmp-for-creation"));
        assert!(!is_tmp_block_dir("wal"));
    }

    #[test]
    fn scan_finds_blocks_and_leftovers_and_ignores_everything_else() {
        let d = tempfile::tempdir().unwrap();
        let a = Ulid::from_string("01H5Z1Y5ZQJ8K3V2X9W4T6N7M8").unwrap();
        let b = Ulid::from_string("01H5Z1Y5ZQJ8K3V2X9W4T6N7M9").unwrap();
        for name in [
            a.to_string(),
            b.to_string(),
            format!("{a}{TMP_FOR_CREATION}"),
            "wal".to_string(),
            "other".to_string(),
        ] {
            fs::create_dir(d.path().join(name)).unwrap();
        }
        fs::write(d.path().join(format!("{b}.tmp")), b"a file, not a dir").unwrap();
        let (blocks, tmp) = scan(d.path()).unwrap();
        assert_eq!(
            blocks.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
            vec![a, b]
        );
        assert_eq!(tmp, vec![d.path().join(format!("{a}{TMP_FOR_CREATION}"))]);
        assert_eq!(remove_tmp_dirs(d.path()).unwrap().len(), 1);
        assert!(!d.path().join(format!("{a}{TMP_FOR_CREATION}")).exists());
        assert!(d.path().join("other").exists());
    }

    #[test]
    fn deleting_a_block_removes_it_and_missing_blocks_are_fine() {
        let d = tempfile::tempdir().unwrap();
        let a = Ulid::new();
        let p = d.path().join(a.to_string());
        fs::create_dir_all(p.join("chunks")).unwrap();
        fs::write(p.join("chunks/000001"), vec![0u8; 100]).unwrap();
        fs::write(p.join("meta.json"), b"{}").unwrap();
        assert_eq!(dir_size(&p), 102);
        assert!(delete_block(d.path(), a).unwrap());
        assert!(!p.exists());
        assert!(!d.path().join(format!("{a}{TMP_FOR_DELETION}")).exists());
        assert!(!delete_block(d.path(), a).unwrap());
    }
}
