//! Fuzzes the log query language: any UTF-8 text either fails to parse or parses into a
//! query that runs over a small in-memory store without panicking, and whose pruning hints
//! never exclude a record the query matches.
#![no_main]

use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;
use sightline_model::{Attributes, LogRecord, SpanId, TraceId, Value};
use sightline_query::{
    execute, field_counts, parse, LogQuerier, ScanRequest, ScanStats, StorageError,
};
use sightline_storage::bloom::record_has_tokens;

/// Hands every record to the query, ignoring hints (the storage may return extra records).
struct VecQuerier(Vec<LogRecord>);

impl LogQuerier for VecQuerier {
    fn scan(
        &self,
        _req: &ScanRequest,
        visit: &mut dyn FnMut(&LogRecord) -> ControlFlow<()>,
    ) -> Result<ScanStats, StorageError> {
        let mut stats = ScanStats::default();
        for r in &self.0 {
            stats.scanned_rows += 1;
            if visit(r).is_break() {
                break;
            }
        }
        Ok(stats)
    }
}

fn records() -> Vec<LogRecord> {
    let attrs = |pairs: &[(&str, Value)]| {
        Attributes::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
    };
    vec![
        LogRecord {
            timestamp: 1_714_564_800_000_000_000,
            severity_number: 17,
            service: "api".into(),
            body: "Connection refused: timeout after 250ms on /api/users".into(),
            attributes: attrs(&[
                ("status", Value::Int(500)),
                ("path", Value::Str("/api/users".into())),
                ("duration_ms", Value::Float(250.5)),
            ]),
            resource: attrs(&[("host", Value::Str("api-1".into()))]),
            trace_id: Some(TraceId([0x4b; 16])),
            span_id: Some(SpanId([0x0f; 8])),
            ..LogRecord::default()
        },
        LogRecord {
            timestamp: -5,
            severity_text: "WARNING".into(),
            service: "web".into(),
            body: "Straße İstanbul \u{212a}elvin ok".into(),
            attributes: attrs(&[
                ("status", Value::Str("404".into())),
                ("flag", Value::Bool(true)),
                ("nan", Value::Float(f64::NAN)),
            ]),
            ..LogRecord::default()
        },
        LogRecord {
            timestamp: i64::MAX,
            service: "".into(),
            body: "".into(),
            ..LogRecord::default()
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(q) = parse(text) else {
        return;
    };
    let querier = VecQuerier(records());
    let req = q.scan_request();
    for r in querier.0.iter().filter(|r| q.matches(r)) {
        assert!(
            record_has_tokens(r, &req.required_tokens),
            "hints {:?} exclude a match of {text:?}",
            req.required_tokens
        );
        if let Some(s) = &req.services {
            assert!(
                s.contains(&r.service),
                "service hint excludes a match of {text:?}"
            );
        }
    }
    let out = execute(&q, &querier, 2).expect("the in-memory scan cannot fail");
    if !q.has_pipes() {
        assert!(out.rows.len() <= 2);
    }
    let _ = field_counts(&querier);
});
