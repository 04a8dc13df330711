//! Fuzzes remote-write decoding: any body (raw, and the input snappy-compressed so the
//! protobuf decoder and series checks are reached) must decode or give a remote-write
//! error, never panic; a decoded batch re-encodes and decodes to the same series.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Limit of the decompressed size, as the server would pass.
const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let compressed = snap::raw::Encoder::new()
        .compress_vec(data)
        .expect("snappy compresses any input");
    for body in [data, compressed.as_slice()] {
        match sightline_wire::decode_write_request(body, MAX) {
            Ok(batch) => {
                let again = sightline_wire::encode_write_request(&batch.series, &batch.metadata);
                let back = sightline_wire::decode_write_request(&again, usize::MAX)
                    .expect("re-encoded batch decodes");
                assert_eq!(back.series.len(), batch.series.len());
                for (a, b) in back.series.iter().zip(&batch.series) {
                    assert_eq!(a.labels, b.labels);
                    assert_eq!(a.samples.len(), b.samples.len());
                }
                assert_eq!(back.metadata, batch.metadata);
            }
            Err(e) => assert!(
                e.to_string()
                    .starts_with("cannot decode remote write request: "),
                "unexpected error: {e}"
            ),
        }
    }
});
