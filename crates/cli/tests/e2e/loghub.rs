//! Real logs: the loghub samples in `testdata/loghub` ingest through the CLI with the right
//! parser, nothing fails to parse, and each file's line count comes back from a count query.

use crate::util::{cli, repo_root, Server};

#[test]
fn loghub_samples_ingest_and_count() {
    // 2005 timestamps: keep retention out of the way.
    let s = Server::start_with(&[], &[("SIGHTLINE_STORAGE_RETENTION", "0")]);
    let dir = repo_root().join("testdata/loghub");
    for (file, format, service) in [
        ("Apache_2k.log", "apache", "apache"),
        ("OpenSSH_2k.log", "syslog", "openssh"),
        ("Linux_2k.log", "syslog", "linux"),
    ] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count() as i64;
        assert_eq!(lines, 2000, "{file}");
        let (ok, out, err) = cli(
            &[
                "ingest",
                "--server",
                &s.main,
                "--format",
                format,
                "--service",
                service,
                path.to_str().unwrap(),
            ],
            None,
        );
        assert!(ok, "{file}: {err}");
        assert_eq!(out.trim(), format!("ingested {lines} records"));
        assert_eq!(s.count(&format!("service:{service}")), lines, "{file}");
        assert_eq!(
            s.count(&format!("service:{service} parse_error:*")),
            0,
            "{file} parses cleanly"
        );
    }
    s.flush();
    assert_eq!(s.count("service:apache"), 2000);
    // Parsed fields are queryable.
    assert_eq!(s.count("service:openssh hostname:LabSZ"), 2000);
    assert!(s.count("service:apache level:error") > 0);
    assert!(s.count("service:linux appname:sshd*") > 0 || s.count("service:linux sshd") > 0);
    assert_eq!(
        s.count("service:openssh \"Invalid user webmaster\""),
        // Phrases match case-insensitively.
        std::fs::read_to_string(dir.join("OpenSSH_2k.log"))
            .unwrap()
            .lines()
            .filter(|l| l.to_lowercase().contains("invalid user webmaster"))
            .count() as i64
    );
}
