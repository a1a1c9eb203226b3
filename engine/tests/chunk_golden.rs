//! Golden bytes for the XOR chunk encoding.
//!
//! The first two vectors were derived by hand from the format (`docs/format/chunks.md`), bit by bit, in
//! the comments below; the encoder must produce exactly these bytes and the decoder must return the
//! samples. The third set is transcribed from a chunk segment file written by Prometheus itself
//! (`tsdb/testdata/index_format_v1/chunks/000001` in the Prometheus repository).

use ember::Error;
use ember::chunkenc::{ENCODING_XOR, XorAppender, XorIterator};

fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut a = XorAppender::new();
    for &(t, v) in samples {
        a.append(t, v);
    }
    a.into_bytes()
}

fn decode(bytes: &[u8]) -> Vec<(i64, u64)> {
    let mut it = XorIterator::new(bytes).expect("header");
    let out: Vec<_> = it.by_ref().map(|(t, v)| (t, v.to_bits())).collect();
    assert!(it.err().is_none(), "decode error: {:?}", it.err());
    out
}

fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
    samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

/// Six samples covering delta-of-delta buckets `0`, `10` (positive and negative) and `110`, and value
/// controls `0`, `10` (reuse window) and `11` (new window), ending with 3 padding bits.
const SERIES_A: [(i64, f64); 6] = [
    (1000, 1.0),
    (2000, 1.0),
    (3000, 2.0),
    (4010, 4.0),
    (15020, 4.0),
    (26020, -0.0),
];

#[rustfmt::skip]
const GOLDEN_A: [u8; 29] = [
    // Header: 6 samples, big-endian u16.
    0x00, 0x06,
    // Sample 0, t = 1000 as a signed varint: zig-zag 1000 -> 2000 = 0b1111_1010000.
    //   Low 7 bits 1010000 (0x50) with the continuation bit -> 0xD0; then 2000 >> 7 = 15 -> 0x0F.
    0xD0, 0x0F,
    // Sample 0, v = 1.0: raw IEEE-754 bits 0x3FF0_0000_0000_0000.
    0x3F, 0xF0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    // Sample 1, t delta = 1000 as an unsigned varint: low 7 bits 1101000 (0x68) | 0x80 -> 0xE8;
    //   1000 >> 7 = 7 -> 0x07. Everything so far is byte-aligned; bit fields start here.
    0xE8, 0x07,
    // From here on, the bit stream (fields separated by '|'):
    //   s1 value  1.0 ^ 1.0 = 0                                  -> 0
    //   s2 time   delta 1000, dod 0                              -> 0
    //   s2 value  1.0 ^ 2.0 = 0x3FF0.. ^ 0x4000.. = 0x7FF0_0000_0000_0000:
    //             1 leading zero, 52 trailing zeros, 11 significant bits; no window yet -> new window
    //             11 | 00001 | 001011 | 11111111111
    //   s3 time   delta 1010, dod +10: fits -8191..=8192         -> 10 | 00000000001010
    //   s3 value  2.0 ^ 4.0 = 0x0010_0000_0000_0000: 11 leading, 52 trailing; 11 >= 1 and 52 >= 52,
    //             so it fits the current window (leading 1, trailing 52, 11 bits)
    //             -> 10 | 00000000001   (0x0010.. >> 52 = 1 in 11 bits)
    //   s4 time   delta 11010, dod +10000: outside the 14-bit bucket, inside -65535..=65536
    //             10000 = 0b10011100010000, 17 bits                -> 110 | 00010011100010000
    //   s4 value  4.0 ^ 4.0 = 0                                  -> 0
    //   s5 time   delta 11000, dod -10: 14-bit two's complement 2^14 - 10 = 16374
    //                                                            -> 10 | 11111111110110
    //   s5 value  4.0 ^ -0.0 = 0x4010.. ^ 0x8000.. = 0xC010_0000_0000_0000: 0 leading, 52 trailing;
    //             0 < 1 so it does not fit -> new window, 12 significant bits (0xC01)
    //             11 | 00000 | 001100 | 110000000001
    //   117 bits in all, then 3 zero bits of padding.
    // Regrouped into bytes:
    //   00110000 10010111 11111111 11100000 00000010 10100000 00000011 10000100
    //   11100010 00001011 11111111 01101100 00000110 01100000 00001[000]
    0x30, 0x97, 0xFF, 0xE0, 0x02, 0xA0, 0x03, 0x84,
    0xE2, 0x0B, 0xFF, 0x6C, 0x06, 0x60, 0x08,
];

/// Four samples covering a negative first timestamp, the leading-zero clamp (63 -> 31), a 64-bit XOR
/// (significant-bit count 64 written as 0), dod buckets `1110` and `1111`, a NaN with payload, and an
/// exact byte boundary at the end (no padding).
fn series_b() -> [(i64, f64); 4] {
    let nan = f64::from_bits(0xFFFF_FFFF_FFFF_FFFE);
    [
        (-1, 0.0),
        (99, f64::from_bits(1)),
        (300_199, nan),
        (1_099_512_228_075, nan),
    ]
}

#[rustfmt::skip]
const GOLDEN_B: [u8; 39] = [
    // Header: 4 samples.
    0x00, 0x04,
    // Sample 0, t = -1: zig-zag -1 -> 1 -> varint 0x01.
    0x01,
    // Sample 0, v = 0.0.
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    // Sample 1, t delta = 100 -> uvarint 0x64.
    0x64,
    // Bit stream:
    //   s1 value  0.0 ^ 5e-324 = 0x1: 63 leading zeros, clamped to 31 (5 bits); 0 trailing;
    //             significant bits 64 - 31 - 0 = 33
    //             -> 11 | 11111 | 100001 | 00000000000000000000000000000000 1   (46 bits)
    //   s2 time   delta 300100, dod 300000 = 0x493E0: beyond the 17-bit bucket, inside -524287..=524288
    //             -> 1110 | 01001001001111100000                                   (24 bits)
    //   s2 value  0x1 ^ 0xFFFF_FFFF_FFFF_FFFE = all ones: 0 leading, 0 trailing; 0 < 31, new window;
    //             64 significant bits are written as 0 in 6 bits
    //             -> 11 | 00000 | 000000 | 64 ones                                  (77 bits)
    //   s3 time   delta 300100 + 2^40, dod 2^40 = 1_099_511_627_776: outside every small bucket
    //             -> 1111 | 64 bits with only bit 40 set (23 zeros, 1, 40 zeros)    (68 bits)
    //   s3 value  unchanged                                      -> 0              (1 bit)
    //   46 + 24 + 77 + 68 + 1 = 216 bits = 27 bytes exactly.
    // Regrouped into bytes:
    //   11111111 00001000 00000000 00000000 00000000 00000111 10010010 01001111
    //   10000011 00000000 00011111 11111111 x7 11111110 00000000 00000000 00000010
    //   00000000 x5
    0xFF, 0x08, 0x00, 0x00, 0x00, 0x07, 0x92, 0x4F,
    0x83, 0x00, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFE, 0x00, 0x00, 0x02, 0x00, 0x00,
    0x00, 0x00, 0x00,
];

#[test]
fn golden_a_hand_derived() {
    assert_eq!(encode(&SERIES_A), GOLDEN_A);
    assert_eq!(decode(&GOLDEN_A), bits(&SERIES_A));
}

#[test]
fn golden_b_hand_derived() {
    let s = series_b();
    assert_eq!(encode(&s), GOLDEN_B);
    assert_eq!(decode(&GOLDEN_B), bits(&s));
}

#[test]
fn golden_prefixes_are_valid_chunks() {
    // After every append, `to_bytes` is the complete chunk for the samples so far.
    let mut a = XorAppender::new();
    for (i, &(t, v)) in SERIES_A.iter().enumerate() {
        a.append(t, v);
        let b = a.to_bytes();
        assert_eq!(b.len(), a.size_bytes());
        assert_eq!(decode(&b), bits(&SERIES_A[..=i]));
    }
    assert_eq!(a.to_bytes(), GOLDEN_A);
}

#[test]
fn golden_resume_reproduces_bytes() {
    // Resuming after sample 3 (a '11' window has been seen) continues with the same bits.
    let prefix = encode(&SERIES_A[..4]);
    let mut a = XorAppender::from_bytes(prefix).unwrap();
    for &(t, v) in &SERIES_A[4..] {
        a.append(t, v);
    }
    assert_eq!(a.into_bytes(), GOLDEN_A);
}

#[test]
fn golden_seek() {
    let mut it = XorIterator::new(&GOLDEN_A).unwrap();
    assert_eq!(it.seek(4000), Some((4010, 4.0)));
    assert_eq!(it.seek(4010), Some((4010, 4.0)));
    assert_eq!(it.next_sample(), Some((15020, 4.0)));
    assert_eq!(it.seek(26021), None);
    assert!(it.err().is_none());
}

#[test]
fn golden_corruption() {
    // Cut the last byte: the final value field is incomplete.
    let mut it = XorIterator::new(&GOLDEN_A[..GOLDEN_A.len() - 1]).unwrap();
    assert_eq!(it.by_ref().count(), 5);
    match it.err() {
        Some(Error::CorruptChunk { bit_offset, .. }) => assert!(*bit_offset < 28 * 8),
        other => panic!("expected CorruptChunk, got {other:?}"),
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit; the test needs only a few bytes.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Two chunk records from a block chunk segment file written by an old Prometheus release: `len`
/// (uvarint, 12), encoding (1 = XOR), 12 data bytes, CRC-32C of encoding + data (big-endian). The series
/// are `{foo="bar"}` with the sample (1, 2.0) and `{foo="baz"}` with (3, 4.0). That release's byte writer
/// left one extra zero byte after the value; readers ignore it, and current Prometheus (like us) does not
/// write it.
#[rustfmt::skip]
const PROM_RECORDS: [([u8; 18], (i64, f64)); 2] = [
    ([0x0C, 0x01,
      0x00, 0x01, 0x02, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x59, 0x7A, 0xD2, 0x76], (1, 2.0)),
    ([0x0C, 0x01,
      0x00, 0x01, 0x06, 0x40, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0xFE, 0x61, 0xAE, 0x45], (3, 4.0)),
];

#[test]
fn golden_prometheus_block_records() {
    for (record, sample) in PROM_RECORDS {
        let len = usize::from(record[0]);
        assert_eq!(record[1], ENCODING_XOR);
        let data = &record[2..2 + len];
        let crc = u32::from_be_bytes(record[2 + len..].try_into().unwrap());
        assert_eq!(
            crc32c(&record[1..2 + len]),
            crc,
            "checksum covers encoding byte + data"
        );

        assert_eq!(decode(data), bits(&[sample]));
        assert_eq!(
            encode(&[sample]),
            data[..len - 1],
            "same bytes minus the old trailing zero"
        );

        // Appending to the Prometheus-written chunk continues right after the value.
        let mut a = XorAppender::from_bytes(data.to_vec()).unwrap();
        a.append(sample.0 + 1, sample.1);
        assert_eq!(
            decode(&a.to_bytes()),
            bits(&[sample, (sample.0 + 1, sample.1)])
        );
    }
}
