//! Fuzzes OTLP logs decoding, protobuf and JSON: any body must decode or give an error,
//! never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = 1_700_000_000_000_000_000;
    if let Err(e) = sightline_wire::decode_otlp_logs_protobuf(data, now) {
        assert!(e.to_string().starts_with("cannot decode OTLP protobuf: "));
    }
    if let Err(e) = sightline_wire::decode_otlp_logs_json(data, now) {
        assert!(e.to_string().starts_with("cannot decode OTLP JSON: "));
    }
});
