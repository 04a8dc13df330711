"""Deterministic node_exporter-like metrics for bench/metrics, as Prometheus remote-write
request bodies. Python 3.11 stdlib only.

The fleet is `targets` scrape targets (node_exporter pods) of SERIES_PER_TARGET series each, so
`targets * SERIES_PER_TARGET` series are active at any time. Every target is scraped every 15 s.
Churn: a target restarts (a pod replaced: new `pod` and `instance` values, counters from 0)
with probability `churn_per_hour` per hour; the old series get a staleness marker at the
restart, as a real sender writes. Counters grow at a per-series rate (and reset to 0 now and
then), gauges random-walk, some series stay constant; a few targets report `up` 0 in the last
5 minutes of every hour; one disk in 50 is saturated (`node_disk_io_time_seconds_total` rate
≈ 0.95).

Requests: the fleet is split into `shards` (one per sender connection, like Prometheus'
remote-write shards: target i goes to shard i % shards). Time is cut into groups of
`batch_rounds` scrape rounds; for each group, each shard's targets are cut into requests of
about `samples_per_request` samples, each TimeSeries carrying that group's `batch_rounds`
samples. A shard file holds its requests in time order.

Hand-written encoders (no protobuf or snappy module in the standard library): the protobuf
wire format of prometheus.WriteRequest (varints and length-delimited fields only), and
snappy's raw block format with literal elements only — valid snappy that every decoder
accepts, not compressed (bodies are ~5-10x larger on the wire than a real sender's; all
three servers receive the same bytes).
"""

import json
import math
import os
import random
import shutil
import struct
import time
from concurrent.futures import ProcessPoolExecutor

SCRAPE_INTERVAL_MS = 15_000
# 2026-11-20T00:00:00Z: a fixed start keeps the data set deterministic; aligned to 2 h so
# Prometheus' block ranges line up with the data.
START_MS = 1_795_132_800_000
STALE_NAN_BITS = 0x7FF0000000000002
CLUSTERS = 20
CPUS = 4
CPU_MODES = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]
MOUNTS = [("/dev/sda1", "/", "ext4"), ("/dev/sda2", "/boot", "ext4"),
          ("/dev/sdb1", "/data", "xfs"), ("tmpfs", "/run", "tmpfs")]
DISKS = ["sda", "sdb"]
NICS = ["eth0", "eth1", "lo"]
GiB = 1 << 30

# value kinds: ("c", rate per second, quantum) counter; ("g", start, step, lo, hi, quantum)
# random walk; ("k", value) constant; special kinds below. The quantum is the resolution a
# real exporter reports (cpu seconds in 1/100 s, memory in pages, bytes and packets as
# integers): values are rounded to it (integers: stochastic rounding, so slow counters still
# move), which matters for compression as much as the shapes do. 0: full float precision.
COUNTER_RESET_P = 1e-4  # per sample: a counter reset now and then (process restarted)


def _families():
    """[(metric name, {extra labels}, kind tuple builder(rng) -> kind)] of one target."""
    out = []
    for cpu in range(CPUS):
        for mode in CPU_MODES:
            share = {"idle": 0.6, "user": 0.2, "system": 0.08, "iowait": 0.03}.get(mode, 0.01)
            out.append(("node_cpu_seconds_total", {"cpu": str(cpu), "mode": mode},
                        lambda r, s=share: ("c", s * (0.5 + r.random()), 0.01)))
    mem_total = 16 * GiB
    out.append(("node_memory_MemTotal_bytes", {}, lambda r: ("k", float(mem_total))))
    out.append(("node_memory_SwapTotal_bytes", {}, lambda r: ("k", float(2 * GiB))))
    for name in ("MemAvailable", "MemFree", "Cached", "Buffers", "SwapFree", "Active"):
        out.append((f"node_memory_{name}_bytes", {},
                    lambda r: ("g", float(int(r.uniform(0.05, 0.6) * mem_total)), 8 << 20, 0.0,
                               float(mem_total), 4096)))
    for dev, mnt, fs in MOUNTS:
        lb = {"device": dev, "mountpoint": mnt, "fstype": fs}
        size = {"/": 50, "/boot": 1, "/data": 500, "/run": 2}[mnt] * GiB
        out.append(("node_filesystem_size_bytes", lb, lambda r, sz=size: ("k", float(sz))))
        out.append(("node_filesystem_files", lb, lambda r, sz=size: ("k", float(sz // 16384))))
        for name in ("avail_bytes", "free_bytes"):
            out.append((f"node_filesystem_{name}", lb,
                        lambda r, sz=size: ("g", float(int(r.uniform(0.02, 0.9) * sz)), 1 << 20,
                                            0.0, float(sz), 4096)))
        out.append(("node_filesystem_files_free", lb,
                    lambda r, sz=size: ("g", float(sz // 32768), 10, 0.0, float(sz // 16384), 1)))
    for dev in DISKS:
        lb = {"device": dev}
        out.append(("node_disk_io_time_seconds_total", lb, lambda r: ("io",)))
        out.append(("node_disk_read_bytes_total", lb, lambda r: ("c", r.uniform(1e4, 5e6), 512)))
        out.append(("node_disk_written_bytes_total", lb, lambda r: ("c", r.uniform(1e4, 5e6), 512)))
        out.append(("node_disk_reads_completed_total", lb, lambda r: ("c", r.uniform(1, 300), 1)))
        out.append(("node_disk_writes_completed_total", lb, lambda r: ("c", r.uniform(1, 300), 1)))
    for dev in NICS:
        lb = {"device": dev}
        out.append(("node_network_receive_bytes_total", lb, lambda r: ("c", r.uniform(1e3, 1e7), 1)))
        out.append(("node_network_transmit_bytes_total", lb, lambda r: ("c", r.uniform(1e3, 1e7), 1)))
        out.append(("node_network_receive_packets_total", lb, lambda r: ("c", r.uniform(10, 1e4), 1)))
        out.append(("node_network_transmit_packets_total", lb, lambda r: ("c", r.uniform(10, 1e4), 1)))
        out.append(("node_network_receive_errs_total", lb,
                    lambda r: ("c", r.choice((0.0, 0.0, 0.0, 0.002)), 1)))
    for name in ("node_load1", "node_load5", "node_load15"):
        out.append((name, {}, lambda r: ("g", r.uniform(0.1, 4), 0.2, 0.0, 64.0, 0.01)))
    out.append(("up", {}, lambda r: ("up",)))
    out.append(("node_boot_time_seconds", {}, lambda r: ("boot",)))
    out.append(("node_time_seconds", {}, lambda r: ("time",)))
    out.append(("node_context_switches_total", {}, lambda r: ("c", r.uniform(1e3, 5e4), 1)))
    out.append(("node_intr_total", {}, lambda r: ("c", r.uniform(1e3, 5e4), 1)))
    out.append(("node_procs_running", {}, lambda r: ("g", 2.0, 1.0, 0.0, 64.0, 1)))
    out.append(("node_procs_blocked", {}, lambda r: ("g", 0.0, 0.6, 0.0, 16.0, 1)))
    out.append(("node_entropy_available_bits", {}, lambda r: ("g", 3000.0, 20.0, 100.0, 4096.0, 1)))
    out.append(("node_uname_info", {"release": "6.1.0-13-amd64", "machine": "x86_64"},
                lambda r: ("k", 1.0)))
    out.append(("scrape_duration_seconds", {}, lambda r: ("g", 0.02, 0.004, 0.005, 0.5, 0)))
    out.append(("scrape_samples_scraped", {}, lambda r: ("k", float(SERIES_PER_TARGET))))
    return out


FAMILIES = _families()
SERIES_PER_TARGET = len(FAMILIES)


# --------------------------------------------------------------------------------------
# protobuf / snappy


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def pb_bytes(field, data):
    """A length-delimited protobuf field (wire type 2)."""
    return varint(field << 3 | 2) + varint(len(data)) + data


def encode_labels(labels):
    """The Label fields (TimeSeries.labels = 1) of a label dict, sorted by name."""
    return b"".join(pb_bytes(1, pb_bytes(1, k.encode()) + pb_bytes(2, v.encode()))
                    for k, v in sorted(labels.items()))


def encode_sample(value, ts_ms):
    """One Sample field (TimeSeries.samples = 2): value = 1 (double), timestamp = 2 (int64)."""
    return pb_bytes(2, b"\x09" + struct.pack("<d", value) + b"\x10" + varint(ts_ms))


def snappy_literal(data):
    """snappy raw block format with literal elements only (valid, uncompressed): the
    uncompressed length as a varint, then literals of at most 64 KiB (snappy's own block
    size) with a 2-byte length (tag 61 << 2)."""
    out = [varint(len(data))]
    for i in range(0, len(data), 65536):
        piece = data[i:i + 65536]
        n = len(piece) - 1
        if n < 60:
            out.append(bytes([n << 2]))
        else:
            out.append(bytes([61 << 2]) + struct.pack("<H", n))
        out.append(piece)
    return b"".join(out)


def snappy_decode(data):
    """Decoder for the literal-only blocks above (used to self-check the encoder)."""
    pos = 0
    n = 0
    shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        if tag & 3:
            raise ValueError(f"copy element at offset {pos - 1}: only literals are expected")
        ln = tag >> 2
        if ln >= 60:
            k = ln - 59
            ln = int.from_bytes(data[pos:pos + k], "little")
            pos += k
        ln += 1
        out += data[pos:pos + ln]
        pos += ln
    if len(out) != n:
        raise ValueError(f"decoded {len(out)} bytes, header says {n}")
    return bytes(out)


# --------------------------------------------------------------------------------------
# fleet


DIGITS = {0.01: 2, 0.001: 3}


def quantize(v, q):
    """v at resolution q (see the value kinds above)."""
    if q >= 1:
        return float(round(v / q) * q)
    if q:
        return round(v, DIGITS[q])
    return v


class Plan:
    """The data set's shape, computed from the parameters alone."""

    def __init__(self, series, hours, seed, churn_per_hour, batch_rounds, samples_per_request,
                 shards):
        self.targets = max(1, round(series / SERIES_PER_TARGET))
        self.series = self.targets * SERIES_PER_TARGET
        self.hours = hours
        self.seed = seed
        self.churn_per_hour = churn_per_hour
        self.rounds = int(hours * 3600 * 1000 // SCRAPE_INTERVAL_MS)
        self.batch_rounds = batch_rounds
        self.groups = math.ceil(self.rounds / batch_rounds)
        self.samples_per_request = samples_per_request
        self.shards = shards
        self.start_ms = START_MS
        self.end_ms = START_MS + (self.rounds - 1) * SCRAPE_INTERVAL_MS  # last sample

    def key(self):
        return {"targets": self.targets, "series": self.series, "hours": self.hours,
                "seed": self.seed, "churn_per_hour": self.churn_per_hour,
                "batch_rounds": self.batch_rounds,
                "samples_per_request": self.samples_per_request, "shards": self.shards,
                "series_per_target": SERIES_PER_TARGET, "start_ms": START_MS, "version": 2}

    def restarts(self, slot):
        """Sorted group indexes (> 0) at which target `slot` restarts."""
        r = random.Random(self.seed * 1_000_003 + slot)
        p = self.churn_per_hour * self.batch_rounds * SCRAPE_INTERVAL_MS / 3_600_000
        return [g for g in range(1, self.groups) if r.random() < p]


def target_labels(slot, gen, targets):
    ident = gen * targets + slot
    h = (ident * 2654435761 + 12345) & 0xFFFFFFFF
    pod = "node-exporter-" + "".join("bcdfghjklmnpqrstvwxz2456789"[(h >> (5 * i)) % 27]
                                     for i in range(5))
    return {"job": "node", "cluster": f"c{slot % CLUSTERS:02d}", "namespace": "monitoring",
            "pod": pod, "instance": f"10.{(ident >> 16) & 255}.{(ident >> 8) & 255}.{ident & 255}:9100"}


class Target:
    """One running node_exporter (a slot's current generation): label blobs and value state."""

    def __init__(self, plan, slot, gen, start_round):
        self.slot = slot
        r = random.Random((plan.seed * 7919 + slot) * 104_729 + gen)
        base = target_labels(slot, gen, plan.targets)
        self.blobs = []
        self.kinds = []
        self.vals = []
        busy_disk = slot % 50 == 7
        self.flaky = slot % 97 == 5
        boot_s = (plan.start_ms + start_round * SCRAPE_INTERVAL_MS) / 1000 - r.uniform(10, 3600)
        for name, extra, mk in FAMILIES:
            lb = dict(base)
            lb.update(extra)
            lb["__name__"] = name
            self.blobs.append(encode_labels(lb))
            kind = mk(r)
            if kind[0] == "io":
                rate = r.uniform(0.93, 0.97) if busy_disk and extra.get("device") == "sdb" \
                    else r.uniform(0.01, 0.3)
                kind = ("c", rate, 0.001)
            elif kind[0] == "boot":
                kind = ("k", float(int(boot_s)))
            self.kinds.append(kind)
            if kind[0] == "c":
                v = 0.0 if gen else quantize(r.uniform(0, 3600) * kind[1], kind[2])
            elif kind[0] == "g":
                v = kind[1]
            elif kind[0] == "k":
                v = kind[1]
            else:
                v = 1.0
            self.vals.append(v)


def shard_path(out, shard):
    return os.path.join(out, f"shard-{shard:02d}.rw")


def gen_shard(plan, out, shard):
    """Write one shard file; returns its request index [(offset, length, samples, group)]."""
    rnd = random.Random(plan.seed * 31 + shard)
    rand = rnd.random
    K = plan.batch_rounds
    slots = list(range(shard, plan.targets, plan.shards))
    restarts = {s: plan.restarts(s) for s in slots}
    gens = {s: 0 for s in slots}
    live = {s: Target(plan, s, 0, 0) for s in slots}
    per_req_targets = max(1, plan.samples_per_request // (K * SERIES_PER_TARGET))
    stale = struct.pack("<Q", STALE_NAN_BITS)
    headers = {}  # TimeSeries field header by message length
    index = []
    series_total = len(slots) * SERIES_PER_TARGET
    samples_total = 0
    with open(shard_path(out, shard) + ".tmp", "wb") as f:
        off = 0
        for g in range(plan.groups):
            r0 = g * K
            nr = min(K, plan.rounds - r0)
            tss = [plan.start_ms + (r0 + i) * SCRAPE_INTERVAL_MS for i in range(nr)]
            tsb = [b"\x10" + varint(t) for t in tss]
            dt = SCRAPE_INTERVAL_MS / 1000
            # per sample: Sample field tag, its length, the value's tag; then the double; then
            # the timestamp field
            pres = [bytes([0x12, 9 + len(b), 0x09]) for b in tsb]
            pk = struct.Struct("<" + "".join(f"3sd{len(b)}s" for b in tsb)).pack
            args_tmpl = [x for j in range(nr) for x in (pres[j], 0.0, tsb[j])]
            samples_len = sum(2 + 9 + len(b) for b in tsb)
            reset_p = COUNTER_RESET_P * nr
            sec_in_hour = [((t - plan.start_ms) // 1000) % 3600 for t in tss]
            series_msgs = []
            nsamples = 0
            req_t = 0

            def flush_req():
                nonlocal off, series_msgs, nsamples, req_t
                if not series_msgs:
                    return
                body = snappy_literal(b"".join(series_msgs))
                f.write(body)
                index.append((off, len(body), nsamples, g))
                off += len(body)
                series_msgs = []
                nsamples = 0
                req_t = 0

            for s in slots:
                if restarts[s] and restarts[s][0] == g:
                    restarts[s].pop(0)
                    old = live[s]
                    # staleness markers for the replaced pod's series at this round
                    sm = pb_bytes(2, b"\x09" + stale + tsb[0])
                    for blob in old.blobs:
                        series_msgs.append(pb_bytes(1, blob + sm))
                    nsamples += len(old.blobs)
                    gens[s] += 1
                    live[s] = Target(plan, s, gens[s], r0)
                t = live[s]
                vals = t.vals
                blobs = t.blobs
                for i, kind in enumerate(t.kinds):
                    k0 = kind[0]
                    v = vals[i]
                    if k0 == "c":
                        q = kind[2]
                        if rand() < reset_p:
                            v = 0.0
                        out_v = []
                        if q >= 1:  # stochastic rounding of the increment
                            rq = kind[1] * dt / q
                            for _ in range(nr):
                                v += q * int(rq * (0.5 + rand()) + rand())
                                out_v.append(v)
                        else:
                            rate, d = kind[1] * dt, DIGITS[q]
                            for _ in range(nr):
                                v = round(v + rate * (0.5 + rand()), d)
                                out_v.append(v)
                    elif k0 == "g":
                        step, lo, hi, q = kind[2], kind[3], kind[4], kind[5]
                        out_v = []
                        for _ in range(nr):
                            v += step * (rand() - 0.5)
                            v = lo if v < lo else hi if v > hi else v
                            out_v.append(v)
                        if q:
                            out_v = [quantize(x, q) for x in out_v]
                    elif k0 == "k":
                        out_v = [v] * nr
                    elif k0 == "up":
                        out_v = [0.0 if t.flaky and sh >= 3300 else 1.0 for sh in sec_in_hour]
                    else:  # "time"
                        out_v = [ts / 1000 for ts in tss]
                    vals[i] = v
                    args = args_tmpl[:]
                    args[1::3] = out_v
                    blob = blobs[i]
                    n = len(blob) + samples_len
                    hdr = headers.get(n)
                    if hdr is None:
                        hdr = headers[n] = b"\x0a" + varint(n)
                    series_msgs += (hdr, blob, pk(*args))
                nsamples += nr * SERIES_PER_TARGET
                req_t += 1
                if req_t >= per_req_targets:
                    flush_req()
            flush_req()
        samples_total = sum(x[2] for x in index)
    os.replace(shard_path(out, shard) + ".tmp", shard_path(out, shard))
    churned = sum(gens.values()) * SERIES_PER_TARGET
    return {"index": index, "samples": samples_total, "series_total": series_total + churned,
            "restarts": sum(gens.values()), "bytes": off}


def generate(out, plan, jobs=2, log=print):
    """Generate (or reuse when out/manifest.json matches) the shard files. Returns the manifest:
    plan key + samples, total series (churn included), bytes, per-shard request indexes."""
    os.makedirs(out, exist_ok=True)
    mpath = os.path.join(out, "manifest.json")
    if os.path.exists(mpath):
        with open(mpath) as f:
            m = json.load(f)
        if m.get("key") == plan.key() and all(os.path.exists(shard_path(out, i))
                                               for i in range(plan.shards)):
            log(f"reusing generated data in {out} ({m['samples']:,} samples)")
            return m
    for name in os.listdir(out):
        if name.startswith("shard-") or name == "manifest.json":
            os.remove(os.path.join(out, name))
    est = plan.series * plan.rounds
    # ~18 bytes per sample field plus a ~180-byte label set per batch_rounds samples
    est_bytes = int(est * (18 + 180 / plan.batch_rounds) * 1.1)
    free = shutil.disk_usage(out).free
    if free < est_bytes + (2 << 30):
        raise SystemExit(f"generating needs ~{est_bytes / (1 << 30):.1f} GiB in {out}, only "
                         f"{free / (1 << 30):.1f} GiB free (raise --batch-rounds to shrink it)")
    log(f"generating {plan.series:,} active series ({plan.targets:,} targets x "
        f"{SERIES_PER_TARGET}), {plan.hours} h, ~{est:,} samples into {out} with {jobs} jobs ...")
    t0 = time.perf_counter()
    if jobs <= 1:
        parts = [gen_shard(plan, out, i) for i in range(plan.shards)]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            parts = list(ex.map(gen_shard, [plan] * plan.shards, [out] * plan.shards,
                                range(plan.shards)))
    m = {"key": plan.key(), "samples": sum(p["samples"] for p in parts),
         "series_total": sum(p["series_total"] for p in parts),
         "restarts": sum(p["restarts"] for p in parts),
         "bytes": sum(p["bytes"] for p in parts),
         "requests": sum(len(p["index"]) for p in parts),
         "shards": [p["index"] for p in parts], "gen_s": time.perf_counter() - t0}
    with open(mpath, "w") as f:
        json.dump(m, f)
    log(f"generated {m['samples']:,} samples, {m['series_total']:,} series in total "
        f"({m['restarts']} target restarts), {m['requests']:,} requests, "
        f"{m['bytes'] / (1 << 20):,.0f} MiB in {m['gen_s']:.0f}s")
    return m
