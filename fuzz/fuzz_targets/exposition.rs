//! Fuzzes the Prometheus text and OpenMetrics parsers: any body must parse or give an
//! error naming a line, never panic; a parsed text body written back parses to the same
//! number of series and samples.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match sightline_wire::parse_prometheus_text(data, 1_700_000_000_000) {
        Ok(batch) => {
            let text = sightline_wire::write_prometheus_text(&batch);
            let back = sightline_wire::parse_prometheus_text(text.as_bytes(), 0)
                .expect("written text parses");
            assert_eq!(back.series.len(), batch.series.len());
            assert_eq!(back.sample_count(), batch.sample_count());
        }
        Err(e) => assert!(
            e.to_string().starts_with("line "),
            "error without a line: {e}"
        ),
    }
    if let Err(e) = sightline_wire::parse_openmetrics(data, 1_700_000_000_000) {
        assert!(
            e.to_string().starts_with("line "),
            "error without a line: {e}"
        );
    }
});
