//! Fuzzes the log line parsers: for every format, valid UTF-8 gives exactly one record per
//! non-blank line (bad lines are kept with `parse_error`), invalid UTF-8 an error; no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_wire::{parse_lines, LineFormat};

fuzz_target!(|data: &[u8]| {
    let formats = [
        LineFormat::Json,
        LineFormat::Logfmt,
        LineFormat::Nginx,
        LineFormat::Apache,
        LineFormat::Syslog,
        LineFormat::from_name("regex", Some(r"^(?P<ts>\S+) (?P<level>\w+) (?P<msg>.*)$"))
            .expect("fixed pattern compiles"),
    ];
    let utf8 = std::str::from_utf8(data).ok();
    for f in &formats {
        match (
            parse_lines(data, f, Some("fuzz"), 1_700_000_000_000_000_000),
            utf8,
        ) {
            (Ok(records), Some(text)) => {
                let want = text.split('\n').filter(|l| !l.trim().is_empty()).count();
                assert_eq!(records.len(), want, "one record per non-blank line");
            }
            (Ok(_), None) => panic!("invalid UTF-8 accepted"),
            (Err(_), Some(_)) => panic!("valid UTF-8 rejected"),
            (Err(_), None) => {}
        }
    }
});
