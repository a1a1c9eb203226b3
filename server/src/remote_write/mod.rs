//! The remote-write receiver's protocol layer: content negotiation between remote write 1.0 and 2.0,
//! snappy decompression with a size limit (so a snappy bomb cannot exhaust memory), protobuf decoding,
//! label validation, and appending to the database with the spec's outcome rules.
//!
//! It owns what a request means; it does not own HTTP (status codes and headers are chosen by the HTTP
//! layer from [`WriteError`] and [`WriteOutcome`]) or storage rules (out-of-order and duplicate samples are
//! refused by the appender and reported here).

pub mod proto;
mod wire;

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

/// A decoded request: every series' label pairs and samples in two flat lists, label bytes borrowed from
/// the body (1.0) or from the decoded symbol table (2.0). Labels are as they arrived, not yet validated.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    pairs: Vec<LabelBytes<'a>>,
    samples: Vec<(i64, f64)>,
    series: Vec<SeriesEntry>,
}

/// Where one series' pairs and samples end in its [`Batch`], and what else it carried.
#[derive(Debug, Default)]
struct SeriesEntry {
    pairs_end: usize,
    samples_end: usize,
    histograms: usize,
    exemplars: usize,
    /// Why the series' labels could not even be resolved (2.0 symbol references).
    invalid: Option<String>,
}

/// One series of a [`Batch`].
#[derive(Debug)]
pub struct SeriesView<'b, 'a> {
    /// The label pairs in wire order, or why they could not be resolved.
    pub labels: Result<&'b [LabelBytes<'a>], &'b str>,
    pub samples: &'b [(i64, f64)],
    pub histograms: usize,
    pub exemplars: usize,
}

impl<'a> Batch<'a> {
    /// The series in request order.
    pub fn series(&self) -> impl Iterator<Item = SeriesView<'_, 'a>> {
        let (mut pairs_start, mut samples_start) = (0, 0);
        self.series.iter().map(move |e| {
            let view = SeriesView {
                labels: match &e.invalid {
                    Some(msg) => Err(msg.as_str()),
                    None => Ok(self.pairs.get(pairs_start..e.pairs_end).unwrap_or_default()),
                },
                samples: self
                    .samples
                    .get(samples_start..e.samples_end)
                    .unwrap_or_default(),
                histograms: e.histograms,
                exemplars: e.exemplars,
            };
            (pairs_start, samples_start) = (e.pairs_end, e.samples_end);
            view
        })
    }
}

/// One series of a request after decoding and label validation (the owned form tests and the fuzz target
/// inspect; ingestion works on [`Batch`] directly).
#[derive(Debug)]
pub struct DecodedSeries {
    pub labels: Result<Labels, String>,
    pub samples: Vec<(i64, f64)>,
    pub histograms: usize,
    pub exemplars: usize,
}

/// A label's name and value as they arrived, before validation.
pub type LabelBytes<'a> = (&'a [u8], &'a [u8]);

/// Decodes a decompressed body of either protocol and validates every series' labels.
pub fn decode(protocol: Protocol, bytes: &[u8]) -> Result<Vec<DecodedSeries>, WriteError> {
    let owned = |batch: &Batch| {
        batch
            .series()
            .map(|s| DecodedSeries {
                labels: s
                    .labels
                    .map_err(str::to_string)
                    .and_then(|p| validate_labels(p.iter().copied())),
                samples: s.samples.to_vec(),
                histograms: s.histograms,
                exemplars: s.exemplars,
            })
            .collect()
    };
    match protocol {
        Protocol::V1 => Ok(owned(&decode_v1(bytes)?)),
        Protocol::V2 => {
            let req = decode_v2_message(bytes)?;
            Ok(owned(&batch_v2(&req)?))
        }
    }
}

/// Decodes a 1.0 body with the prost-derived messages of [`proto`]: the reference the zero-copy decoder
/// must agree with (the `remote_write` fuzz target and the unit tests compare the two).
pub fn decode_v1_reference(bytes: &[u8]) -> Result<Vec<DecodedSeries>, WriteError> {
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

/// Decodes a decompressed body and appends it to `db` ([`apply`]).
pub fn write(db: &Db, protocol: Protocol, bytes: &[u8]) -> Result<WriteOutcome, WriteError> {
    match protocol {
        Protocol::V1 => apply(db, &decode_v1(bytes)?),
        Protocol::V2 => {
            let req = decode_v2_message(bytes)?;
            apply(db, &batch_v2(&req)?)
        }
    }
}

/// Decodes a 1.0 body without copying label bytes.
pub fn decode_v1(bytes: &[u8]) -> Result<Batch<'_>, WriteError> {
    wire::decode_write_request(bytes)
        .map_err(|e| WriteError::BadRequest(format!("decoding prometheus.WriteRequest: {e}")))
}

fn decode_v2_message(bytes: &[u8]) -> Result<proto::RequestV2, WriteError> {
    proto::RequestV2::decode(bytes).map_err(|e| {
        WriteError::BadRequest(format!("decoding io.prometheus.write.v2.Request: {e}"))
    })
}

/// Resolves a 2.0 request's symbol references into a batch borrowing from its symbol table.
fn batch_v2(req: &proto::RequestV2) -> Result<Batch<'_>, WriteError> {
    if req.symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err(WriteError::BadRequest(
            "the symbol table must start with the empty string".into(),
        ));
    }
    let symbols = &req.symbols;
    let get = |r: u32| {
        symbols.get(r as usize).map(Vec::as_slice).ok_or_else(|| {
            format!(
                "label reference {r} outside the symbol table of {} entries",
                symbols.len()
            )
        })
    };
    let mut batch = Batch::default();
    for ts in &req.timeseries {
        let mut entry = SeriesEntry {
            histograms: ts.histograms.len(),
            exemplars: ts.exemplars.len(),
            ..Default::default()
        };
        let start = batch.pairs.len();
        if ts.labels_refs.len() % 2 != 0 {
            entry.invalid = Some(format!(
                "odd number of label references ({})",
                ts.labels_refs.len()
            ));
        } else {
            for p in ts.labels_refs.chunks_exact(2) {
                match (get(p[0]), get(p[1])) {
                    (Ok(n), Ok(v)) => batch.pairs.push((n, v)),
                    (Err(e), _) | (_, Err(e)) => {
                        entry.invalid = Some(e);
                        batch.pairs.truncate(start);
                        break;
                    }
                }
            }
        }
        batch
            .samples
            .extend(ts.samples.iter().map(|s| (s.timestamp, s.value)));
        entry.pairs_end = batch.pairs.len();
        entry.samples_end = batch.samples.len();
        batch.series.push(entry);
    }
    Ok(batch)
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

/// Whether [`validate_labels`] would accept these pairs, for pairs whose label set the head already holds:
/// names non-empty and strictly increasing, a non-empty `__name__`, and UTF-8 names on the empty-valued
/// pairs (the only bytes the head's comparison skips; every other byte is compared with stored, valid
/// strings). Checked without allocating, so a known series costs no label set.
fn valid_if_known(pairs: &[LabelBytes]) -> bool {
    let mut prev: Option<&[u8]> = None;
    let mut has_name = false;
    for &(n, v) in pairs {
        if n.is_empty() || prev.is_some_and(|p| p >= n) {
            return false;
        }
        if v.is_empty() {
            if std::str::from_utf8(n).is_err() {
                return false;
            }
        } else if n == b"__name__" {
            has_name = true;
        }
        prev = Some(n);
    }
    has_name
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

    /// Keeps a reason for the 400 body; the message is only built while there is room for it.
    fn note(&mut self, msg: impl FnOnce() -> String) {
        if self.errors.len() < Self::MAX_ERRORS {
            self.errors.push(msg());
        }
    }

    fn reject_series(&mut self, samples: usize, why: &str) {
        self.series_rejected += 1;
        self.samples_rejected += samples as u64;
        self.note(|| format!("invalid series: {why}"));
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
pub fn apply(db: &Db, batch: &Batch) -> Result<WriteOutcome, WriteError> {
    let mut out = WriteOutcome::default();
    let mut app = db.appender();
    for s in batch.series() {
        out.exemplars_ignored += s.exemplars as u64;
        if s.histograms > 0 {
            out.histograms_rejected += s.histograms as u64;
            out.note(|| {
                format!(
                    "{} native histogram samples refused: native histograms are not supported yet",
                    s.histograms
                )
            });
        }
        let pairs = match s.labels {
            Ok(p) => p,
            Err(e) => {
                out.reject_series(s.samples.len(), e);
                continue;
            }
        };
        // A series the head already holds is found from the bytes; only a new (or invalid) one builds
        // and validates a label set.
        let mut r = if valid_if_known(pairs) {
            app.get_ref(pairs)
        } else {
            None
        };
        let labels = match r {
            Some(_) => None,
            None => match validate_labels(pairs.iter().copied()) {
                Ok(l) => Some(l),
                Err(e) => {
                    out.reject_series(s.samples.len(), &e);
                    continue;
                }
            },
        };
        for &(t, v) in s.samples {
            let res = match (r, &labels) {
                (Some(r), _) => app.append_ref(r, t, v),
                (None, Some(l)) => app.append(l, t, v).map(|x| {
                    r = Some(x);
                }),
                (None, None) => unreachable!("a series without a ref has validated labels"),
            };
            match res {
                Ok(()) => out.samples_written += 1,
                Err(e) => {
                    out.samples_rejected += 1;
                    out.note(|| {
                        let name = match &labels {
                            Some(l) => l.to_string(),
                            None => validate_labels(pairs.iter().copied())
                                .map(|l| l.to_string())
                                .unwrap_or_default(),
                        };
                        format!("series {name}: sample at {t}: {e}")
                    });
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
