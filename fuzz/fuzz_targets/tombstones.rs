//! Fuzzes the tombstones file reader. Checked with every input, taken both as a whole file and as the
//! entries of a file with a valid header and checksum (so the CRC does not stop the fuzzer before the
//! entry parser):
//!
//! 1. Decoding never panics; an error is a `CorruptFile` naming the file, with an offset inside it.
//! 2. What decodes is well formed (per series: sorted, disjoint, non-adjacent, non-empty intervals),
//!    and encoding it decodes back to the same tombstones.
#![no_main]

use std::path::Path;

use ember::Error;
use ember::tombstones::Tombstones;
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    let path = Path::new("fuzz/tombstones");
    match Tombstones::decode(bytes, path) {
        Ok(t) => {
            for (_, ivs) in t.iter() {
                assert!(!ivs.is_empty());
                for iv in ivs {
                    assert!(iv.mint <= iv.maxt);
                }
                for w in ivs.windows(2) {
                    assert!(i128::from(w[0].maxt) + 1 < i128::from(w[1].mint), "{ivs:?}");
                }
            }
            let enc = t.encode();
            assert_eq!(Tombstones::decode(&enc, path).unwrap(), t);
        }
        Err(Error::CorruptFile {
            path: p, offset, ..
        }) => {
            assert_eq!(p, path);
            assert!(offset as usize <= bytes.len());
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut file = vec![0x01, 0x30, 0xBA, 0x30, 0x01];
    file.extend_from_slice(data);
    file.extend_from_slice(&crc32c::crc32c(data).to_be_bytes());
    check(&file);
});
