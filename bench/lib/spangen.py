"""Deterministic OpenTelemetry-like spans for bench/traces, written once as OTLP/gRPC request
bodies and as ClickHouse RowBinary rows of the same spans. Python 3.11 stdlib only.

Shape: 30 services (4 entry services, the rest in tiers below them, each calling 2-4 services
of lower tiers: a fixed DAG), each with ~10 operations of its own (5 HTTP routes, 2 internal
functions, 3 database statements on its own database). A trace starts at a server span of an
entry service and grows to 5-60 spans (log-normal, median ~14) across 1-6 services: HTTP
client/server span pairs for calls to downstream services, database client spans (leaves),
internal spans. Durations: the root's is log-normal (median 30 ms, sigma 1.1, so ~0.1% of
traces run over 1 s); children take random slices of their parent. ~2% of spans are errors
(database errors, HTTP 500s whose client span fails too, internal exceptions), each with an
OTel `exception` event (type, message, stacktrace). Attributes follow the (pre-1.21, still
the most common) OTel semantic conventions: http.method, http.route, http.target,
http.status_code, http.url, net.peer.name/port, db.system, db.name, db.statement,
db.operation, code.function...; resources carry service.name, service.version, host.name,
deployment.environment, k8s.* and telemetry.sdk.*. Every service runs 3 pods (90 resources).

Requests: like an SDK's BatchSpanProcessor in each pod, spans are buffered per pod and sent
as one ExportTraceServiceRequest (one ResourceSpans, one ScopeSpans per instrumentation
scope) when the buffer holds SPANS_PER_REQUEST = 512 spans, the SDK's default
max_export_batch_size (a busy pod fills its batch before the 5 s schedule delay); so a
trace's spans arrive in several requests, from several pods, as in production. Leftovers are
flushed at the end of a chunk.

Data is generated in chunks of CHUNK_SPANS spans (one file pair per chunk, chunks in
parallel processes); chunk c uses its own seeded RNG and covers its own slice of the time
range, so the data depends only on (spans, seed). Trace starts advance at SPAN_RATE spans/s
from START_NS.

Hand-written encoders (no protobuf module in the standard library; same reason as
metricgen.py): the protobuf wire format of
opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest, and ClickHouse's RowBinary
(little-endian fixed-width ints, varint-prefixed strings and arrays).
"""

import json
import math
import os
import random
import shutil
import struct
import time
from concurrent.futures import ProcessPoolExecutor

SPANS_PER_REQUEST = 512
CHUNK_SPANS = 250_000
# 2026-11-23T00:00:00Z: a fixed start keeps the data deterministic
START_NS = 1_795_392_000 * 1_000_000_000
# trace starts advance at this many spans per second of data time (10M spans: ~1.4 h)
SPAN_RATE = 2_000
PODS_PER_SERVICE = 3
ERROR_P = 0.02
VERSION = 1

ENTRY = ["frontend", "api-gateway", "web-bff", "mobile-bff"]
TIER1 = ["auth", "user", "cart", "checkout", "catalog", "search", "recommendation", "order"]
TIER2 = ["profile", "payment", "fraud", "inventory", "pricing", "promotion", "shipping",
         "review", "wishlist", "session", "loyalty"]
TIER3 = ["tax", "notification", "email", "currency", "ad", "analytics", "invoice"]
SERVICES = ENTRY + TIER1 + TIER2 + TIER3  # 30
LANGS = [("python", "opentelemetry.instrumentation.flask", "0.48b0",
          "opentelemetry.instrumentation.requests", "opentelemetry.instrumentation.psycopg2"),
         ("java", "io.opentelemetry.spring-webmvc-6.0", "2.9.0-alpha",
          "io.opentelemetry.http-url-connection", "io.opentelemetry.jdbc"),
         ("go", "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "0.56.0",
          "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
          "github.com/XSAM/otelsql"),
         ("nodejs", "@opentelemetry/instrumentation-http", "0.54.0",
          "@opentelemetry/instrumentation-http", "@opentelemetry/instrumentation-pg")]
SDK_VERSION = {"python": "1.27.0", "java": "1.43.0", "go": "1.31.0", "nodejs": "1.27.0"}
DBS = [("postgresql", 5432), ("mysql", 3306), ("redis", 6379), ("mongodb", 27017)]
ROUTE_SHAPES = [("GET", "/api/{s}/{{id}}"), ("GET", "/api/{s}"), ("POST", "/api/{s}"),
                ("PUT", "/api/{s}/{{id}}"), ("DELETE", "/api/{s}/{{id}}"),
                ("GET", "/api/{s}/{{id}}/items"), ("POST", "/api/{s}/{{id}}/refresh"),
                ("GET", "/api/{s}/health/deep")]
USER_AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/130.0.0.0 Safari/537.36",
               "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
               "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
               "okhttp/4.12.0", "python-requests/2.32.3", "Go-http-client/1.1"]
KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3
KIND_CH = {1: "Internal", 2: "Server", 3: "Client"}
STATUS_UNSET, STATUS_ERROR = 0, 2

# --------------------------------------------------------------------------------------
# protobuf


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def pb(field, data):
    """A length-delimited protobuf field (wire type 2)."""
    return varint(field << 3 | 2) + varint(len(data)) + data


def any_value(v):
    if isinstance(v, bool):
        return b"\x10" + (b"\x01" if v else b"\x00")
    if isinstance(v, int):
        return b"\x18" + varint(v)
    if isinstance(v, float):
        return b"\x21" + struct.pack("<d", v)
    return pb(1, v.encode())


def key_value(k, v):
    """A KeyValue message body."""
    return pb(1, k.encode()) + pb(2, any_value(v))


def ch_text(v):
    """An attribute value as the ClickHouse exporter stores it (text)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# --------------------------------------------------------------------------------------
# RowBinary


def rb_str(b):
    return varint(len(b)) + b


def rb_strs(items):
    return varint(len(items)) + b"".join(varint(len(b)) + b for b in items)


# --------------------------------------------------------------------------------------
# the fleet


class Service:
    def __init__(self, idx, name, rnd):
        self.idx = idx
        self.name = name
        lang = LANGS[idx % len(LANGS)]
        self.lang = lang[0]
        self.scope_server = (lang[1], lang[2])
        self.scope_client = (lang[3], lang[2])
        self.scope_db = (lang[4], lang[2])
        self.scope_internal = (f"{name}.app", f"1.{idx % 7}.{idx % 3}")
        self.version = f"{1 + idx % 3}.{(idx * 7) % 20}.{(idx * 13) % 10}"
        res = name.replace("-", "")
        shapes = rnd.sample(ROUTE_SHAPES, 5)
        self.routes = [(m, r.format(s=res)) for m, r in shapes]
        self.internals = [f"{res.capitalize()}Service.{fn}" for fn in
                          rnd.sample(["validate", "compute", "render", "load", "apply",
                                      "serialize", "authorize", "enrich"], 2)]
        self.db_system, self.db_port = DBS[idx % len(DBS)]
        self.db_name = f"{res}_db"
        self.db_host = f"{res}-{self.db_system}.data.svc.cluster.local"
        tbl = res + "s"
        if self.db_system == "redis":
            self.db_ops = [("GET", f"GET {res}:?"), ("SET", f"SET {res}:? ?"),
                           ("HGETALL", f"HGETALL {res}:?:fields")]
        elif self.db_system == "mongodb":
            self.db_ops = [("find", f'{{"find":"{tbl}","filter":{{"_id":"?"}}}}'),
                           ("update", f'{{"update":"{tbl}","updates":[{{"q":{{"_id":"?"}}}}]}}'),
                           ("aggregate", f'{{"aggregate":"{tbl}","pipeline":[{{"$match":'
                                         f'{{"owner":"?"}}}},{{"$group":{{"_id":"$kind"}}}}]}}')]
        else:
            self.db_ops = [("SELECT", f"SELECT id, owner_id, status, payload, created_at, "
                                      f"updated_at FROM {tbl} WHERE id = $1"),
                           ("INSERT", f"INSERT INTO {tbl} (id, owner_id, status, payload) "
                                      f"VALUES ($1, $2, $3, $4)"),
                           ("UPDATE", f"UPDATE {tbl} SET status = $1, updated_at = now() "
                                      f"WHERE id = $2")]
        self.port = 8080 + idx % 3
        self.downstream = []
        self.pods = []
        for p in range(PODS_PER_SERVICE):
            h = (idx * 2654435761 + p * 40503 + 17) & 0xFFFFFFFF
            suffix = "".join("bcdfghjklmnpqrstvwxz2456789"[(h >> (5 * i)) % 27] for i in range(5))
            pod = f"{name}-{(h >> 8) % 0xFFFFF:05x}{h % 97:02d}-{suffix}"
            attrs = [("service.name", name), ("service.version", self.version),
                     ("service.namespace", "shop"), ("deployment.environment", "production"),
                     ("host.name", pod), ("k8s.pod.name", pod), ("k8s.namespace.name", "shop"),
                     ("k8s.deployment.name", name), ("k8s.node.name", f"node-{(idx + p) % 12:02d}"),
                     ("telemetry.sdk.name", "opentelemetry"), ("telemetry.sdk.language", self.lang),
                     ("telemetry.sdk.version", SDK_VERSION[self.lang])]
            self.pods.append(attrs)


def fleet(seed):
    rnd = random.Random(seed * 7 + 3)
    svcs = [Service(i, n, rnd) for i, n in enumerate(SERVICES)]
    tiers = [ENTRY, TIER1, TIER2, TIER3]
    by_name = {s.name: s for s in svcs}
    for t, names in enumerate(tiers[:-1]):
        lower = [n for tt in tiers[t + 1:] for n in tt]
        for n in names:
            k = rnd.randint(2, 4)
            near = tiers[t + 1]
            picks = rnd.sample(near, min(k, len(near)))
            if rnd.random() < 0.5:
                picks.append(rnd.choice(lower))
            by_name[n].downstream = sorted(set(picks), key=SERVICES.index)
    return svcs


EXC = {
    "python": [("psycopg2.OperationalError", "could not connect to server: Connection refused"),
               ("TimeoutError", "timed out waiting for upstream after 2.0s"),
               ("KeyError", "'owner_id'")],
    "java": [("java.net.SocketTimeoutException", "Read timed out"),
             ("org.postgresql.util.PSQLException", "ERROR: deadlock detected"),
             ("java.lang.IllegalStateException", "cart is already checked out")],
    "go": [("*net.OpError", "dial tcp 10.2.4.19:5432: connect: connection refused"),
           ("context.deadlineExceededError", "context deadline exceeded"),
           ("*errors.errorString", "record not found")],
    "nodejs": [("Error", "ECONNRESET"), ("TypeError", "Cannot read properties of undefined "
                                                      "(reading 'items')"),
               ("MongoServerError", "E11000 duplicate key error collection")],
}


def stacktrace(lang, etype, msg, svc, rnd):
    fr = [f"{svc.name}/handlers/{x}" for x in ("api", "service", "repository", "client")]
    n = rnd.randint(3, 8)
    if lang == "python":
        lines = ["Traceback (most recent call last):"]
        for i in range(n):
            lines.append(f'  File "/app/{fr[i % 4]}.py", line {rnd.randint(10, 900)}, in '
                         f"handle_{i}")
            lines.append(f"    result = self.step_{i}(request)")
        lines.append(f"{etype}: {msg}")
    elif lang == "java":
        lines = [f"{etype}: {msg}"]
        for i in range(n):
            lines.append(f"\tat com.shop.{svc.name.replace('-', '')}.{fr[i % 4].split('/')[-1]}"
                         f".Handler{i}.invoke(Handler{i}.java:{rnd.randint(10, 900)})")
    elif lang == "go":
        lines = [f"{etype}: {msg}", "", "goroutine 1 [running]:"]
        for i in range(n):
            lines.append(f"shop/{fr[i % 4]}.(*Handler).Step{i}(...)")
            lines.append(f"\t/src/{fr[i % 4]}.go:{rnd.randint(10, 900)} +0x{rnd.randint(16, 4095):x}")
    else:
        lines = [f"{etype}: {msg}"]
        for i in range(n):
            lines.append(f"    at Handler{i}.step (/app/{fr[i % 4]}.js:{rnd.randint(10, 900)}:"
                         f"{rnd.randint(1, 80)})")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# one chunk


class Chunk:
    def __init__(self, out, seed, c, nspans, t0_ns):
        self.out = out
        self.c = c
        self.quota = nspans
        self.rnd = random.Random((seed * 1_000_003 + c) * 7919)
        self.svcs = fleet(seed)
        self.t = t0_ns
        self.kv_cache = {}
        self.name_cache = {}
        self.keys_cache = {}
        self.pod_res = {}
        for s in self.svcs:
            for p, attrs in enumerate(s.pods):
                res_pb = b"".join(pb(1, key_value(k, v)) for k, v in attrs if k != "service.name")
                res_pb = pb(1, pb(1, key_value("service.name", s.name)) + res_pb)
                keys = [k.encode() for k, _ in attrs]
                vals = [ch_text(v).encode() for _, v in attrs]
                self.pod_res[(s.idx, p)] = (res_pb, rb_strs(keys) + rb_strs(vals))
        # per pod: {scope: [span pb]}, span count, [rowbinary rows]
        self.buf = {}
        self.fo = open(os.path.join(out, f"otlp-{c:04d}.bin.tmp"), "wb")
        self.fc = open(os.path.join(out, f"ch-{c:04d}.rowbinary.tmp"), "wb")
        self.ooff = 0
        self.coff = 0
        self.index = []  # (otlp off, len, spans, ch off, len)
        self.spans = 0
        self.traces = 0
        self.errors = 0
        self.sample = []  # (trace id hex, spans)
        self.slow_traces = 0
        self.error_traces = 0

    # -- encoding helpers ------------------------------------------------------------

    def kv(self, k, v):
        key = (k, v)
        b = self.kv_cache.get(key)
        if b is None:
            b = pb(9, key_value(k, v))
            if len(self.kv_cache) < 200_000:
                self.kv_cache[key] = b
        return b

    def name_pb(self, name):
        b = self.name_cache.get(name)
        if b is None:
            b = self.name_cache[name] = pb(5, name.encode())
        return b

    def keys_rb(self, keys):
        b = self.keys_cache.get(keys)
        if b is None:
            b = self.keys_cache[keys] = rb_strs([k.encode() for k in keys])
        return b

    # -- spans -------------------------------------------------------------------------

    def emit(self, sp, tid):
        """Encode one span (a dict) into its pod's buffer (both formats)."""
        svc = sp["svc"]
        pod = sp["pod"]
        attrs = sp["attrs"]
        parts = [b"\x0a\x10", tid, b"\x12\x08", sp["id"]]
        if sp["parent"] is not None:
            parts += (b"\x22\x08", sp["parent"])
        parts.append(self.name_pb(sp["name"]))
        parts.append(bytes((0x30, sp["kind"])))
        start, end = sp["start"], sp["end"]
        parts.append(b"\x39" + struct.pack("<Q", start) + b"\x41" + struct.pack("<Q", end))
        for k, v, const in attrs:
            parts.append(self.kv(k, v) if const else pb(9, key_value(k, v)))
        ev = sp.get("event")
        if ev is not None:
            et, ename, eattrs = ev
            body = b"\x09" + struct.pack("<Q", et) + pb(2, ename.encode()) + b"".join(
                pb(3, key_value(k, v)) for k, v in eattrs)
            parts.append(pb(11, body))
        if sp["status"] == STATUS_ERROR:
            msg = sp["status_msg"].encode()
            parts.append(pb(15, (pb(2, msg) if msg else b"") + b"\x18\x02"))
        else:
            parts.append(b"\x7a\x00")
        span_pb = pb(2, b"".join(parts))
        scope = sp["scope"]
        key = (svc.idx, pod)
        b = self.buf.get(key)
        if b is None:
            b = self.buf[key] = [{}, 0, []]
        b[0].setdefault(scope, []).append(span_pb)
        b[1] += 1
        # RowBinary, columns in CH_COLUMNS order
        sec, ns = divmod(start, 1_000_000_000)
        akeys = tuple(k for k, _, _ in attrs)
        row = [struct.pack("<II", sec, ns),
               b"\x20", tid.hex().encode(), b"\x10", sp["id"].hex().encode(),
               b"\x10" + sp["parent"].hex().encode() if sp["parent"] is not None else b"\x00",
               b"\x00",  # TraceState
               rb_str(sp["name"].encode()), rb_str(KIND_CH[sp["kind"]].encode()),
               rb_str(svc.name.encode()), self.pod_res[key][1],
               rb_str(scope[0].encode()), rb_str(scope[1].encode()),
               self.keys_rb(akeys), rb_strs([ch_text(v).encode() for _, v, _ in attrs]),
               struct.pack("<q", end - start),
               b"\x05Error" if sp["status"] == STATUS_ERROR else b"\x05Unset",
               rb_str(sp["status_msg"].encode())]
        if ev is not None:
            et, ename, eattrs = ev
            row += [b"\x01" + struct.pack("<q", et), b"\x01" + rb_str(ename.encode()),
                    b"\x01" + self.keys_rb(tuple(k for k, _ in eattrs)),
                    b"\x01" + rb_strs([ch_text(v).encode() for _, v in eattrs])]
        else:
            row.append(b"\x00\x00\x00\x00")
        row.append(b"\x00\x00\x00\x00\x00")  # links: none
        b[2].append(b"".join(row))
        if b[1] >= SPANS_PER_REQUEST:
            self.flush_pod(key)

    def flush_pod(self, key):
        b = self.buf.pop(key, None)
        if not b or not b[1]:
            return
        scopes, n, rows = b
        ss = b"".join(pb(2, pb(1, pb(1, name.encode()) + pb(2, ver.encode())) + b"".join(spans))
                      for (name, ver), spans in scopes.items())
        body = pb(1, self.pod_res[key][0] + ss)
        self.fo.write(body)
        rb = b"".join(rows)
        self.fc.write(rb)
        self.index.append((self.ooff, len(body), n, self.coff, len(rb)))
        self.ooff += len(body)
        self.coff += len(rb)

    def new_id(self):
        return self.rnd.getrandbits(64).to_bytes(8, "little")

    def trace(self):
        """Generate one trace; returns its span count."""
        rnd = self.rnd
        rand = rnd.random
        tid = rnd.getrandbits(128).to_bytes(16, "little")
        n_target = max(5, min(60, int(math.exp(rnd.gauss(math.log(14), 0.55)))))
        r = rand()
        max_svcs = 1 if r < 0.05 else 2 if r < 0.2 else 3 if r < 0.45 else 4 if r < 0.7 else \
            5 if r < 0.88 else 6
        root_svc = self.svcs[rnd.randrange(len(ENTRY))]
        used = {root_svc.idx}
        spans = []

        def server(svc, parent_id, route=None):
            m, route = route or rnd.choice(svc.routes)
            sp = {"svc": svc, "pod": rnd.randrange(PODS_PER_SERVICE), "id": self.new_id(),
                  "parent": parent_id, "name": f"{m} {route}", "kind": KIND_SERVER,
                  "scope": svc.scope_server, "route": (m, route), "children": [],
                  "status": STATUS_UNSET, "status_msg": "", "container": True}
            spans.append(sp)
            return sp

        root = server(root_svc, None)
        containers = [root]
        while len(spans) < n_target:
            par = containers[-1] if rand() < 0.5 else rnd.choice(containers)
            svc = par["svc"]
            left = n_target - len(spans)
            r = rand()
            cands = [d for d in svc.downstream
                     if SERVICES.index(d) in used or len(used) < max_svcs]
            if r < 0.45 and left >= 2 and cands:
                callee = self.svcs[SERVICES.index(rnd.choice(cands))]
                used.add(callee.idx)
                route = rnd.choice(callee.routes)
                cl = {"svc": svc, "pod": par["pod"], "id": self.new_id(), "parent": par["id"],
                      "name": f"{route[0]} {route[1]}", "kind": KIND_CLIENT,
                      "scope": svc.scope_client, "route": route, "callee": callee,
                      "children": [], "status": STATUS_UNSET, "status_msg": "",
                      "container": False}
                spans.append(cl)
                par["children"].append(cl)
                sv = server(callee, cl["id"], route)
                cl["children"].append(sv)
                containers.append(sv)
            elif r < 0.8:
                op, stmt = rnd.choice(svc.db_ops)
                db = {"svc": svc, "pod": par["pod"], "id": self.new_id(), "parent": par["id"],
                      "name": f"{op} {svc.db_name}", "kind": KIND_CLIENT, "scope": svc.scope_db,
                      "db": (op, stmt), "children": [], "status": STATUS_UNSET,
                      "status_msg": "", "container": False}
                spans.append(db)
                par["children"].append(db)
            else:
                fn = rnd.choice(svc.internals)
                it = {"svc": svc, "pod": par["pod"], "id": self.new_id(), "parent": par["id"],
                      "name": fn, "kind": KIND_INTERNAL, "scope": svc.scope_internal,
                      "children": [], "status": STATUS_UNSET, "status_msg": "",
                      "container": True}
                spans.append(it)
                par["children"].append(it)
                containers.append(it)
        # times, top-down
        root["start"] = self.t
        dur = int(math.exp(rnd.gauss(math.log(30e6), 1.1)))
        root["end"] = self.t + max(dur, 200_000)
        stack = [root]
        while stack:
            p = stack.pop()
            s0, e0 = p["start"], p["end"]
            pd = e0 - s0
            if p["kind"] == KIND_CLIENT and "callee" in p:
                sv = p["children"][0]
                lat = min(pd // 4, rnd.randint(100_000, 900_000))
                sv["start"] = s0 + lat // 2
                sv["end"] = max(sv["start"] + 1000, e0 - lat // 2)
                stack.append(sv)
                continue
            cur = s0 + int(pd * 0.02 * rand())
            for ch in p["children"]:
                room = e0 - cur
                if room < 2000:
                    cur = s0
                    room = pd
                d = max(1000, int(room * (0.05 + 0.6 * rand())))
                ch["start"] = cur
                ch["end"] = cur + d
                cur += int(d * (0.3 + 0.8 * rand()))
                if ch["children"]:
                    stack.append(ch)
        # errors, attributes
        n_err = 0
        slow = False
        for sp in spans:
            if sp["end"] - sp["start"] >= 1_000_000_000:
                slow = True
            svc = sp["svc"]
            kind = sp["kind"]
            if kind == KIND_SERVER:
                m, route = sp["route"]
                target = route.replace("{id}", str(rnd.randrange(1_000_000)))
                if sp["status"] == STATUS_UNSET and rand() < ERROR_P:
                    sp["status"] = STATUS_ERROR
                code = 500 if sp["status"] == STATUS_ERROR else (
                    404 if rand() < 0.01 else 201 if m == "POST" else 200)
                sp["code"] = code
                attrs = [("http.method", m, True), ("http.route", route, True),
                         ("http.target", target, False), ("http.scheme", "http", True),
                         ("http.status_code", code, True), ("net.host.name", svc.name, True),
                         ("net.host.port", svc.port, True),
                         ("http.flavor", "1.1", True)]
                if sp["parent"] is None:
                    attrs.append(("http.user_agent", rnd.choice(USER_AGENTS), True))
                    attrs.append(("http.client_ip", f"203.0.113.{rnd.randrange(1, 255)}", False))
                sp["attrs"] = attrs
            elif kind == KIND_INTERNAL:
                if rand() < ERROR_P / 2:
                    sp["status"] = STATUS_ERROR
                fn = sp["name"]
                sp["attrs"] = [("code.function", fn.split(".")[-1], True),
                               ("code.namespace", f"com.shop.{svc.name.replace('-', '')}", True)]
            elif "db" in sp:
                op, stmt = sp["db"]
                if rand() < ERROR_P:
                    sp["status"] = STATUS_ERROR
                sp["attrs"] = [("db.system", svc.db_system, True), ("db.name", svc.db_name, True),
                               ("db.statement", stmt, True), ("db.operation", op, True),
                               ("db.user", "app", True), ("net.peer.name", svc.db_host, True),
                               ("net.peer.port", svc.db_port, True)]
        # client spans mirror their server span (after the servers got their codes)
        for sp in spans:
            if "callee" in sp:
                sv = sp["children"][0]
                m, route = sp["route"]
                callee = sp["callee"]
                if sv["status"] == STATUS_ERROR:
                    sp["status"] = STATUS_ERROR
                    sp["status_msg"] = "HTTP 500"
                target = route.replace("{id}", str(rnd.randrange(1_000_000)))
                sp["attrs"] = [("http.method", m, True),
                               ("http.url", f"http://{callee.name}:{callee.port}{target}", False),
                               ("http.status_code", sv["code"], True),
                               ("net.peer.name", callee.name, True),
                               ("net.peer.port", callee.port, True)]
        tid_hex = None
        for sp in spans:
            if sp["status"] == STATUS_ERROR:
                n_err += 1
                if "callee" not in sp:
                    etype, emsg = rnd.choice(EXC[sp["svc"].lang])
                    if not sp["status_msg"]:
                        sp["status_msg"] = emsg if rand() < 0.5 else ""
                    et = sp["start"] + int((sp["end"] - sp["start"]) * rand())
                    sp["event"] = (et, "exception", [
                        ("exception.type", etype), ("exception.message", emsg),
                        ("exception.stacktrace", stacktrace(sp["svc"].lang, etype, emsg,
                                                            sp["svc"], rnd)),
                        ("exception.escaped", False)])
            self.emit(sp, tid)
        self.errors += n_err
        self.error_traces += n_err > 0
        self.slow_traces += slow
        if rand() < 0.02 and len(self.sample) < 3000:
            tid_hex = tid.hex()
            self.sample.append((tid_hex, len(spans), len(used)))
        # next trace start: SPAN_RATE spans per second on average
        self.t += int(len(spans) * 1e9 / SPAN_RATE * (0.5 + rand()))
        return len(spans)

    def run(self):
        while self.spans < self.quota:
            self.spans += self.trace()
            self.traces += 1
        for key in sorted(self.buf):
            self.flush_pod(key)
        self.fo.close()
        self.fc.close()
        for n in (f"otlp-{self.c:04d}.bin", f"ch-{self.c:04d}.rowbinary"):
            os.replace(os.path.join(self.out, n + ".tmp"), os.path.join(self.out, n))
        return {"chunk": self.c, "index": self.index, "spans": self.spans, "traces": self.traces,
                "error_spans": self.errors, "error_traces": self.error_traces,
                "slow_traces": self.slow_traces, "sample": self.sample,
                "start_ns": None, "end_ns": self.t}


def _gen_chunk(out, seed, c, nspans, t0):
    ch = Chunk(out, seed, c, nspans, t0)
    r = ch.run()
    r["start_ns"] = t0
    return r


# ClickHouse columns in RowBinary order (types adapted to 18.16: no DateTime64, Map,
# LowCardinality; attributes as key and value arrays)
CH_COLUMNS = [
    ("Timestamp", "DateTime"), ("TimestampNs", "UInt32"), ("TraceId", "String"),
    ("SpanId", "String"), ("ParentSpanId", "String"), ("TraceState", "String"),
    ("SpanName", "String"), ("SpanKind", "String"), ("ServiceName", "String"),
    ("ResourceAttributesKeys", "Array(String)"), ("ResourceAttributesValues", "Array(String)"),
    ("ScopeName", "String"), ("ScopeVersion", "String"),
    ("SpanAttributesKeys", "Array(String)"), ("SpanAttributesValues", "Array(String)"),
    ("Duration", "Int64"), ("StatusCode", "String"), ("StatusMessage", "String"),
    ("EventsTimestamp", "Array(Int64)"), ("EventsName", "Array(String)"),
    ("EventsAttributesKeys", "Array(Array(String))"),
    ("EventsAttributesValues", "Array(Array(String))"),
    ("LinksTraceId", "Array(String)"), ("LinksSpanId", "Array(String)"),
    ("LinksTraceState", "Array(String)"), ("LinksAttributesKeys", "Array(Array(String))"),
    ("LinksAttributesValues", "Array(Array(String))"),
]


def chunk_paths(out, c):
    return os.path.join(out, f"otlp-{c:04d}.bin"), os.path.join(out, f"ch-{c:04d}.rowbinary")


def generate(out, spans, seed, jobs=2, log=print):
    """Generate (or reuse when out/manifest.json matches) the chunk files; returns the
    manifest: key, totals, time range, per-chunk request index, trace-id sample."""
    os.makedirs(out, exist_ok=True)
    key = {"spans": spans, "seed": seed, "chunk_spans": CHUNK_SPANS,
           "spans_per_request": SPANS_PER_REQUEST, "span_rate": SPAN_RATE,
           "start_ns": START_NS, "version": VERSION}
    mpath = os.path.join(out, "manifest.json")
    nchunks = max(1, math.ceil(spans / CHUNK_SPANS))
    if os.path.exists(mpath):
        with open(mpath) as f:
            m = json.load(f)
        if m.get("key") == key and all(os.path.exists(p) for c in range(nchunks)
                                       for p in chunk_paths(out, c)):
            log(f"reusing generated spans in {out} ({m['spans']:,} spans)")
            return m
    for name in os.listdir(out):
        if name.startswith(("otlp-", "ch-")) or name == "manifest.json":
            os.remove(os.path.join(out, name))
    est = spans * 1100  # OTLP ~450 + RowBinary ~650 bytes a span
    free = shutil.disk_usage(out).free
    if free < est + (2 << 30):
        raise SystemExit(f"generating needs ~{est / (1 << 30):.1f} GiB in {out}, only "
                         f"{free / (1 << 30):.1f} GiB free")
    log(f"generating {spans:,} spans in {nchunks} chunks into {out} with {jobs} jobs ...")
    t0 = time.perf_counter()
    quotas = [min(CHUNK_SPANS, spans - c * CHUNK_SPANS) for c in range(nchunks)]
    starts = [START_NS + int(c * CHUNK_SPANS * 1e9 / SPAN_RATE) for c in range(nchunks)]
    args = [(out, seed, c, quotas[c], starts[c]) for c in range(nchunks)]
    if jobs <= 1:
        parts = [_gen_chunk(*a) for a in args]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            parts = list(ex.map(_gen_chunk, *zip(*args)))
    m = {"key": key, "spans": sum(p["spans"] for p in parts),
         "traces": sum(p["traces"] for p in parts),
         "error_spans": sum(p["error_spans"] for p in parts),
         "error_traces": sum(p["error_traces"] for p in parts),
         "slow_traces": sum(p["slow_traces"] for p in parts),
         "requests": sum(len(p["index"]) for p in parts),
         "otlp_bytes": sum(x[1] for p in parts for x in p["index"]),
         "ch_bytes": sum(x[4] for p in parts for x in p["index"]),
         "start_ns": START_NS, "end_ns": max(p["end_ns"] for p in parts) + 60 * 1_000_000_000,
         "chunks": [p["index"] for p in parts],
         "sample": [s for p in parts for s in p["sample"]],
         "gen_s": time.perf_counter() - t0}
    with open(mpath, "w") as f:
        json.dump(m, f)
    log(f"generated {m['spans']:,} spans in {m['traces']:,} traces ({m['error_spans']:,} error "
        f"spans = {m['error_spans'] / m['spans']:.2%}; {m['error_traces']:,} traces with an "
        f"error, {m['slow_traces']:,} with a span >= 1 s), {m['requests']:,} requests: OTLP "
        f"{m['otlp_bytes'] / (1 << 20):,.0f} MiB, RowBinary {m['ch_bytes'] / (1 << 20):,.0f} MiB "
        f"in {m['gen_s']:.0f}s")
    return m
