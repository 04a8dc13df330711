//! The syslog line format: RFC 5424 and RFC 3164 (BSD) lines, with or without `<PRI>`,
//! parsed by `syslog_loose`. Year-less RFC 3164 times get the latest year that does not put
//! them in the future.

use chrono::{Datelike, NaiveDate, Utc};
use sightline_model::{Level, LogRecord, Value};
use syslog_loose::{IncompleteDate, Message, Protocol, SyslogSeverity, Variant};

/// Slack for clocks: a year-less time up to this far past `now` is still this year, so a
/// sender a little ahead of us is not moved back a year.
const FUTURE_SLACK_NS: i64 = 24 * 3600 * 1_000_000_000;

/// The OpenTelemetry severity number of a syslog severity.
///
/// Follows the OTel log data model's syslog mapping: emerg → FATAL4 (24), alert → FATAL3
/// (23), crit → FATAL (21), err → ERROR (17), warning → WARN (13), notice → INFO2 (10),
/// info → INFO (9), debug → DEBUG (5). `crit` is fatal, as `Level::parse("crit")` is.
pub fn severity_number(s: SyslogSeverity) -> u8 {
    match s {
        SyslogSeverity::SEV_EMERG => 24,
        SyslogSeverity::SEV_ALERT => 23,
        SyslogSeverity::SEV_CRIT => 21,
        SyslogSeverity::SEV_ERR => 17,
        SyslogSeverity::SEV_WARNING => 13,
        SyslogSeverity::SEV_NOTICE => 10,
        SyslogSeverity::SEV_INFO => 9,
        SyslogSeverity::SEV_DEBUG => 5,
    }
}

/// The year to give a year-less `(month, day, hour, minute, second)`: `now`'s year, or the
/// year before when that would put the time in the future (a December line read in
/// January). Feb 29 resolves to the latest leap year not in the future.
pub fn resolve_year(date: IncompleteDate, now_ns: i64) -> i32 {
    let now = chrono::DateTime::<Utc>::from_timestamp_nanos(now_ns);
    let (month, day, h, m, s) = date;
    let mut year = now.year();
    for _ in 0..8 {
        let t = NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|d| d.and_hms_opt(h, m, s))
            .and_then(|t| t.and_utc().timestamp_nanos_opt());
        match t {
            Some(t) if t <= now_ns.saturating_add(FUTURE_SLACK_NS) => return year,
            _ => year -= 1,
        }
    }
    now.year()
}

/// A syslog line to a record: body = MSG; attributes hostname, appname, procid, msgid,
/// facility and structured data as `sd.<id>.<param>`; service = appname; severity from
/// PRI (see [`severity_number`]) or info without PRI; time from the header (UTC when
/// the line has no offset), else `now_ns`.
///
/// # Errors
/// The reason when the line has no recognisable syslog header.
pub fn parse_syslog_line(line: &str, now_ns: i64) -> Result<LogRecord, String> {
    let msg: Message<&str> = syslog_loose::parse_message_with_year_exact_tz(
        line,
        move |d| resolve_year(d, now_ns),
        Some(Utc),
        Variant::Either,
    )
    .map_err(|_| "not a syslog line (RFC 5424 or RFC 3164)".to_string())?;
    if msg.protocol == Protocol::RFC3164 && msg.timestamp.is_none() && msg.facility.is_none() {
        return Err("not a syslog line: no priority and no timestamp".to_string());
    }
    let (severity_number, severity_text) = match msg.severity {
        Some(s) => (severity_number(s), s.as_str().to_string()),
        None => (Level::Info.number(), String::new()),
    };
    let timestamp = match msg.timestamp {
        Some(t) => t
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("time {t} is out of range"))?,
        None => now_ns,
    };
    let mut rec = LogRecord {
        timestamp,
        observed_timestamp: now_ns,
        severity_number,
        severity_text,
        service: msg.appname.unwrap_or_default().to_string(),
        body: msg.msg.to_string(),
        ..LogRecord::default()
    };
    let a = &mut rec.attributes;
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            a.insert(k.to_string(), Value::Str(v.to_string()));
        }
    };
    put("hostname", msg.hostname);
    put("appname", msg.appname);
    put("msgid", msg.msgid);
    put("facility", msg.facility.map(|f| f.as_str()));
    match &msg.procid {
        Some(syslog_loose::ProcId::PID(p)) => {
            a.insert("procid".to_string(), Value::Int((*p).into()))
        }
        Some(syslog_loose::ProcId::Name(n)) => {
            a.insert("procid".to_string(), Value::Str(n.to_string()))
        }
        None => {}
    }
    for sd in &msg.structured_data {
        for (k, v) in sd.params() {
            a.insert(format!("sd.{}.{k}", sd.id), Value::Str(v));
        }
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23T09:00:00Z
    const NOW: i64 = 1_795_424_400_000_000_000;

    fn s(v: &str) -> Option<&Value> {
        Some(Box::leak(Box::new(Value::Str(v.into()))))
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let line = r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event"#;
        let r = parse_syslog_line(line, NOW).unwrap();
        assert_eq!(r.timestamp, 1_065_910_455_003_000_000);
        assert_eq!(
            (r.severity_number, r.severity_text.as_str()),
            (10, "notice")
        );
        assert_eq!(r.body, "An application event");
        assert_eq!(r.service, "evntslog");
        let a = &r.attributes;
        assert_eq!(a.get("hostname"), s("mymachine.example.com"));
        assert_eq!(a.get("appname"), s("evntslog"));
        assert_eq!(a.get("msgid"), s("ID47"));
        assert_eq!(a.get("facility"), s("local4"));
        assert_eq!(a.get("procid"), None);
        assert_eq!(a.get("sd.exampleSDID@32473.iut"), s("3"));
        assert_eq!(a.get("sd.exampleSDID@32473.eventSource"), s("Application"));
    }

    #[test]
    fn rfc3164_with_pri() {
        let r = parse_syslog_line(
            "<34>Oct 11 22:14:15 mymachine su[77]: 'su root' failed for lonvick on /dev/pts/8",
            NOW,
        )
        .unwrap();
        // Oct 11 is before Nov 23: this year.
        assert_eq!(r.timestamp, 1_791_756_855_000_000_000);
        assert_eq!((r.severity_number, r.severity_text.as_str()), (21, "crit"));
        assert_eq!(r.attributes.get("hostname"), s("mymachine"));
        assert_eq!(r.attributes.get("appname"), s("su"));
        assert_eq!(r.attributes.get("procid"), Some(&Value::Int(77)));
        assert_eq!(r.attributes.get("facility"), s("auth"));
        assert_eq!(r.body, "'su root' failed for lonvick on /dev/pts/8");
    }

    #[test]
    fn without_pri_loghub_style() {
        let r = parse_syslog_line(
            "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
            NOW,
        )
        .unwrap();
        // Dec 10 2026 would be in the future: 2025.
        assert_eq!(r.timestamp, 1_765_349_746_000_000_000);
        assert_eq!((r.severity_number, r.severity_text.as_str()), (9, ""));
        assert_eq!(r.attributes.get("hostname"), s("LabSZ"));
        assert_eq!(r.attributes.get("appname"), s("sshd"));
        assert_eq!(r.attributes.get("procid"), Some(&Value::Int(24200)));
        assert_eq!(r.body, "Invalid user webmaster from 173.234.31.186");
        let r = parse_syslog_line(
            "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0",
            NOW,
        )
        .unwrap();
        assert_eq!(r.attributes.get("hostname"), s("combo"));
        assert_eq!(r.attributes.get("appname"), s("sshd(pam_unix)"));
        assert_eq!(r.service, "sshd(pam_unix)");
    }

    #[test]
    fn year_resolution() {
        assert_eq!(resolve_year((11, 23, 8, 0, 0), NOW), 2026);
        assert_eq!(
            resolve_year((11, 23, 20, 0, 0), NOW),
            2026,
            "within a day of slack"
        );
        assert_eq!(resolve_year((11, 25, 9, 0, 0), NOW), 2025);
        assert_eq!(resolve_year((1, 1, 0, 0, 0), NOW), 2026);
        assert_eq!(resolve_year((2, 29, 0, 0, 0), NOW), 2024);
        assert_eq!(resolve_year((13, 40, 0, 0, 0), NOW), 2026);
    }

    #[test]
    fn not_syslog() {
        assert!(parse_syslog_line("hello world", NOW).is_err());
        assert!(parse_syslog_line("", NOW).is_err());
    }
}
