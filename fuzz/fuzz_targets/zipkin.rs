//! Fuzzes Zipkin v2 JSON decoding: any body must decode or give an error naming a line,
//! never panic; decoded spans keep the model's invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match sightline_wire::decode_zipkin_json(data, 1_700_000_000_000_000_000) {
        Ok(spans) => {
            for s in &spans {
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
        Err(e) => assert!(e.to_string().starts_with("line "), "{e}"),
    }
});
