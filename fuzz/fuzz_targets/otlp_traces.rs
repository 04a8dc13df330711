//! Fuzzes OTLP traces decoding, protobuf and JSON from the same input: any body must decode
//! or give an error, never panic; decoded spans keep the model's invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_model::Span;

fn check(spans: &[Span]) {
    for s in spans {
        assert!(
            s.end >= s.start && s.start > 0,
            "BUG: span times {} {}",
            s.start,
            s.end
        );
        assert_ne!(s.trace_id, Default::default(), "BUG: all-zero trace id");
        assert_ne!(s.span_id, Default::default(), "BUG: all-zero span id");
    }
}

fuzz_target!(|data: &[u8]| {
    let now = 1_700_000_000_000_000_000;
    match sightline_wire::decode_otlp_traces_protobuf(data, now) {
        Ok(spans) => check(&spans),
        Err(e) => assert!(e.to_string().starts_with("cannot decode OTLP protobuf: ")),
    }
    match sightline_wire::decode_otlp_traces_json(data, now) {
        Ok(spans) => check(&spans),
        Err(e) => assert!(e.to_string().starts_with("cannot decode OTLP JSON: ")),
    }
});
