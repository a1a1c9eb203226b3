//! Prometheus' `labels.Hash()`, needed where a hash value is observable in query results:
//! `limit_ratio` keeps a series when `hash / u64::MAX` falls under the ratio, so the same series must be
//! picked as Prometheus picks them.
//!
//! Owns a small XXH64 (seed 0, as `cespare/xxhash`) and the byte stream Prometheus hashes: its default
//! (`stringlabels`) build hashes the packed label encoding, each name and value preceded by its length
//! (one byte below 255, else `0xff` and three little-endian bytes). Ember's own `Labels::stable_hash`
//! is XXH3 over a different stream, so it cannot be reused here. It does not own grouping or matching
//! keys, which never leave the evaluator and use ordinary hashing.

use ember_index::Labels;

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn merge_round(acc: u64, lane: u64) -> u64 {
    (acc ^ round(0, lane)).wrapping_mul(P1).wrapping_add(P4)
}

fn read_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

fn read_u32(b: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes(b[..4].try_into().expect("4 bytes")))
}

/// XXH64 of `data` with seed 0.
pub(crate) fn xxh64(data: &[u8]) -> u64 {
    let mut rest = data;
    let mut h = if data.len() >= 32 {
        let mut v = [P1.wrapping_add(P2), P2, 0, 0u64.wrapping_sub(P1)];
        while rest.len() >= 32 {
            for (i, lane) in v.iter_mut().enumerate() {
                *lane = round(*lane, read_u64(&rest[i * 8..]));
            }
            rest = &rest[32..];
        }
        let mut h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        for lane in v {
            h = merge_round(h, lane);
        }
        h
    } else {
        P5
    };
    h = h.wrapping_add(data.len() as u64);
    while rest.len() >= 8 {
        h = (h ^ round(0, read_u64(rest)))
            .rotate_left(27)
            .wrapping_mul(P1)
            .wrapping_add(P4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        h = (h ^ read_u32(rest).wrapping_mul(P1))
            .rotate_left(23)
            .wrapping_mul(P2)
            .wrapping_add(P3);
        rest = &rest[4..];
    }
    for &b in rest {
        h = (h ^ u64::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

fn push_sized(buf: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 255 {
        buf.push(n as u8);
    } else {
        buf.extend_from_slice(&[255, n as u8, (n >> 8) as u8, (n >> 16) as u8]);
    }
    buf.extend_from_slice(s.as_bytes());
}

/// The value Prometheus' `labels.Hash()` returns for `labels` (default build).
pub(crate) fn prometheus_hash(labels: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(128);
    for l in labels.iter() {
        push_sized(&mut buf, &l.name);
        push_sized(&mut buf, &l.value);
    }
    xxh64(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh64_reference_vectors() {
        // Published XXH64 digests (seed 0).
        assert_eq!(xxh64(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a"), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxh64(b"abc"), 0x44BC_2CF5_AD77_0999);
        assert_eq!(
            xxh64(b"Nobody inspects the spammish repetition"),
            0xFBCE_A83C_8A37_8BF1
        );
    }

    #[test]
    fn hash_covers_names_and_values_with_lengths() {
        let a = Labels::from_pairs([("a", "bc")]).unwrap();
        let b = Labels::from_pairs([("ab", "c")]).unwrap();
        assert_ne!(prometheus_hash(&a), prometheus_hash(&b));
        assert_eq!(prometheus_hash(&a), xxh64(b"\x01a\x02bc"));
    }
}
