//! Host metrics with node_exporter's names and labels, read from `/proc` (via `procfs`) and
//! `statvfs`, plus `process_*` metrics of Sightline itself as Prometheus client libraries
//! export them. `sightline serve` collects them on an interval so a first run has data.
//!
//! Covered (node_exporter collector in brackets): CPU seconds by mode [cpu], load averages
//! [loadavg], every `/proc/meminfo` field as `node_memory_<Field>_bytes` [meminfo],
//! filesystem size/free/avail/files per mount with node_exporter's default exclusions
//! [filesystem], disk I/O [diskstats], network bytes/packets/errors/drops per device
//! [netdev], boot time and clock [stat, time].

use std::collections::BTreeMap;

use procfs::{Current, CurrentSI};
use sightline_model::{Labels, MetricMetadata, MetricType, Sample, TimeSeries, METRIC_NAME};

/// node_exporter's default `--collector.filesystem.mount-points-exclude`.
const MOUNT_POINTS_EXCLUDE: &str =
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default `--collector.filesystem.fs-types-exclude`.
const FS_TYPES_EXCLUDE: &str = r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
/// node_exporter's default `--collector.diskstats.device-exclude`.
const DISK_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
/// Bytes per sector in /proc/diskstats, fixed by the kernel whatever the device's size.
const SECTOR_BYTES: f64 = 512.0;

/// One collection: series (one sample each) and the metadata of their families.
#[derive(Debug, Default)]
pub struct Collected {
    pub series: Vec<TimeSeries>,
    pub metadata: Vec<MetricMetadata>,
}

struct Builder {
    base: Labels,
    t_ms: i64,
    out: Collected,
    seen: BTreeMap<String, ()>,
}

impl Builder {
    fn family(&mut self, name: &str, t: MetricType, help: &str) {
        if self.seen.insert(name.to_string(), ()).is_none() {
            self.out.metadata.push(MetricMetadata {
                metric_family_name: name.to_string(),
                metric_type: t,
                help: help.to_string(),
                unit: String::new(),
            });
        }
    }

    fn push(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let mut l = self.base.clone().with(METRIC_NAME, name);
        for (k, val) in labels {
            l = l.with(k, val);
        }
        self.out.series.push(TimeSeries {
            labels: l,
            samples: vec![Sample {
                timestamp_ms: self.t_ms,
                value: v,
            }],
        });
    }
}

/// Collects host metrics labelled with `base` (e.g. `job="node", instance="<host>"`).
pub struct HostCollector {
    base: Labels,
    process_base: Labels,
    mount_exclude: regex::Regex,
    fs_exclude: regex::Regex,
    disk_exclude: regex::Regex,
}

impl HostCollector {
    /// `host_labels` go on `node_*` series, `process_labels` on `process_*` series.
    pub fn new(host_labels: Labels, process_labels: Labels) -> Self {
        let re =
            |s: &str| regex::Regex::new(s).unwrap_or_else(|e| panic!("BUG: bad regex {s}: {e}"));
        HostCollector {
            base: host_labels,
            process_base: process_labels,
            mount_exclude: re(MOUNT_POINTS_EXCLUDE),
            fs_exclude: re(FS_TYPES_EXCLUDE),
            disk_exclude: re(DISK_EXCLUDE),
        }
    }

    /// Reads everything once, stamping samples with `t_ms`. A source that cannot be read
    /// (no `/proc/diskstats` in a container, an unreadable mount) is left out, not fatal.
    pub fn collect(&self, t_ms: i64) -> Collected {
        let mut b = Builder {
            base: self.base.clone(),
            t_ms,
            out: Collected::default(),
            seen: BTreeMap::new(),
        };
        self.cpu(&mut b);
        self.load(&mut b);
        self.memory(&mut b);
        self.filesystems(&mut b);
        self.disks(&mut b);
        self.network(&mut b);
        b.family(
            "node_time_seconds",
            MetricType::Gauge,
            "System time in seconds since epoch (1970).",
        );
        b.push("node_time_seconds", &[], t_ms as f64 / 1000.0);
        b.base = self.process_base.clone();
        process(&mut b);
        b.out
    }

    fn cpu(&self, b: &mut Builder) {
        let Ok(stats) = procfs::KernelStats::current() else {
            return;
        };
        let tps = procfs::ticks_per_second() as f64;
        b.family(
            "node_cpu_seconds_total",
            MetricType::Counter,
            "Seconds the CPUs spent in each mode.",
        );
        for (i, c) in stats.cpu_time.iter().enumerate() {
            let cpu = i.to_string();
            let modes = [
                ("user", Some(c.user)),
                ("nice", Some(c.nice)),
                ("system", Some(c.system)),
                ("idle", Some(c.idle)),
                ("iowait", c.iowait),
                ("irq", c.irq),
                ("softirq", c.softirq),
                ("steal", c.steal),
            ];
            for (mode, ticks) in modes {
                if let Some(t) = ticks {
                    b.push(
                        "node_cpu_seconds_total",
                        &[("cpu", &cpu), ("mode", mode)],
                        t as f64 / tps,
                    );
                }
            }
        }
        b.family(
            "node_boot_time_seconds",
            MetricType::Gauge,
            "Node boot time, in unixtime.",
        );
        b.push("node_boot_time_seconds", &[], stats.btime as f64);
        b.family(
            "node_context_switches_total",
            MetricType::Counter,
            "Total number of context switches.",
        );
        b.push("node_context_switches_total", &[], stats.ctxt as f64);
        b.family(
            "node_forks_total",
            MetricType::Counter,
            "Total number of forks.",
        );
        b.push("node_forks_total", &[], stats.processes as f64);
    }

    fn load(&self, b: &mut Builder) {
        let Ok(l) = procfs::LoadAverage::current() else {
            return;
        };
        for (name, v) in [
            ("node_load1", l.one),
            ("node_load5", l.five),
            ("node_load15", l.fifteen),
        ] {
            b.family(name, MetricType::Gauge, "Load average.");
            b.push(name, &[], f64::from(v));
        }
    }

    fn memory(&self, b: &mut Builder) {
        // node_exporter exports every /proc/meminfo line; procfs parses them into fields,
        // so the file is read directly here to keep every field and its kernel name.
        let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
            return;
        };
        for (name, v) in parse_meminfo(&text) {
            let metric = format!("node_memory_{name}_bytes");
            b.family(
                &metric,
                MetricType::Gauge,
                &format!("Memory information field {name}_bytes."),
            );
            b.push(&metric, &[], v);
        }
    }

    fn filesystems(&self, b: &mut Builder) {
        let Ok(mounts) = Vec::<procfs::MountEntry>::current() else {
            return;
        };
        let mut done = std::collections::HashSet::new();
        for m in mounts {
            if self.mount_exclude.is_match(&m.fs_file) || self.fs_exclude.is_match(&m.fs_vfstype) {
                continue;
            }
            if !done.insert((m.fs_spec.clone(), m.fs_file.clone())) {
                continue;
            }
            let Ok(st) = rustix::fs::statvfs(m.fs_file.as_str()) else {
                continue;
            };
            let labels = [
                ("device", m.fs_spec.as_str()),
                ("fstype", m.fs_vfstype.as_str()),
                ("mountpoint", m.fs_file.as_str()),
            ];
            let bs = st.f_bsize as f64;
            for (name, help, v) in [
                (
                    "node_filesystem_size_bytes",
                    "Filesystem size in bytes.",
                    st.f_blocks as f64 * bs,
                ),
                (
                    "node_filesystem_free_bytes",
                    "Filesystem free space in bytes.",
                    st.f_bfree as f64 * bs,
                ),
                (
                    "node_filesystem_avail_bytes",
                    "Filesystem space available to non-root users in bytes.",
                    st.f_bavail as f64 * bs,
                ),
                (
                    "node_filesystem_files",
                    "Filesystem total file nodes.",
                    st.f_files as f64,
                ),
                (
                    "node_filesystem_files_free",
                    "Filesystem total free file nodes.",
                    st.f_ffree as f64,
                ),
            ] {
                b.family(name, MetricType::Gauge, help);
                b.push(name, &labels, v);
            }
            let ro = st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY);
            b.family(
                "node_filesystem_readonly",
                MetricType::Gauge,
                "Filesystem read-only status.",
            );
            b.push(
                "node_filesystem_readonly",
                &labels,
                if ro { 1.0 } else { 0.0 },
            );
        }
    }

    fn disks(&self, b: &mut Builder) {
        let Ok(disks) = procfs::diskstats() else {
            return;
        };
        for d in disks
            .iter()
            .filter(|d| !self.disk_exclude.is_match(&d.name))
        {
            let l = [("device", d.name.as_str())];
            for (name, help, v) in [
                (
                    "node_disk_reads_completed_total",
                    "The total number of reads completed successfully.",
                    d.reads as f64,
                ),
                (
                    "node_disk_writes_completed_total",
                    "The total number of writes completed successfully.",
                    d.writes as f64,
                ),
                (
                    "node_disk_read_bytes_total",
                    "The total number of bytes read successfully.",
                    d.sectors_read as f64 * SECTOR_BYTES,
                ),
                (
                    "node_disk_written_bytes_total",
                    "The total number of bytes written successfully.",
                    d.sectors_written as f64 * SECTOR_BYTES,
                ),
                (
                    "node_disk_read_time_seconds_total",
                    "The total number of seconds spent by all reads.",
                    d.time_reading as f64 / 1000.0,
                ),
                (
                    "node_disk_write_time_seconds_total",
                    "This is the total number of seconds spent by all writes.",
                    d.time_writing as f64 / 1000.0,
                ),
                (
                    "node_disk_io_time_seconds_total",
                    "Total seconds spent doing I/Os.",
                    d.time_in_progress as f64 / 1000.0,
                ),
            ] {
                b.family(name, MetricType::Counter, help);
                b.push(name, &l, v);
            }
            b.family(
                "node_disk_io_now",
                MetricType::Gauge,
                "The number of I/Os currently in progress.",
            );
            b.push("node_disk_io_now", &l, d.in_progress as f64);
        }
    }

    fn network(&self, b: &mut Builder) {
        let Ok(devs) = procfs::net::dev_status() else {
            return;
        };
        let mut devs: Vec<_> = devs.into_values().collect();
        devs.sort_by(|a, b| a.name.cmp(&b.name));
        for d in devs {
            let l = [("device", d.name.as_str())];
            for (name, v) in [
                ("node_network_receive_bytes_total", d.recv_bytes),
                ("node_network_receive_packets_total", d.recv_packets),
                ("node_network_receive_errs_total", d.recv_errs),
                ("node_network_receive_drop_total", d.recv_drop),
                ("node_network_transmit_bytes_total", d.sent_bytes),
                ("node_network_transmit_packets_total", d.sent_packets),
                ("node_network_transmit_errs_total", d.sent_errs),
                ("node_network_transmit_drop_total", d.sent_drop),
            ] {
                b.family(
                    name,
                    MetricType::Counter,
                    "Network device statistic from /proc/net/dev.",
                );
                b.push(name, &l, v as f64);
            }
        }
    }
}

/// `process_*` of this process, with the names of Prometheus' client libraries.
fn process(b: &mut Builder) {
    let Ok(me) = procfs::process::Process::myself() else {
        return;
    };
    if let Ok(st) = me.stat() {
        let tps = procfs::ticks_per_second() as f64;
        b.family(
            "process_cpu_seconds_total",
            MetricType::Counter,
            "Total user and system CPU time spent in seconds.",
        );
        b.push(
            "process_cpu_seconds_total",
            &[],
            (st.utime + st.stime) as f64 / tps,
        );
        b.family(
            "process_resident_memory_bytes",
            MetricType::Gauge,
            "Resident memory size in bytes.",
        );
        b.push(
            "process_resident_memory_bytes",
            &[],
            st.rss as f64 * procfs::page_size() as f64,
        );
        b.family(
            "process_virtual_memory_bytes",
            MetricType::Gauge,
            "Virtual memory size in bytes.",
        );
        b.push("process_virtual_memory_bytes", &[], st.vsize as f64);
        b.family(
            "process_threads",
            MetricType::Gauge,
            "Number of OS threads in the process.",
        );
        b.push("process_threads", &[], st.num_threads as f64);
        if let Ok(boot) = procfs::boot_time_secs() {
            b.family(
                "process_start_time_seconds",
                MetricType::Gauge,
                "Start time of the process since unix epoch in seconds.",
            );
            b.push(
                "process_start_time_seconds",
                &[],
                boot as f64 + st.starttime as f64 / tps,
            );
        }
    }
    if let Ok(n) = me.fd_count() {
        b.family(
            "process_open_fds",
            MetricType::Gauge,
            "Number of open file descriptors.",
        );
        b.push("process_open_fds", &[], n as f64);
    }
    if let Ok(l) = me.limits() {
        if let procfs::process::LimitValue::Value(v) = l.max_open_files.soft_limit {
            b.family(
                "process_max_fds",
                MetricType::Gauge,
                "Maximum number of open file descriptors.",
            );
            b.push("process_max_fds", &[], v as f64);
        }
    }
}

/// `/proc/meminfo` as node_exporter names it: `MemTotal: 100 kB` → (`MemTotal`, 102400);
/// `(` `)` in names become `_` (`Active(anon)` → `Active_anon`); values without a unit are
/// counts and kept as they are (node_exporter still appends `_bytes`).
pub fn parse_meminfo(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(Ok(v)) = parts.next().map(str::parse::<f64>) else {
            continue;
        };
        let v = match parts.next() {
            Some("kB") => v * 1024.0,
            _ => v,
        };
        let name = name.trim().replace('(', "_").replace(')', "");
        out.push((name, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_names_like_node_exporter() {
        let m = parse_meminfo(
            "MemTotal:       16384 kB\nActive(anon):     10 kB\nHugePages_Total:       0\nbogus\n",
        );
        assert_eq!(
            m,
            vec![
                ("MemTotal".to_string(), 16_777_216.0),
                ("Active_anon".to_string(), 10_240.0),
                ("HugePages_Total".to_string(), 0.0),
            ]
        );
    }

    #[test]
    fn collects_this_machine() {
        let base = Labels::from_pairs([("job", "node"), ("instance", "test")]).unwrap();
        let pbase = Labels::from_pairs([("job", "sightline")]).unwrap();
        let c = HostCollector::new(base, pbase).collect(1_000);
        let names: std::collections::BTreeSet<&str> = c
            .series
            .iter()
            .filter_map(|s| s.labels.metric_name())
            .collect();
        for want in [
            "node_cpu_seconds_total",
            "node_load1",
            "node_memory_MemTotal_bytes",
            "node_memory_MemAvailable_bytes",
            "node_filesystem_size_bytes",
            "node_network_receive_bytes_total",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_threads",
        ] {
            assert!(names.contains(want), "{want} missing from {names:?}");
        }
        let idle = c
            .series
            .iter()
            .find(|s| {
                s.labels.metric_name() == Some("node_cpu_seconds_total")
                    && s.labels.get("mode") == Some("idle")
            })
            .unwrap();
        assert_eq!(idle.labels.get("job"), Some("node"));
        assert_eq!(idle.labels.get("cpu"), Some("0"));
        assert!(idle.samples[0].value > 0.0);
        let rss = c
            .series
            .iter()
            .find(|s| s.labels.metric_name() == Some("process_resident_memory_bytes"))
            .unwrap();
        assert_eq!(rss.labels.get("job"), Some("sightline"));
        assert!(rss.samples[0].value > 1e6, "rss {}", rss.samples[0].value);
        // Every series has exactly one sample at the collection time, and each family one
        // metadata entry.
        assert!(c
            .series
            .iter()
            .all(|s| s.samples.len() == 1 && s.samples[0].timestamp_ms == 1_000));
        let fams: std::collections::HashSet<_> =
            c.metadata.iter().map(|m| &m.metric_family_name).collect();
        assert_eq!(fams.len(), c.metadata.len());
    }
}
