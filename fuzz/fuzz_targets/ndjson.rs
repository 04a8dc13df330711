//! Fuzzes NDJSON decoding: any body must decode or give an error naming a line, never
//! panic; a decoded batch has at most one record per line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match sightline_wire::decode_ndjson(data, 1_700_000_000_000_000_000) {
        Ok(records) => {
            let lines = data.split(|&b| b == b'\n').count();
            assert!(records.len() <= lines, "more records than lines");
        }
        Err(e) => assert!(
            e.to_string().starts_with("line "),
            "error without a line: {e}"
        ),
    }
});
