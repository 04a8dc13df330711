//! Parses the real loghub samples in /work/shared/data/loghub (Apache error log, OpenSSH
//! and Linux syslog): every line must come back as one record, none with `parse_error`.
//! Skipped (with a note) when the data directory is absent.

use std::path::Path;

use sightline_model::{LogRecord, Value};
use sightline_wire::{parse_lines, LineFormat};

const DIR: &str = "/work/shared/data/loghub";
/// 2026-11-23T09:00:00Z: after every sample line, so years resolve to the latest past one.
const NOW: i64 = 1_795_424_400_000_000_000;

fn load(rel: &str, format: &LineFormat) -> Option<(usize, Vec<LogRecord>)> {
    let path = Path::new(DIR).join(rel);
    let Ok(body) = std::fs::read(&path) else {
        eprintln!("skipping: {} not found", path.display());
        return None;
    };
    let lines = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count();
    let records = parse_lines(&body, format, None, NOW).expect("samples are UTF-8");
    assert_eq!(records.len(), lines, "{rel}: one record per line");
    for r in &records {
        assert_eq!(r.attributes.get("parse_error"), None, "{rel}: {}", r.body);
    }
    Some((lines, records))
}

fn attr<'a>(r: &'a LogRecord, k: &str) -> &'a str {
    r.attributes.get(k).and_then(Value::as_str).unwrap_or("")
}

#[test]
fn apache_error_log() {
    let Some((n, recs)) = load("Apache/Apache_2k.log", &LineFormat::Apache) else {
        return;
    };
    assert_eq!(n, 2000);
    // 2005-12-04T04:47:44Z
    assert_eq!(recs[0].timestamp, 1_133_671_664_000_000_000);
    assert_eq!(recs[0].severity_text, "notice");
    assert_eq!(recs[1].severity_number, 17);
    assert_eq!(recs[1].body, "mod_jk child workerEnv in error state 6");
    assert!(recs
        .iter()
        .all(|r| r.severity_number == 9 || r.severity_number == 17));
}

#[test]
fn openssh_syslog() {
    let Some((n, recs)) = load("OpenSSH/OpenSSH_2k.log", &LineFormat::Syslog) else {
        return;
    };
    assert_eq!(n, 2000);
    for r in &recs {
        assert_eq!(attr(r, "hostname"), "LabSZ", "{}", r.body);
        assert_eq!(attr(r, "appname"), "sshd", "{}", r.body);
        assert_eq!(r.service, "sshd");
        assert!(matches!(r.attributes.get("procid"), Some(Value::Int(_))));
    }
    // Dec 10 06:55:46 in the year before NOW (Dec 10 2026 would be in the future).
    assert_eq!(recs[0].timestamp, 1_765_349_746_000_000_000);
    assert_eq!(recs[1].body, "Invalid user webmaster from 173.234.31.186");
}

#[test]
fn linux_syslog() {
    let Some((n, recs)) = load("Linux/Linux_2k.log", &LineFormat::Syslog) else {
        return;
    };
    assert_eq!(n, 2000);
    // loghub's own split: LineId,Month,Date,Time,Level(host),Component,PID,Content,...
    let csv = std::fs::read_to_string(Path::new(DIR).join("Linux/Linux_2k.log_structured.csv"))
        .expect("structured csv next to the log");
    let mut odd = 0;
    for (r, row) in recs.iter().zip(csv.lines().skip(1)) {
        let f: Vec<&str> = row.splitn(8, ',').collect();
        assert_eq!(attr(r, "hostname"), f[4], "{}", r.body);
        if f[5].contains(' ') {
            // "syslogd 1.4.1" (7 lines) and "-- root" (1): tags with a space, not valid RFC 3164;
            // syslog_loose reads "syslogd" / no app name and keeps the rest in the body.
            odd += 1;
            continue;
        }
        assert_eq!(attr(r, "appname"), f[5], "{}", r.body);
        assert_eq!(r.service, f[5]);
        let procid = r
            .attributes
            .get("procid")
            .map(|v| v.to_string())
            .unwrap_or_default();
        assert_eq!(procid, f[6], "{}", r.body);
    }
    assert_eq!(odd, 8);
    assert_eq!(attr(&recs[0], "appname"), "sshd(pam_unix)");
}
