//! The remote-write receiver's protocol layer: content negotiation between remote write 1.0 and 2.0,
//! snappy decompression with a size limit (so a snappy bomb cannot exhaust memory), protobuf decoding,
//! label validation, and appending to the database with the spec's outcome rules.
//!
//! It owns what a request means; it does not own HTTP (status codes and headers are chosen by the HTTP
//! layer from [`WriteError`] and [`WriteOutcome`]) or storage rules (out-of-order and duplicate samples are
//! refused by the appender and reported here).

pub mod proto;

use ember::{Db, Labels};
use prost::Message;

/// Which protocol a request speaks, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `prometheus.WriteRequest`.
    V1,
    /// `io.prometheus.write.v2.Request`.
    V2,
}

/// Size limits on one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Compressed body bytes.
    pub max_body_bytes: usize,
    /// Bytes after snappy decompression.
    pub max_decompressed_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Prometheus' own senders cap a request at a few MiB; 32 MiB of body and 256 MiB decompressed leave
        // room for large batches while bounding what one request can make the server allocate.
        Limits {
            max_body_bytes: 32 << 20,
            max_decompressed_bytes: 256 << 20,
        }
    }
}

/// Why a whole request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The content type or encoding is not one this receiver speaks (HTTP 415).
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The body is larger than allowed, compressed or decompressed (HTTP 413).
    #[error("request too large: {0}")]
    TooLarge(String),
    /// The body is not valid snappy or protobuf (HTTP 400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The database could not make the batch durable; the sender should retry (HTTP 500).
    #[error("storage error: {0}")]
    Storage(String),
}

/// Picks the protocol from `Content-Type` and checks `Content-Encoding`, as the 2.0 spec describes:
/// a missing type means 1.0, a missing encoding means snappy, anything else unknown is refused.
pub fn negotiate(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<Protocol, WriteError> {
    if let Some(enc) = content_encoding
        && !enc.trim().eq_ignore_ascii_case("snappy")
    {
        return Err(WriteError::UnsupportedMediaType(format!(
            "content encoding {enc:?} is not supported; only snappy is"
        )));
    }
    let Some(ct) = content_type else {
        return Ok(Protocol::V1);
    };
    let mut parts = ct.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(WriteError::UnsupportedMediaType(format!(
            "content type {ct:?} is not supported; expected application/x-protobuf"
        )));
    }
    for p in parts {
        if let Some(proto) = p.strip_prefix("proto=") {
            return match proto.trim_matches('"') {
                "prometheus.WriteRequest" => Ok(Protocol::V1),
                "io.prometheus.write.v2.Request" => Ok(Protocol::V2),
                other => Err(WriteError::UnsupportedMediaType(format!(
                    "protobuf message {other:?} is not supported; expected prometheus.WriteRequest or io.prometheus.write.v2.Request"
                ))),
            };
        }
    }
    Ok(Protocol::V1)
}

/// Decompresses a snappy block-format body, refusing before allocation when the declared length is over
/// the limit.
pub fn decompress(body: &[u8], limits: &Limits) -> Result<Vec<u8>, WriteError> {
    if body.len() > limits.max_body_bytes {
        return Err(WriteError::TooLarge(format!(
            "body of {} bytes exceeds the limit of {} bytes",
            body.len(),
            limits.max_body_bytes
        )));
    }
    let len = snap::raw::decompress_len(body).map_err(|e| {
        WriteError::BadRequest(format!(
            "snappy: {e} (only the snappy block format is accepted)"
        ))
    })?;
    if len > limits.max_decompressed_bytes {
        return Err(WriteError::TooLarge(format!(
            "body decompresses to {len} bytes, over the limit of {} bytes",
            limits.max_decompressed_bytes
        )));
    }
    snap::raw::Decoder::new().decompress_vec(body).map_err(|e| {
        WriteError::BadRequest(format!(
            "snappy: {e} (only the snappy block format is accepted)"
        ))
    })
}

/// One series of a request after decoding: its labels (or why they are invalid) and its float samples.
#[derive(Debug)]
pub struct DecodedSeries {
    pub labels: Result<Labels, String>,
    pub samples: Vec<(i64, f64)>,
    pub histograms: usize,
    pub exemplars: usize,
}

/// A label's name and value as they arrived, before validation.
type LabelBytes<'a> = (&'a [u8], &'a [u8]);

/// Decodes a decompressed body of either protocol.
pub fn decode(protocol: Protocol, bytes: &[u8]) -> Result<Vec<DecodedSeries>, WriteError> {
    match protocol {
        Protocol::V1 => decode_v1(bytes),
        Protocol::V2 => decode_v2(bytes),
    }
}

fn decode_v1(bytes: &[u8]) -> Result<Vec<DecodedSeries>, WriteError> {
    let req = proto::WriteRequest::decode(bytes)
        .map_err(|e| WriteError::BadRequest(format!("decoding prometheus.WriteRequest: {e}")))?;
    Ok(req
        .timeseries
        .into_iter()
        .map(|ts| DecodedSeries {
            labels: validate_labels(
                ts.labels
                    .iter()
                    .map(|l| (l.name.as_slice(), l.value.as_slice())),
            ),
            samples: ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
            histograms: ts.histograms.len(),
            exemplars: ts.exemplars.len(),
        })
        .collect())
}

fn decode_v2(bytes: &[u8]) -> Result<Vec<DecodedSeries>, WriteError> {
    let req = proto::RequestV2::decode(bytes).map_err(|e| {
        WriteError::BadRequest(format!("decoding io.prometheus.write.v2.Request: {e}"))
    })?;
    if req.symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(WriteError::BadRequest(
            "the symbol table must start with the empty string".into(),
        ));
    }
    let symbols = &req.symbols;
    Ok(req
        .timeseries
        .into_iter()
        .map(|ts| {
            let labels = if ts.labels_refs.len() % 2 != 0 {
                Err(format!(
                    "odd number of label references ({})",
                    ts.labels_refs.len()
                ))
            } else {
                let pairs: Result<Vec<LabelBytes>, String> = ts
                    .labels_refs
                    .chunks_exact(2)
                    .map(|p| {
                        let get = |r: u32| {
                            symbols.get(r as usize).map(Vec::as_slice).ok_or_else(|| {
                                format!(
                                    "label reference {r} outside the symbol table of {} entries",
                                    symbols.len()
                                )
                            })
                        };
                        Ok((get(p[0])?, get(p[1])?))
                    })
                    .collect();
                pairs.and_then(|p| validate_labels(p.into_iter()))
            };
            DecodedSeries {
                labels,
                samples: ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
                histograms: ts.histograms.len(),
                exemplars: ts.exemplars.len(),
            }
        })
        .collect())
}

/// The spec's label rules: valid UTF-8, a metric name, names non-empty, unique and sorted.
fn validate_labels<'a>(
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Labels, String> {
    let pairs: Vec<(&[u8], &[u8])> = pairs.collect();
    for w in pairs.windows(2) {
        if w[0].0 >= w[1].0 {
            let (a, b) = (
                String::from_utf8_lossy(w[0].0),
                String::from_utf8_lossy(w[1].0),
            );
            return Err(if w[0].0 == w[1].0 {
                format!("duplicate label name {a:?}")
            } else {
                format!("labels are not sorted by name ({a:?} before {b:?})")
            });
        }
    }
    let labels = Labels::from_bytes_pairs(pairs.iter().copied()).map_err(|e| e.to_string())?;
    match labels.get("__name__") {
        Some(_) => Ok(labels),
        None => Err(format!("series {labels} has no metric name (__name__)")),
    }
}

/// What happened to a request's content.
#[derive(Debug, Default, Clone)]
pub struct WriteOutcome {
    pub samples_written: u64,
    pub samples_rejected: u64,
    pub series_rejected: u64,
    pub histograms_rejected: u64,
    pub exemplars_ignored: u64,
    /// The first few reasons, for the 400 body.
    pub errors: Vec<String>,
}

impl WriteOutcome {
    const MAX_ERRORS: usize = 10;

    fn note(&mut self, msg: String) {
        if self.errors.len() < Self::MAX_ERRORS {
            self.errors.push(msg);
        }
    }

    /// Whether anything in the request was refused (the HTTP layer answers 400).
    pub fn has_rejections(&self) -> bool {
        self.samples_rejected > 0 || self.series_rejected > 0 || self.histograms_rejected > 0
    }

    /// A readable summary for a 400 body.
    pub fn message(&self) -> String {
        let mut m = format!(
            "{} samples written; refused: {} samples, {} series, {} native histograms (not supported yet)",
            self.samples_written,
            self.samples_rejected,
            self.series_rejected,
            self.histograms_rejected
        );
        for e in &self.errors {
            m.push('\n');
            m.push_str(e);
        }
        m
    }
}

/// Appends every valid sample of the request in one batch and commits it. Invalid series and refused
/// samples are counted and described; they do not stop the rest. An error means nothing of the request
/// is durable and the sender should retry.
pub fn apply(db: &Db, series: Vec<DecodedSeries>) -> Result<WriteOutcome, WriteError> {
    let mut out = WriteOutcome::default();
    let mut app = db.appender();
    for s in series {
        out.exemplars_ignored += s.exemplars as u64;
        if s.histograms > 0 {
            out.histograms_rejected += s.histograms as u64;
            out.note(format!(
                "{} native histogram samples refused: native histograms are not supported yet",
                s.histograms
            ));
        }
        let labels = match s.labels {
            Ok(l) => l,
            Err(e) => {
                out.series_rejected += 1;
                out.samples_rejected += s.samples.len() as u64;
                out.note(format!("invalid series: {e}"));
                continue;
            }
        };
        let mut r = None;
        for (t, v) in s.samples {
            let res = match r {
                Some(r) => app.append_ref(r, t, v),
                None => app.append(&labels, t, v).map(|x| {
                    r = Some(x);
                }),
            };
            match res {
                Ok(()) => out.samples_written += 1,
                Err(e) => {
                    out.samples_rejected += 1;
                    out.note(format!("series {labels}: sample at {t}: {e}"));
                }
            }
        }
    }
    app.commit()
        .map_err(|e| WriteError::Storage(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests;
