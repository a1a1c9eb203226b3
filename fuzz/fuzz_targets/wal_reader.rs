//! Fuzzes the WAL segment reader: the input is written as segment files and
//! every record is read back. Checked with every input:
//!
//! 1. Reading never panics and ends in `Ok(None)` or an error.
//! 2. Every record returned is fed to the record decoders (they must not panic
//!    either, whatever a decompressed payload contains).
//! 3. If reading stopped at a `Corruption`, `repair` at the reported position
//!    must leave a WAL that reads cleanly and yields exactly the same records:
//!    the offset really is where the intact prefix ends.
//!
//! If the first input byte is odd the rest is split in two segments, so
//! segment transitions (and damage in a non-final segment) are covered.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ember_wal::{Error, Reader, record, repair, segment_path};
use libfuzzer_sys::fuzz_target;

/// One scratch directory per fuzzing process, on tmpfs when available so
/// repair's fsyncs stay cheap.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("ember-fuzz-wal-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn read_all(dir: &Path) -> (Vec<Vec<u8>>, Option<Error>) {
    let mut reader = match Reader::open_dir(dir) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    let (mut series, mut samples, mut stones) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        match reader.next_record() {
            Ok(Some(rec)) => {
                let _ = record::decode_series(rec, &mut series);
                let _ = record::decode_samples(rec, &mut samples);
                let _ = record::decode_tombstones(rec, &mut stones);
                series.clear();
                samples.clear();
                stones.clear();
                out.push(rec.to_vec());
            }
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    match data.split_first() {
        Some((&sel, rest)) if sel & 1 == 1 => {
            let (a, b) = rest.split_at(rest.len() / 2);
            std::fs::write(segment_path(dir, 0), a).unwrap();
            std::fs::write(segment_path(dir, 1), b).unwrap();
        }
        _ => std::fs::write(segment_path(dir, 0), data).unwrap(),
    }

    let (records, err) = read_all(dir);
    if let Some(Error::Corruption {
        segment, offset, ..
    }) = err
    {
        repair(dir, segment, offset).unwrap();
        let (again, err) = read_all(dir);
        assert!(err.is_none(), "repaired WAL still fails: {err:?}");
        assert_eq!(again, records, "repair changed the intact prefix");
    }
});
