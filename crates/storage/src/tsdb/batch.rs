//! The metrics WAL payload: one committed batch of a tenant's samples and metadata
//! (`docs/format/tsdb-wal.md`). Framed, checksummed and sequenced by `crate::wal`; also the
//! record format of head checkpoints (`checkpoint.rs`).
//!
//! Hand-written (not serde/prost) because it sits on the ingest hot path and must be
//! byte-exact for every f64 (NaN payloads, the staleness marker), which text formats are not.

use sightline_model::{Labels, MetricMetadata, MetricType, Sample, Tenant, TimeSeries};

use super::bytes::{put_str, put_uvarint, put_varint, Reader};

/// One decoded sample batch.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleBatch {
    pub seq: u64,
    pub tenant: Tenant,
    pub series: Vec<TimeSeries>,
    pub metadata: Vec<MetricMetadata>,
}

impl SampleBatch {
    /// Samples in the batch.
    pub fn samples(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

/// Appends one series: labels, then samples (timestamp varint, value bits u64 LE).
pub fn put_series(out: &mut Vec<u8>, labels: &Labels, samples: &[Sample]) {
    put_uvarint(out, labels.len() as u64);
    for (n, v) in labels.iter() {
        put_str(out, n);
        put_str(out, v);
    }
    put_uvarint(out, samples.len() as u64);
    for s in samples {
        put_varint(out, s.timestamp_ms);
        out.extend_from_slice(&s.value.to_bits().to_le_bytes());
    }
}

/// Appends one metadata entry.
pub fn put_metadata(out: &mut Vec<u8>, m: &MetricMetadata) {
    put_str(out, &m.metric_family_name);
    out.push(m.metric_type.code());
    put_str(out, &m.help);
    put_str(out, &m.unit);
}

/// Encodes a whole payload; it starts with `seq` as `crate::wal` requires.
pub fn encode(
    seq: u64,
    tenant: &str,
    series: &[TimeSeries],
    metadata: &[MetricMetadata],
) -> Vec<u8> {
    let samples: usize = series.iter().map(|s| s.samples.len()).sum();
    let mut out = Vec::with_capacity(32 + series.len() * 64 + samples * 12);
    out.extend_from_slice(&seq.to_le_bytes());
    put_str(&mut out, tenant);
    put_uvarint(&mut out, series.len() as u64);
    for s in series {
        put_series(&mut out, &s.labels, &s.samples);
    }
    put_uvarint(&mut out, metadata.len() as u64);
    for m in metadata {
        put_metadata(&mut out, m);
    }
    out
}

/// Reads one series written by [`put_series`].
pub fn read_series(r: &mut Reader<'_>, what: &str) -> Result<TimeSeries, String> {
    let n = r.count(&format!("{what} label count"), 2)?;
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let name = r.str(&format!("{what} label {i} name"))?;
        let value = r.str(&format!("{what} label {i} value"))?;
        if value.is_empty() {
            return Err(format!("{what} label {name:?} has an empty value"));
        }
        pairs.push((name.to_string(), value.to_string()));
    }
    let labels = Labels::from_pairs(pairs).map_err(|e| format!("{what} labels: {e}"))?;
    let n = r.count(&format!("{what} sample count"), 9)?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let timestamp_ms = r.varint(&format!("{what} sample {i} timestamp"))?;
        let bits = r.u64(&format!("{what} sample {i} value"))?;
        samples.push(Sample {
            timestamp_ms,
            value: f64::from_bits(bits),
        });
    }
    Ok(TimeSeries { labels, samples })
}

/// Reads one metadata entry written by [`put_metadata`].
pub fn read_metadata(r: &mut Reader<'_>, what: &str) -> Result<MetricMetadata, String> {
    let metric_family_name = r.str(&format!("{what} family name"))?.to_string();
    let code = r.u8(&format!("{what} type"))?;
    let metric_type = MetricType::from_code(u64::from(code))
        .ok_or_else(|| format!("{what} has unknown metric type {code}"))?;
    let help = r.str(&format!("{what} help"))?.to_string();
    let unit = r.str(&format!("{what} unit"))?.to_string();
    Ok(MetricMetadata {
        metric_family_name,
        metric_type,
        help,
        unit,
    })
}

/// Decodes one payload.
///
/// # Errors
/// A reason naming the field and payload offset that could not be decoded.
pub fn decode(payload: &[u8]) -> Result<SampleBatch, String> {
    let mut r = Reader::new(payload, 0);
    let seq = r.u64("batch sequence")?;
    let tenant = r.str("tenant")?;
    let tenant = Tenant::new(tenant).map_err(|e| format!("tenant: {e}"))?;
    let n = r.count("series count", 2)?;
    let mut series = Vec::with_capacity(n);
    for i in 0..n {
        series.push(read_series(&mut r, &format!("series {i}"))?);
    }
    let n = r.count("metadata count", 4)?;
    let mut metadata = Vec::with_capacity(n);
    for i in 0..n {
        metadata.push(read_metadata(&mut r, &format!("metadata {i}"))?);
    }
    if r.remaining() != 0 {
        return Err(format!(
            "{} trailing bytes after the batch at offset {}",
            r.remaining(),
            r.offset()
        ));
    }
    Ok(SampleBatch {
        seq,
        tenant,
        series,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits(series: &[TimeSeries]) -> Vec<(Labels, Vec<(i64, u64)>)> {
        series
            .iter()
            .map(|s| {
                let v = s
                    .samples
                    .iter()
                    .map(|x| (x.timestamp_ms, x.value.to_bits()))
                    .collect();
                (s.labels.clone(), v)
            })
            .collect()
    }

    fn arb_series() -> impl Strategy<Value = TimeSeries> {
        (
            proptest::collection::btree_map("[a-z_]{1,5}", "[a-z0-9]{1,5}", 0..4),
            proptest::collection::vec((any::<i64>(), any::<u64>()), 0..6),
        )
            .prop_map(|(labels, samples)| TimeSeries {
                labels: Labels::from_pairs(labels).unwrap(),
                samples: samples
                    .into_iter()
                    .map(|(t, b)| Sample {
                        timestamp_ms: t,
                        value: f64::from_bits(b),
                    })
                    .collect(),
            })
    }

    fn arb_meta() -> impl Strategy<Value = MetricMetadata> {
        ("[a-z_]{1,8}", 0..8usize, ".{0,10}", "[a-z]{0,4}").prop_map(|(n, t, h, u)| {
            MetricMetadata {
                metric_family_name: n,
                metric_type: MetricType::ALL[t],
                help: h,
                unit: u,
            }
        })
    }

    proptest! {
        #[test]
        fn prop_round_trip(seq in any::<u64>(),
                           series in proptest::collection::vec(arb_series(), 0..4),
                           meta in proptest::collection::vec(arb_meta(), 0..3)) {
            let b = decode(&encode(seq, "t-1", &series, &meta)).unwrap();
            prop_assert_eq!(b.seq, seq);
            prop_assert_eq!(b.tenant.as_str(), "t-1");
            prop_assert_eq!(bits(&b.series), bits(&series));
            prop_assert_eq!(b.metadata, meta);
        }

        #[test]
        fn prop_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn prop_truncation_is_an_error(series in proptest::collection::vec(arb_series(), 1..3),
                                       at in any::<usize>()) {
            let p = encode(3, "t", &series, &[]);
            prop_assert!(decode(&p[..at % p.len()]).is_err());
        }
    }
}
