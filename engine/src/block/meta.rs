//! `meta.json`: what a block is (its ULID and time range), what it holds (counts), and where it came
//! from (compaction lineage), in Prometheus' JSON shape, plus the optional `thanos` section that Thanos
//! tools require (external labels, downsampling resolution, source).
//!
//! Reading is as lenient as Prometheus' where Prometheus' own writers never go (missing counts or
//! compaction fields, `null` lists, unknown keys) and strict on what identifies the block: `ulid`,
//! `minTime`, `maxTime` and `version` (which must be 1) are required. Unknown keys of the `thanos`
//! section are kept, so rewriting a Thanos-made `meta.json` loses nothing Thanos stored there.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use ulid::Ulid;

use super::META_FILENAME;
use super::fileutil::{io_err, write_atomically};
use crate::{Error, Result};

/// The only `meta.json` version (Prometheus' `metaVersion1`). The index states its own format version.
pub const META_VERSION: u32 = 1;
/// The only version of the `thanos` section; 0 (absent) is read as 1, as Thanos does.
pub const THANOS_META_VERSION: u32 = 1;

/// Contents of a block's `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    /// Identifies the block and its contents; a compaction's output gets a new one.
    #[serde(deserialize_with = "ulid_strict")]
    pub ulid: Ulid,
    /// Earliest sample timestamp the block may hold (inclusive), in milliseconds.
    pub min_time: i64,
    /// End of the block's range, **exclusive**: every sample is `< max_time`, so adjacent blocks share
    /// the boundary value (Prometheus' convention).
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: Compaction,
    /// Format version of `meta.json`; always [`META_VERSION`].
    pub version: u32,
    /// Thanos' section; absent in blocks written by Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanos: Option<ThanosMeta>,
}

/// Counts of what a block holds. Zero counts are left out of the JSON, as Prometheus does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_float_samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_histogram_samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

/// Compaction lineage of a block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    /// 1 for a block cut from the head; one more than the highest level of its parents otherwise.
    #[serde(default)]
    pub level: u32,
    /// ULIDs of all level-1 blocks whose data went into this block (a level-1 block lists itself).
    #[serde(
        default,
        deserialize_with = "ulids_strict",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<Ulid>,
    /// The compaction produced no samples; the block is to be deleted on the next reload.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deletable: bool,
    /// The blocks this one was compacted from directly.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub parents: Vec<BlockDesc>,
    /// A compaction of this block failed; the planner leaves it alone.
    #[serde(default, skip_serializing_if = "is_false")]
    pub failed: bool,
    /// Free-form notes such as `from-out-of-order`, sorted.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hints: Vec<String>,
}

/// A block named by ULID and time range, as listed among a compacted block's parents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    #[serde(deserialize_with = "ulid_strict")]
    pub ulid: Ulid,
    pub min_time: i64,
    pub max_time: i64,
}

/// The `thanos` section. Thanos refuses blocks without it in object storage; external labels tell which
/// Prometheus (or tenant) produced the block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosMeta {
    /// [`THANOS_META_VERSION`]; 0 means absent (read as 1).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub version: u32,
    /// External labels of the producer.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub downsample: ThanosDownsample,
    /// Which component produced the block (`sidecar`, `receive`, `compactor`, …).
    #[serde(default)]
    pub source: String,
    /// Fields Ember does not interpret (`files`, `segment_files`, `rewrites`, `index_stats`, …), kept
    /// as they were read.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Downsampling resolution in milliseconds; 0 for raw data, which is all Ember writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosDownsample {
    #[serde(default)]
    pub resolution: i64,
}

impl BlockMeta {
    /// Metadata for a new level-1 block over `[min_time, max_time)` with a fresh ULID, which is also its
    /// only source. Counts are left at zero for the writer to fill in.
    pub fn new(min_time: i64, max_time: i64) -> Self {
        let ulid = Ulid::new();
        BlockMeta {
            ulid,
            min_time,
            max_time,
            stats: BlockStats::default(),
            compaction: Compaction {
                level: 1,
                sources: vec![ulid],
                ..Compaction::default()
            },
            version: META_VERSION,
            thanos: None,
        }
    }

    /// Parses the bytes of a `meta.json`; `path` only names the file in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidMeta {
            path: path.to_path_buf(),
            reason,
        };
        let meta: BlockMeta = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if meta.version != META_VERSION {
            return Err(invalid(format!(
                "unsupported version {} (want {META_VERSION})",
                meta.version
            )));
        }
        if let Some(t) = &meta.thanos
            && t.version != 0
            && t.version != THANOS_META_VERSION
        {
            return Err(invalid(format!(
                "unsupported thanos section version {} (want {THANOS_META_VERSION})",
                t.version
            )));
        }
        Ok(meta)
    }

    /// The JSON text as Prometheus formats it: keys in its order, tab-indented.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        // Serializing plain structs, string maps and already-parsed JSON values into memory cannot fail.
        if self.serialize(&mut ser).is_err() {
            out.clear();
        }
        out
    }

    /// Reads `<block_dir>/meta.json`.
    pub fn read_from_dir(block_dir: &Path) -> Result<Self> {
        let path = block_dir.join(META_FILENAME);
        let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        Self::from_json(&bytes, &path)
    }

    /// Writes `<block_dir>/meta.json` atomically (temporary file, fsync, rename, directory fsync), with
    /// `version` set to [`META_VERSION`] whatever it was. Returns the file's size.
    pub fn write_to_dir(&mut self, block_dir: &Path) -> Result<u64> {
        self.version = META_VERSION;
        let bytes = self.to_json();
        write_atomically(&block_dir.join(META_FILENAME), &bytes)?;
        Ok(bytes.len() as u64)
    }

    /// This block as a parent entry of a compacted block.
    pub fn desc(&self) -> BlockDesc {
        BlockDesc {
            ulid: self.ulid,
            min_time: self.min_time,
            max_time: self.max_time,
        }
    }
}

impl ThanosMeta {
    /// A section for raw (not downsampled) data with the producer's external labels and `source`.
    pub fn new(labels: BTreeMap<String, String>, source: impl Into<String>) -> Self {
        ThanosMeta {
            version: THANOS_META_VERSION,
            labels,
            downsample: ThanosDownsample { resolution: 0 },
            source: source.into(),
            extra: serde_json::Map::new(),
        }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// Go writes a nil slice or map as `null` when it is not `omitempty`; read that as empty.
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The `ulid` crate keeps only the low 128 bits of a 26-character string whose first character is
/// above `7`; Go's `oklog/ulid` (and so Prometheus) refuses such a string as an overflow. Refusing it
/// too keeps a block from being renamed silently.
fn parse_ulid<E: serde::de::Error>(s: &str) -> std::result::Result<Ulid, E> {
    let u = Ulid::from_string(s).map_err(|e| E::custom(format!("invalid ULID {s:?}: {e}")))?;
    if s.as_bytes().first().is_some_and(|&c| c > b'7') {
        return Err(E::custom(format!("invalid ULID {s:?}: overflows 128 bits")));
    }
    Ok(u)
}

fn ulid_strict<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Ulid, D::Error> {
    parse_ulid(&String::deserialize(d)?)
}

fn ulids_strict<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Ulid>, D::Error> {
    Option::<Vec<String>>::deserialize(d)?
        .unwrap_or_default()
        .iter()
        .map(|s| parse_ulid(s))
        .collect()
}

#[cfg(test)]
mod tests;
