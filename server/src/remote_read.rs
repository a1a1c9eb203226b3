//! Remote read (`/api/v1/read`): answers `prometheus.ReadRequest`s from the head, either as sampled
//! results (`SAMPLES`, one snappy-compressed `ReadResponse`) or as streamed XOR chunks
//! (`STREAMED_XOR_CHUNKS`, what Thanos' sidecar and newer Prometheus clients ask for): a sequence of
//! frames, each `uvarint(length) | CRC32C(data) big-endian | data`, `data` being one `ChunkedReadResponse`.
//! Ember's chunks are Prometheus' XOR encoding, so they are sent as stored.
//!
//! Owns request decoding and response encoding; the HTTP layer picks status codes and headers.

use ember::{Db, MatchType, Matcher};
use prost::Message;

use crate::remote_write::proto::{
    Chunk, ChunkedReadResponse, ChunkedSeries, Label, QueryResult, ReadRequest, ReadResponse,
    Sample, TimeSeries,
};
use crate::remote_write::{Limits, WriteError, decompress};

/// Content type of a streamed-chunks response.
pub const STREAMED_CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// Frames are cut at about this many bytes of series, as Prometheus' default chunked read limit does.
const FRAME_BYTES: usize = 1 << 20;

/// How a response is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Samples,
    StreamedXorChunks,
}

/// Decodes a snappy-compressed `ReadRequest` and picks the first response type this server supports.
pub fn decode_request(
    body: &[u8],
    limits: &Limits,
) -> Result<(ReadRequest, ResponseType), WriteError> {
    let raw = decompress(body, limits)?;
    let req = ReadRequest::decode(raw.as_slice())
        .map_err(|e| WriteError::BadRequest(format!("decoding prometheus.ReadRequest: {e}")))?;
    let rt = req
        .accepted_response_types
        .iter()
        .find_map(|t| match t {
            0 => Some(ResponseType::Samples),
            1 => Some(ResponseType::StreamedXorChunks),
            _ => None,
        })
        .unwrap_or(ResponseType::Samples);
    Ok((req, rt))
}

fn matchers(q: &crate::remote_write::proto::Query) -> Result<Vec<Matcher>, WriteError> {
    q.matchers
        .iter()
        .map(|m| {
            let kind = match m.r#type {
                0 => MatchType::Equal,
                1 => MatchType::NotEqual,
                2 => MatchType::Regex,
                3 => MatchType::NotRegex,
                t => return Err(WriteError::BadRequest(format!("unknown matcher type {t}"))),
            };
            Matcher::new(kind, m.name.clone(), m.value.clone())
                .map_err(|e| WriteError::BadRequest(format!("matcher {}: {e}", m.name)))
        })
        .collect()
}

fn labels_of(s: &ember::Series) -> Vec<Label> {
    s.labels()
        .iter()
        .map(|l| Label {
            name: l.name.as_bytes().to_vec(),
            value: l.value.as_bytes().to_vec(),
        })
        .collect()
}

/// Answers every query with samples; returns the snappy-compressed `ReadResponse`.
pub fn samples_response(db: &Db, req: &ReadRequest) -> Result<Vec<u8>, WriteError> {
    let mut resp = ReadResponse::default();
    for q in &req.queries {
        let ms = matchers(q)?;
        let series = db
            .querier(q.start_timestamp_ms, q.end_timestamp_ms)
            .select(&ms);
        let mut result = QueryResult::default();
        for s in &series {
            let samples = s
                .samples()
                .map_err(|e| WriteError::Storage(e.to_string()))?;
            result.timeseries.push(TimeSeries {
                labels: labels_of(s),
                samples: samples
                    .into_iter()
                    .map(|(timestamp, value)| Sample { value, timestamp })
                    .collect(),
                ..Default::default()
            });
        }
        resp.results.push(result);
    }
    snap::raw::Encoder::new()
        .compress_vec(&resp.encode_to_vec())
        .map_err(|e| WriteError::Storage(format!("snappy: {e}")))
}

/// Answers every query with framed `ChunkedReadResponse`s of whole XOR chunks.
pub fn streamed_response(db: &Db, req: &ReadRequest) -> Result<Vec<u8>, WriteError> {
    let mut out = Vec::new();
    for (i, q) in req.queries.iter().enumerate() {
        let ms = matchers(q)?;
        let series = db
            .querier(q.start_timestamp_ms, q.end_timestamp_ms)
            .select(&ms);
        let mut frame = ChunkedReadResponse {
            chunked_series: Vec::new(),
            query_index: i as i64,
        };
        let mut size = 0;
        for s in &series {
            let chunks: Vec<Chunk> = s
                .chunks()
                .map(|(min, max, data)| Chunk {
                    min_time_ms: min,
                    max_time_ms: max,
                    r#type: 1,
                    data: data.to_vec(),
                })
                .collect();
            size += chunks.iter().map(|c| c.data.len() + 24).sum::<usize>();
            frame.chunked_series.push(ChunkedSeries {
                labels: labels_of(s),
                chunks,
            });
            if size >= FRAME_BYTES {
                write_frame(&mut out, &frame.encode_to_vec());
                frame.chunked_series.clear();
                size = 0;
            }
        }
        if !frame.chunked_series.is_empty() {
            write_frame(&mut out, &frame.encode_to_vec());
        }
    }
    Ok(out)
}

fn write_frame(out: &mut Vec<u8>, data: &[u8]) {
    let mut n = data.len() as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(&crc32c::crc32c(data).to_be_bytes());
    out.extend_from_slice(data);
}
