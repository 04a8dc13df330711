//! Prometheus remote write 1.0 (`/api/v1/write`): a snappy block-compressed protobuf
//! `prometheus.WriteRequest` to series and metadata, and the encoder senders use.
//!
//! The messages are declared by hand with prost's derive (field numbers from Prometheus'
//! `prompb/types.proto` and `prompb/remote.proto`) so the build needs no `protoc` and
//! carries only the fields we read. Exemplars are ignored; native histograms (field 4 of
//! `TimeSeries`) are rejected with an error naming the series, since this storage keeps
//! float samples only. Series are validated as Prometheus does before appending: a
//! `__name__` is required, names must be valid (`[a-zA-Z_:][a-zA-Z0-9_:]*` for the metric
//! name, the same without `:` for label names) and unique; labels may come in any order
//! (they are sorted); empty values mean "absent". Samples are kept in the order sent.

use prost::Message;
use sightline_model::{Labels, MetricMetadata, MetricType, Sample, TimeSeries, METRIC_NAME};

use crate::error::{Error, Result};
use crate::exposition::MetricBatch;
use crate::metric_names::{is_valid_label_name, is_valid_metric_name};

/// `prometheus.WriteRequest` (remote.proto): field 2 is reserved.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<PbTimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<PbMetricMetadata>,
}

/// `prometheus.TimeSeries` (types.proto).
#[derive(Clone, PartialEq, Message)]
pub struct PbTimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<PbLabel>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PbSample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<PbExemplar>,
    /// Native histograms; only their presence matters here (they are rejected), so their
    /// content is kept as raw bytes rather than declaring the whole message.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub histograms: Vec<Vec<u8>>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct PbLabel {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: timestamp in milliseconds.
#[derive(Clone, PartialEq, Message)]
pub struct PbSample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar` (decoded to be skipped).
#[derive(Clone, PartialEq, Message)]
pub struct PbExemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<PbLabel>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`: `type` is the `MetricType` enum (UNKNOWN = 0, COUNTER,
/// GAUGE, HISTOGRAM, GAUGEHISTOGRAM, SUMMARY, INFO, STATESET = 7); field 3 is unused.
#[derive(Clone, PartialEq, Message)]
pub struct PbMetricMetadata {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Decodes a remote-write body. `max_decompressed` bounds the size announced in the
/// snappy header, checked before anything is allocated.
///
/// # Errors
/// [`Error::RemoteWrite`] when the body is not snappy block format, announces more than
/// `max_decompressed` bytes, is not a `WriteRequest`, or a series breaks a rule above
/// (named by its 0-based index and the label).
pub fn decode_write_request(body: &[u8], max_decompressed: usize) -> Result<MetricBatch> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| Error::RemoteWrite(format!("invalid snappy block: {e}")))?;
    if len > max_decompressed {
        return Err(Error::RemoteWrite(format!(
            "decompressed size {len} bytes exceeds the limit of {max_decompressed} bytes"
        )));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| Error::RemoteWrite(format!("invalid snappy block: {e}")))?;
    let req = WriteRequest::decode(raw.as_slice())
        .map_err(|e| Error::RemoteWrite(format!("invalid protobuf: {e}")))?;
    let mut series = Vec::with_capacity(req.timeseries.len());
    for (i, ts) in req.timeseries.into_iter().enumerate() {
        series.push(convert_series(i, ts).map_err(Error::RemoteWrite)?);
    }
    let metadata = req
        .metadata
        .into_iter()
        .map(|m| MetricMetadata {
            metric_family_name: m.metric_family_name,
            // An enum number from a newer Prometheus reads as unknown, as proto3 does.
            metric_type: u64::try_from(m.r#type)
                .ok()
                .and_then(MetricType::from_code)
                .unwrap_or(MetricType::Unknown),
            help: m.help,
            unit: m.unit,
        })
        .collect();
    Ok(MetricBatch { series, metadata })
}

/// One series, checked; `Err` names the series index and label.
fn convert_series(i: usize, ts: PbTimeSeries) -> Result<TimeSeries, String> {
    if !ts.histograms.is_empty() {
        return Err(format!(
            "series {i}: native histograms are not supported (send classic histograms)"
        ));
    }
    let mut name = None;
    for l in &ts.labels {
        if l.name == METRIC_NAME {
            if !is_valid_metric_name(&l.value) {
                return Err(format!("series {i}: invalid metric name {:?}", l.value));
            }
            name = Some(&l.value);
        } else if !is_valid_label_name(&l.name) {
            return Err(format!("series {i}: invalid label name {:?}", l.name));
        }
    }
    if name.is_none() {
        return Err(format!("series {i}: no {METRIC_NAME} label"));
    }
    let labels = Labels::from_pairs(ts.labels.into_iter().map(|l| (l.name, l.value)))
        .map_err(|e| format!("series {i}: {e}"))?;
    let samples = ts
        .samples
        .into_iter()
        .map(|s| Sample {
            timestamp_ms: s.timestamp,
            value: s.value,
        })
        .collect();
    Ok(TimeSeries { labels, samples })
}

/// The remote-write body (snappy block format) of `series` and `metadata`, labels in
/// sorted order as Prometheus sends them.
pub fn encode_write_request(series: &[TimeSeries], metadata: &[MetricMetadata]) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: series
            .iter()
            .map(|s| PbTimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|(k, v)| PbLabel {
                        name: k.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                samples: s
                    .samples
                    .iter()
                    .map(|p| PbSample {
                        value: p.value,
                        timestamp: p.timestamp_ms,
                    })
                    .collect(),
                exemplars: Vec::new(),
                histograms: Vec::new(),
            })
            .collect(),
        metadata: metadata
            .iter()
            .map(|m| PbMetricMetadata {
                r#type: i32::from(m.metric_type.code()),
                metric_family_name: m.metric_family_name.clone(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            })
            .collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("BUG: snappy cannot compress an in-memory protobuf")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 1 << 24;

    fn raw_request(labels: &[(&str, &str)]) -> Vec<u8> {
        let req = WriteRequest {
            timeseries: vec![PbTimeSeries {
                labels: labels
                    .iter()
                    .map(|(k, v)| PbLabel {
                        name: k.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                samples: vec![PbSample {
                    value: 1.5,
                    timestamp: 1000,
                }],
                exemplars: vec![PbExemplar {
                    labels: vec![],
                    value: 2.0,
                    timestamp: 1000,
                }],
                histograms: vec![],
            }],
            metadata: vec![PbMetricMetadata {
                r#type: 2,
                metric_family_name: "up".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        };
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap()
    }

    #[test]
    fn decodes_unsorted_labels_and_metadata() {
        let b = decode_write_request(
            &raw_request(&[("job", "a"), ("__name__", "up"), ("empty", "")]),
            MAX,
        )
        .unwrap();
        assert_eq!(b.series.len(), 1);
        assert_eq!(b.series[0].labels.to_string(), r#"up{job="a"}"#);
        assert_eq!(
            b.series[0].samples,
            vec![Sample {
                timestamp_ms: 1000,
                value: 1.5
            }]
        );
        assert_eq!(b.metadata[0].metric_type, MetricType::Gauge);
        assert_eq!(b.metadata[0].help, "h");
    }

    #[test]
    fn rejects_invalid_series_naming_index_and_label() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("job", "a")], "series 0: no __name__ label"),
            (
                &[("__name__", "1up")],
                "series 0: invalid metric name \"1up\"",
            ),
            (
                &[("__name__", "up"), ("a:b", "x")],
                "series 0: invalid label name \"a:b\"",
            ),
            (
                &[("__name__", "up"), ("", "x")],
                "series 0: invalid label name \"\"",
            ),
            (
                &[("__name__", "up"), ("a", "x"), ("a", "y")],
                "series 0: invalid labels: duplicate label name \"a\"",
            ),
        ];
        for (labels, want) in cases {
            let err = decode_write_request(&raw_request(labels), MAX).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("cannot decode remote write request: {want}"),
                "{labels:?}"
            );
        }
    }

    #[test]
    fn rejects_native_histograms_and_oversized_bodies() {
        let req = WriteRequest {
            timeseries: vec![PbTimeSeries {
                labels: vec![PbLabel {
                    name: "__name__".into(),
                    value: "h".into(),
                }],
                samples: vec![],
                exemplars: vec![],
                histograms: vec![vec![8, 1]],
            }],
            metadata: vec![],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        let err = decode_write_request(&body, MAX).unwrap_err().to_string();
        assert!(
            err.contains("series 0: native histograms are not supported"),
            "{err}"
        );

        let big = encode_write_request(
            &[TimeSeries {
                labels: Labels::from_pairs([("__name__", "x".repeat(1000))]).unwrap(),
                samples: vec![],
            }],
            &[],
        );
        let err = decode_write_request(&big, 100).unwrap_err().to_string();
        assert!(err.contains("exceeds the limit of 100 bytes"), "{err}");
        // A header announcing 4 GiB in a tiny body is rejected before allocating.
        let err = decode_write_request(&[0x80, 0x80, 0x80, 0x80, 0x10], MAX)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exceeds the limit") || err.contains("snappy"),
            "{err}"
        );
        let err = decode_write_request(b"not snappy", MAX)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot decode remote write request: "),
            "{err}"
        );
    }

    fn arb_series() -> impl Strategy<Value = Vec<TimeSeries>> {
        let labels = (
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,8}",
            prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,6}", "\\PC{0,8}", 0..4),
        )
            .prop_map(|(name, rest)| {
                Labels::from_pairs(
                    rest.into_iter()
                        .filter(|(k, _)| k != METRIC_NAME)
                        .chain([(METRIC_NAME.to_string(), name)]),
                )
                .unwrap()
            });
        let sample = (
            any::<i64>(),
            any::<f64>().prop_filter("not NaN", |v| !v.is_nan()),
        )
            .prop_map(|(timestamp_ms, value)| Sample {
                timestamp_ms,
                value,
            });
        prop::collection::vec(
            (labels, prop::collection::vec(sample, 0..5))
                .prop_map(|(labels, samples)| TimeSeries { labels, samples }),
            0..6,
        )
    }

    fn arb_metadata() -> impl Strategy<Value = Vec<MetricMetadata>> {
        prop::collection::vec(
            ("[a-z_]{1,8}", 0usize..8, "\\PC{0,10}", "[a-z]{0,5}").prop_map(|(n, t, h, u)| {
                MetricMetadata {
                    metric_family_name: n,
                    metric_type: MetricType::ALL[t],
                    help: h,
                    unit: u,
                }
            }),
            0..4,
        )
    }

    proptest! {
        #[test]
        fn round_trips(series in arb_series(), metadata in arb_metadata()) {
            let body = encode_write_request(&series, &metadata);
            let back = decode_write_request(&body, MAX).unwrap();
            prop_assert_eq!(back.series, series);
            prop_assert_eq!(back.metadata, metadata);
        }

        #[test]
        fn garbage_never_panics(body in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Err(e) = decode_write_request(&body, MAX) {
                prop_assert!(e.to_string().starts_with("cannot decode remote write request: "));
            }
        }

        #[test]
        fn compressed_garbage_never_panics(raw in prop::collection::vec(any::<u8>(), 0..300)) {
            let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
            let _ = decode_write_request(&body, MAX);
        }
    }
}
