"""Deterministic generator of realistic mixed logs for bench/logs.

Writes three raw files (what Sightline and rg see):
  app.ndjson  JSON application logs of 20 services
  access.log  nginx combined access log (with a trailing $request_time)
  syslog.log  RFC 3164 syslog lines with <PRI>
and, beside them under ch/, the same records as ClickHouse JSONEachRow rows (one row per raw
line, same order), so the per-record comparison uses identical logical data.

Everything is derived from one seed: the same (seed, size) always gives the same bytes.
Python 3.11 stdlib only.
"""

import json
import math
import os
import random
import time

GEN_VERSION = 4  # bump when the output changes, so cached data is regenerated

# 2026-11-19T12:00:00Z: a fixed start; the data spans ~1 day from here.
START_US = 1_795_089_600 * 1_000_000
SPAN_US = 86_400 * 1_000_000

SHARES = {"app": 0.60, "access": 0.25, "syslog": 0.15}

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

SERVICES = [
    # name, relative volume, error-rate multiplier
    ("api-gateway", 14, 1.0), ("checkout", 8, 1.6), ("payments", 6, 2.0), ("orders", 8, 1.0),
    ("inventory", 6, 0.8), ("users", 7, 0.7), ("auth", 9, 1.2), ("search", 8, 0.9),
    ("recommendations", 5, 1.1), ("catalog", 7, 0.6), ("cart", 6, 0.9), ("shipping", 4, 1.3),
    ("notifications", 4, 1.5), ("email-worker", 3, 1.8), ("billing", 3, 1.4),
    ("analytics-ingest", 5, 0.5), ("media", 3, 0.8), ("reviews", 2, 0.7),
    ("fraud-detector", 2, 1.2), ("scheduler", 2, 1.0),
]

RESOURCES = [
    "users", "orders", "products", "carts", "payments", "invoices", "shipments", "reviews",
    "sessions", "tokens", "accounts", "addresses", "coupons", "categories", "images",
    "notifications", "subscriptions", "refunds", "returns", "webhooks", "reports", "exports",
    "imports", "jobs", "events",
]
SUBRES = ["", "/{id}", "/{id}/items", "/{id}/status", "/{id}/history", "/search", "/{id}/events",
          "/bulk"]


def _endpoints(rng):
    """~200 (method, path template) pairs."""
    eps = []
    for r in RESOURCES:
        for s in SUBRES:
            eps.append(("GET", f"/api/v1/{r}{s}"))
    rng.shuffle(eps)
    eps = eps[:170]
    for r in RESOURCES[:15]:
        eps.append(("POST", f"/api/v1/{r}"))
    for r in RESOURCES[:10]:
        eps.append(("PUT", f"/api/v1/{r}/{{id}}"))
    for r in RESOURCES[:5]:
        eps.append(("DELETE", f"/api/v1/{r}/{{id}}"))
    return eps  # 200


UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0", "curl/7.88.1", "python-requests/2.32.3", "Go-http-client/1.1",
    "okhttp/4.12.0", "kube-probe/1.30", "Prometheus/2.53.0", "Apache-HttpClient/4.5.14 (Java/17.0.12)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Wget/1.21.4", "ShopApp/5.12.1 (iOS 17.6; iPhone15,2)", "ShopApp/5.12.0 (Android 14; SM-S918B)",
]
REFERERS = ["-", "-", "-", "https://shop.example.com/", "https://shop.example.com/cart",
            "https://www.google.com/", "https://shop.example.com/products",
            "https://shop.example.com/checkout", "https://m.example.com/"]

ERRORS = [
    "connection refused", "context deadline exceeded", "i/o timeout", "EOF",
    "connection reset by peer", "too many connections", "deadlock detected",
    "no such host", "certificate has expired", "broken pipe", "upstream unavailable",
    "rate limit exceeded", "invalid argument", "permission denied",
]
DEPS = ["postgres-primary:5432", "postgres-replica:5432", "redis:6379", "kafka-0:9092",
        "kafka-1:9092", "elasticsearch:9200", "s3.eu-west-1.amazonaws.com:443",
        "payments-provider.example.net:443", "smtp.example.com:587", "memcached:11211"]
TABLES = ["users", "orders", "order_items", "products", "inventory", "payments", "sessions",
          "carts", "shipments", "audit_log"]
QUEUES = ["orders.created", "payments.captured", "emails.outbound", "inventory.reserved",
          "shipments.dispatched", "analytics.events", "webhooks.delivery"]
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "ES", "IT", "PL", "SE", "JP", "BR", "IN"]
CURRENCIES = ["EUR", "USD", "GBP", "SEK", "PLN", "JPY"]


class _Clock:
    """Increasing microsecond timestamps with jitter; the step is re-estimated from the
    bytes written so far so that the whole stream spans ~SPAN_US."""

    def __init__(self, rng, target_bytes, est_line_bytes, start_us, span_us):
        self.rng = rng
        self.t = start_us
        self.end = start_us + span_us
        self.target = target_bytes
        self.step = span_us / max(1.0, target_bytes / est_line_bytes)

    def tick(self):
        self.t += int(self.rng.expovariate(1.0 / self.step)) if self.step > 0 else 0
        return self.t

    def retune(self, written, lines):
        left_bytes = self.target - written
        if lines and left_bytes > 0:
            left_lines = left_bytes / (written / lines)
            left_us = self.end - self.t
            self.step = max(1.0, left_us / left_lines)


class _TsFmt:
    """Fast RFC 3339 formatting with a per-second cache."""

    def __init__(self):
        self.sec = None
        self.tm = None

    def gm(self, us):
        s = us // 1_000_000
        if s != self.sec:
            self.sec = s
            self.tm = time.gmtime(s)
        return self.tm

    def rfc3339(self, us):
        tm = self.gm(us)
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (
            tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us % 1_000_000)

    def clf(self, us):
        tm = self.gm(us)
        return "%02d/%s/%04d:%02d:%02d:%02d +0000" % (
            tm.tm_mday, MONTHS[tm.tm_mon - 1], tm.tm_year, tm.tm_hour, tm.tm_min, tm.tm_sec)

    def bsd(self, us):
        tm = self.gm(us)
        return "%s %2d %02d:%02d:%02d" % (
            MONTHS[tm.tm_mon - 1], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)


def _weighted(pairs):
    """A list to index uniformly that reproduces integer weights."""
    out = []
    for v, w in pairs:
        out.extend([v] * w)
    return out


def _ch_row(ts_us, level, service, message, trace_id, span_id, status, duration_ms, path, attrs):
    return json.dumps({
        "ts": ts_us // 1_000_000, "ts_ns": (ts_us % 1_000_000) * 1000, "level": level,
        "service": service, "message": message, "trace_id": trace_id, "span_id": span_id,
        "status": status, "duration_ms": duration_ms, "path": path,
        "attributes": json.dumps(attrs, separators=(",", ":")) if attrs else "",
    }, separators=(",", ":"))


class _Writer:
    def __init__(self, path):
        self.f = open(path, "w", encoding="utf-8", newline="\n")
        self.buf = []
        self.n = 0

    def add(self, line):
        self.buf.append(line)
        if len(self.buf) >= 4096:
            self.flush()

    def flush(self):
        if self.buf:
            self.f.write("\n".join(self.buf))
            self.f.write("\n")
            self.buf.clear()

    def close(self):
        self.flush()
        self.f.close()


def _more_templates(k, r, gb, uid, x, em, extra):
    """Further message templates (26-50): (message, level)."""
    if k == 0:
        if x < 0.02 * em:
            return "token validation failed for %s: token expired %ds ago" % (uid, int(r() * 86400)), "warn"
        return "issued access token for %s, expires in %ds" % (uid, 900 * (1 + int(r() * 4))), "info"
    if k == 1:
        n = int(r() * 40)
        return "search query returned %d hits in %dms (index=%s)" % (
            int(r() * 5000), n, ["products-v7", "orders-v2", "users-v3"][int(r() * 3)]), "info"
    if k == 2:
        return "sent %s email to %s (message id %s@mail.example.com)" % (
            ["order-confirmation", "password-reset", "shipping-update", "newsletter", "receipt"][int(r() * 5)],
            uid, "%016x" % gb(64)), "info"
    if k == 3:
        if x < 0.03 * em:
            return "webhook delivery to https://hooks.partner%d.example.com/events failed: HTTP %d, will retry" % (
                int(r() * 40), [500, 502, 503, 504, 410][int(r() * 5)]), "error"
        return "webhook delivered to https://hooks.partner%d.example.com/events in %dms" % (
            int(r() * 40), int(r() * 900)), "info"
    if k == 4:
        return "kafka consumer group %s rebalanced: %d partitions assigned" % (
            QUEUES[int(r() * len(QUEUES))] + "-consumers", 1 + int(r() * 12)), "info"
    if k == 5:
        return "shipment %s for order ord_%010d handed to %s, tracking %s" % (
            "shp_%08x" % gb(32), int(r() * 3_000_000_000), ["DHL", "UPS", "DPD", "FedEx", "GLS"][int(r() * 5)],
            "1Z%016X" % gb(64)), "info"
    if k == 6:
        return "refund %s of %.2f %s issued for order ord_%010d" % (
            "re_%010x" % gb(40), r() * 300, CURRENCIES[int(r() * len(CURRENCIES))], int(r() * 3_000_000_000)), "info"
    if k == 7:
        if x < 0.05:
            return "fraud score %.3f above threshold for %s, order held for review" % (0.8 + r() * 0.2, uid), "warn"
        return "fraud score %.3f for %s" % (r() * 0.8, uid), "debug"
    if k == 8:
        return "image %s resized to %dx%d in %dms (%d bytes)" % (
            "img_%012x" % gb(48), [128, 256, 512, 1024][int(r() * 4)], [128, 256, 512, 1024][int(r() * 4)],
            int(r() * 400), int(r() * 900000)), "info"
    if k == 9:
        return "session %s expired for %s after %dm idle" % ("%024x" % gb(96), uid, 15 + int(r() * 120)), "debug"
    if k == 10:
        return "rate limiter: %s used %d/%d requests in window" % (uid, int(r() * 1000), 1000), "debug"
    if k == 11:
        if x < 0.02 * em:
            return "request body validation failed: field %s: %s" % (
                ["email", "quantity", "address.zip", "currency", "items[0].sku"][int(r() * 5)],
                ["must not be empty", "must be > 0", "invalid format", "unsupported value"][int(r() * 4)]), "warn"
        return "validated request with %d fields" % int(r() * 30), "debug"
    if k == 12:
        return "coupon %s applied to cart %s: -%d%%" % (
            "SAVE%02d-%04X" % (int(r() * 50), gb(16)), "cart_%08x" % gb(32), 5 + int(r() * 30)), "info"
    if k == 13:
        if x < 0.015 * em:
            return "invoice %s generation failed: template render error at line %d" % ("inv_%08x" % gb(32), int(r() * 300)), "error"
        return "invoice %s generated (%d pages, %d KiB)" % ("inv_%08x" % gb(32), 1 + int(r() * 4), 20 + int(r() * 400)), "info"
    if k == 14:
        return "recommendations model %s served %d items for %s (cache %s)" % (
            ["als-2026-11-18", "two-tower-v4", "popular-fallback"][int(r() * 3)], 10 + int(r() * 40), uid,
            "hit" if r() < 0.6 else "miss"), "info"
    return "migration %04d_%s applied in %dms" % (
        int(r() * 400), ["add_index_orders_user", "create_refunds", "alter_sessions_ttl", "backfill_sku"][int(r() * 4)],
        int(r() * 3000)), "info"


def gen_app(path, ch_path, target, seed, seg, nseg, needle_at=None):
    """JSON application logs, segment seg of nseg. Returns stats incl. the needle trace id
    (when needle_at, a fraction of the segment, is given)."""
    trng = random.Random(f"{seed}/app-tables")
    r = trng.random
    gb = trng.getrandbits
    endpoints = _endpoints(trng)
    services = _weighted([(s, w) for s, w, _ in SERVICES])
    errmult = {s: m for s, _, m in SERVICES}
    # per-service endpoint subsets and pods
    svc_eps = {s: [endpoints[int(r() * len(endpoints))] for _ in range(25)] for s, _, _ in SERVICES}
    pods = {s: [f"{s}-{gb(24):06x}-{gb(20):05x}"[:len(s) + 17] for _ in range(4)]
            for s, _, _ in SERVICES}
    versions = {s: f"{1 + int(r() * 3)}.{int(r() * 20)}.{int(r() * 10)}" for s, _, _ in SERVICES}
    ep_mu = {ep: math.log(5 + r() * 120) for ep in endpoints}
    statuses_ok = _weighted([(200, 80), (201, 6), (204, 4), (304, 3), (302, 1)])
    statuses_4xx = _weighted([(400, 4), (401, 3), (403, 2), (404, 8), (409, 1), (422, 2), (429, 1)])
    statuses_5xx = _weighted([(500, 4), (502, 2), (503, 3), (504, 2)])
    rng = random.Random(f"{seed}/app/{seg}")
    r = rng.random
    gb = rng.getrandbits
    fmt = _TsFmt()
    clock = _Clock(rng, target, 330, START_US + seg * SPAN_US // nseg, SPAN_US // nseg)
    # active traces: [trace_id, lines_left, span_id]
    active = []
    needle = None
    needle_lines = 0
    needle_armed = False
    needle_bytes = needle_at * target if needle_at is not None else float("inf")
    n_lines = 0
    written = 0
    ch = _Writer(ch_path)
    out = _Writer(path)
    levels_count = {}
    dumps = json.dumps

    def user():
        # ~100k users, skewed: some users are much more active
        return "u%06d" % int(100_000 * (r() ** 1.6))

    while written < target:
        ts = clock.tick()
        svc = services[int(r() * len(services))]
        em = errmult[svc]
        # trace: 85% of lines belong to a trace; a trace spans 1-8 lines
        trace_id = span_id = ""
        if r() < 0.85:
            if len(active) < 8 or r() < 0.15:
                tid = "%032x" % gb(128)
                left = 1 + int(r() * r() * 8)
                if needle_armed and needle is None:
                    needle = tid
                tr = [tid, left]
                if len(active) < 8:
                    active.append(tr)
                else:
                    active[int(r() * len(active))] = tr
            else:
                tr = active[int(r() * len(active))]
            trace_id = tr[0]
            span_id = "%016x" % gb(64)
            tr[1] -= 1
            if tr[1] <= 0:
                # the slot starts a new trace
                tr[0] = "%032x" % gb(128)
                tr[1] = 1 + int(r() * r() * 8)
            if trace_id == needle:
                needle_lines += 1
        pod = pods[svc][int(r() * 4)]
        extra = {"host": pod, "version": versions[svc]}
        status = 0
        duration = 0.0
        pth = ""
        kind = r()
        x = r()
        if kind < 0.55:
            # HTTP request log
            method, tmpl = svc_eps[svc][int(r() * 25)]
            pth = tmpl.replace("{id}", str(int(r() * 900_000) + 1000)) if "{id}" in tmpl else tmpl
            if x < 0.012 * em:
                status = statuses_5xx[int(r() * len(statuses_5xx))]
                level = "error"
            elif x < 0.07 * em:
                status = statuses_4xx[int(r() * len(statuses_4xx))]
                level = "warn" if r() < 0.5 else "info"
            else:
                status = statuses_ok[int(r() * len(statuses_ok))]
                level = "info"
            duration = round(rng.lognormvariate(ep_mu[(method, tmpl)], 0.8), 3)
            if status >= 500 and r() < 0.5:
                duration = round(duration + 1000 * r() * 30, 3)
            uid = user()
            extra["method"] = method
            extra["user_id"] = uid
            extra["client_ip"] = "10.%d.%d.%d" % (int(r() * 4), int(r() * 256), int(r() * 256))
            if level == "error":
                msg = "%s %s failed with %d after %.1fms: %s" % (
                    method, pth, status, duration, ERRORS[int(r() * len(ERRORS))])
            else:
                msg = "%s %s %d %.1fms" % (method, pth, status, duration)
        else:
            t = int(r() * 62)
            uid = user()
            level = "info"
            if t < 6:
                dep = DEPS[int(r() * len(DEPS))]
                if x < 0.03 * em:
                    level = "error"
                    msg = "failed to connect to %s: %s (attempt %d/5)" % (
                        dep, ERRORS[int(r() * 5)], 1 + int(r() * 5))
                elif x < 0.1:
                    level = "warn"
                    msg = "slow call to %s took %dms" % (dep, 500 + int(r() * 4500))
                else:
                    level = "debug"
                    msg = "connection pool %s: %d active, %d idle" % (dep, int(r() * 50), int(r() * 20))
                extra["peer"] = dep
            elif t < 12:
                tbl = TABLES[int(r() * len(TABLES))]
                duration = round(rng.lognormvariate(1.5, 1.2), 3)
                if duration > 200:
                    level = "warn"
                    msg = "slow query on %s: %.1fms rows=%d" % (tbl, duration, int(r() * 50000))
                else:
                    level = "debug" if r() < 0.5 else "info"
                    msg = "query %s select by id took %.2fms" % (tbl, duration)
                extra["db.table"] = tbl
            elif t < 17:
                q = QUEUES[int(r() * len(QUEUES))]
                if x < 0.02 * em:
                    level = "error"
                    msg = "failed to process message %d from %s: %s" % (
                        gb(40), q, ERRORS[int(r() * len(ERRORS))])
                else:
                    msg = "processed message %d from %s in %dms" % (gb(40), q, int(r() * 300))
                extra["queue"] = q
                extra["partition"] = int(r() * 12)
            elif t < 21:
                msg = "user %s logged in from %s" % (uid, COUNTRIES[int(r() * len(COUNTRIES))])
                extra["user_id"] = uid
                if x < 0.06 * em:
                    level = "warn"
                    msg = "failed login for user %s: invalid password (%d attempts)" % (
                        uid, 1 + int(r() * 6))
            elif t < 25:
                amt = round(rng.lognormvariate(3.5, 1.0), 2)
                cur = CURRENCIES[int(r() * len(CURRENCIES))]
                oid = "ord_%010d" % int(r() * 3_000_000_000)
                if x < 0.025 * em:
                    level = "error"
                    msg = "payment for order %s declined: %s" % (oid, ["card_declined", "insufficient_funds", "expired_card", "processing_error", "fraud_suspected"][int(r() * 5)])
                else:
                    msg = "order %s placed by %s: %d items, total %.2f %s" % (
                        oid, uid, 1 + int(r() * 9), amt, cur)
                extra["order_id"] = oid
                extra["amount"] = amt
                extra["currency"] = cur
                extra["user_id"] = uid
            elif t < 28:
                key = "%s:%s:%d" % (svc, ["user", "product", "cart", "session"][int(r() * 4)], int(r() * 1_000_000))
                level = "debug"
                msg = "cache %s for key %s" % ("hit" if r() < 0.8 else "miss", key)
                extra["cache.key"] = key
            elif t < 31:
                job = ["reindex", "cleanup-sessions", "send-digest", "rotate-keys", "sync-inventory", "export-report"][int(r() * 6)]
                if x < 0.02 * em:
                    level = "error"
                    msg = "job %s (run %d) failed: %s" % (job, gb(24), ERRORS[int(r() * len(ERRORS))])
                else:
                    msg = "job %s (run %d) finished in %.1fs, %d items" % (
                        job, gb(24), r() * 120, int(r() * 100000))
                extra["job"] = job
            elif t < 34:
                msg = "GC pause %.2fms, heap %dMiB/%dMiB" % (r() * 40, 200 + int(r() * 1800), 2048)
                level = "debug" if r() < 0.7 else "info"
            elif t < 37:
                if x < 0.3:
                    level = "warn"
                    msg = "retrying request to %s in %dms (attempt %d)" % (
                        DEPS[int(r() * len(DEPS))], 100 * (1 + int(r() * 10)), 1 + int(r() * 4))
                else:
                    msg = "circuit breaker %s is %s" % (
                        DEPS[int(r() * len(DEPS))], ["closed", "half-open"][int(r() * 2)])
            elif t < 40:
                sku = "SKU-%06d" % int(r() * 200_000)
                msg = "stock for %s updated: %d -> %d" % (sku, int(r() * 500), int(r() * 500))
                extra["sku"] = sku
                if x < 0.03:
                    level = "warn"
                    msg = "stock for %s is low: %d left" % (sku, int(r() * 5))
            elif t < 43:
                level = "info"
                msg = "feature flag %s evaluated to %s for %s" % (
                    ["new-checkout", "fast-search", "dark-mode", "recs-v2", "one-click"][int(r() * 5)],
                    "true" if r() < 0.4 else "false", uid)
            elif t < 45:
                if x < 0.01 * em:
                    level = "fatal" if r() < 0.1 else "error"
                    msg = "panic recovered: runtime error: index out of range [%d] with length %d" % (
                        int(r() * 10), int(r() * 10))
                    extra["stack"] = "goroutine %d [running]:\nmain.handler(0x%x)\n\t/app/handler.go:%d +0x%x" % (
                        gb(16), gb(32), int(r() * 400), gb(12))
                else:
                    msg = "health check ok (%d deps)" % (1 + int(r() * 6))
                    level = "debug"
            elif t < 46:
                msg = "config reloaded: %d keys changed" % int(r() * 12)
            else:
                msg, level = _more_templates(t - 46, r, gb, uid, x, em, extra)
        n_lines += 1
        levels_count[level] = levels_count.get(level, 0) + 1
        # JSON: the field order is fixed: ts, level, service, message, trace_id, span_id, ...
        head = '{"ts":"%s","level":"%s","service":"%s","message":%s' % (
            fmt.rfc3339(ts), level, svc, dumps(msg))
        parts = [head]
        if trace_id:
            parts.append(',"trace_id":"%s","span_id":"%s"' % (trace_id, span_id))
        if pth:
            parts.append(',"path":"%s","status":%d,"duration_ms":%s' % (pth, status, duration))
        elif duration:
            parts.append(',"duration_ms":%s' % duration)
        rest = dumps(extra, separators=(",", ":"))
        parts.append("," + rest[1:])
        line = "".join(parts)
        out.add(line)
        written += len(line) + 1
        attrs = dict(extra)
        ch.add(_ch_row(ts, level, svc, msg, trace_id, span_id, status, duration, pth, attrs))
        if n_lines % 20000 == 0:
            clock.retune(written, n_lines)
        if written >= needle_bytes and not needle_armed:
            needle_armed = True
    out.close()
    ch.close()
    return {"lines": n_lines, "bytes": written, "needle": needle, "needle_lines": needle_lines,
            "levels": levels_count}


def gen_access(path, ch_path, target, seed, seg, nseg):
    rng = random.Random(f"{seed}/access-tables")
    r = rng.random
    endpoints = _endpoints(random.Random(f"{seed}/endpoints"))
    static = ["/", "/favicon.ico", "/robots.txt", "/static/js/app.%s.js", "/static/css/main.%s.css",
              "/static/img/logo.svg", "/products", "/cart", "/checkout", "/login", "/healthz"]
    hashes = ["%08x" % rng.getrandbits(32) for _ in range(6)]
    # ~5000 client IPs with a skew
    ips = ["%d.%d.%d.%d" % (int(1 + r() * 222), int(r() * 256), int(r() * 256), int(1 + r() * 254))
           for _ in range(5000)]
    rng = random.Random(f"{seed}/access/{seg}")
    r = rng.random
    fmt = _TsFmt()
    clock = _Clock(rng, target, 195, START_US + seg * SPAN_US // nseg, SPAN_US // nseg)
    statuses = _weighted([(200, 820), (304, 50), (301, 15), (302, 15), (404, 40), (400, 8),
                          (401, 10), (403, 6), (499, 6), (500, 10), (502, 8), (503, 8), (504, 4)])
    n = 0
    written = 0
    out = _Writer(path)
    ch = _Writer(ch_path)
    while written < target:
        ts = clock.tick()
        ip = ips[int(5000 * (r() ** 2.2))]
        if r() < 0.45:
            p = static[int(r() * len(static))]
            if "%s" in p:
                p = p % hashes[int(r() * len(hashes))]
            method = "GET"
        else:
            method, tmpl = endpoints[int(r() * len(endpoints))]
            p = tmpl.replace("{id}", str(int(r() * 900_000) + 1000)) if "{id}" in tmpl else tmpl
            if method == "GET" and r() < 0.2:
                p += "?page=%d&limit=%d" % (1 + int(r() * 20), [10, 20, 50, 100][int(r() * 4)])
        status = statuses[int(r() * len(statuses))]
        nbytes = 0 if status in (304, 204) else int(rng.lognormvariate(7.5, 1.5))
        rt = round(rng.lognormvariate(-3.8, 1.1), 3)
        ua = UAS[int(len(UAS) * (r() ** 1.5))]
        ref = REFERERS[int(r() * len(REFERERS))]
        proto = "HTTP/2.0" if r() < 0.6 else "HTTP/1.1"
        user = "-" if r() < 0.97 else "admin"
        line = '%s - %s [%s] "%s %s %s" %d %d "%s" "%s" %.3f' % (
            ip, user, fmt.clf(ts), method, p, proto, status, nbytes, ref, ua, rt)
        out.add(line)
        written += len(line) + 1
        n += 1
        level = "error" if status >= 500 else ("warn" if status >= 400 else "info")
        attrs = {"remote_addr": ip, "method": method, "protocol": proto, "referer": ref,
                 "user_agent": ua, "bytes": nbytes, "request_time": rt}
        if user != "-":
            attrs["remote_user"] = user
        ts_s = (ts // 1_000_000) * 1_000_000  # the access log has second resolution
        ch.add(_ch_row(ts_s, level, "nginx", line, "", "", status, round(rt * 1000, 3), p, attrs))
        if n % 20000 == 0:
            clock.retune(written, n)
    out.close()
    ch.close()
    return {"lines": n, "bytes": written}


SYSLOG_HOSTS = ["web-%02d" % i for i in range(1, 13)] + ["db-%02d" % i for i in range(1, 5)] + \
    ["worker-%02d" % i for i in range(1, 9)] + ["lb-01", "lb-02", "bastion", "mail-01"]

# severity numbers: 3 err, 4 warning, 5 notice, 6 info, 7 debug
SEV_LEVEL = {2: "fatal", 3: "error", 4: "warn", 5: "info", 6: "info", 7: "debug"}
FACILITY = {0: "kern", 1: "user", 2: "mail", 3: "daemon", 4: "auth", 9: "cron", 10: "authpriv"}


def gen_syslog(path, ch_path, target, seed, seg, nseg):
    rng = random.Random(f"{seed}/syslog-tables")
    r = rng.random
    users = ["root", "deploy", "ubuntu", "admin", "backup", "jenkins", "alice", "bob", "carol"]
    bad_users = ["admin", "test", "oracle", "postgres", "user", "guest", "ftpuser", "pi", "git"]
    ext_ips = ["%d.%d.%d.%d" % (int(1 + r() * 222), int(r() * 256), int(r() * 256), int(1 + r() * 254))
               for _ in range(800)]
    pids = {h: {} for h in SYSLOG_HOSTS}
    n = 0
    written = 0
    out = _Writer(path)
    ch = _Writer(ch_path)
    uptime = {h: r() * 3_000_000 for h in SYSLOG_HOSTS}
    rng = random.Random(f"{seed}/syslog/{seg}")
    r = rng.random
    gb = rng.getrandbits
    fmt = _TsFmt()
    clock = _Clock(rng, target, 115, START_US + seg * SPAN_US // nseg, SPAN_US // nseg)
    while written < target:
        ts = clock.tick()
        host = SYSLOG_HOSTS[int(r() * len(SYSLOG_HOSTS))]
        k = r()
        pid = None
        if k < 0.30:
            prog, fac = "sshd", 4
            hp = pids[host]
            pid = hp.get("sshd") or 1000 + int(r() * 60000)
            if r() < 0.3:
                pid = 1000 + int(r() * 60000)
            hp["sshd"] = pid
            ip = ext_ips[int(r() * len(ext_ips))]
            x = r()
            if x < 0.35:
                sev, msg = 6, "Failed password for invalid user %s from %s port %d ssh2" % (
                    bad_users[int(r() * len(bad_users))], ip, 1024 + int(r() * 64000))
            elif x < 0.5:
                sev, msg = 6, "Invalid user %s from %s port %d" % (
                    bad_users[int(r() * len(bad_users))], ip, 1024 + int(r() * 64000))
            elif x < 0.65:
                sev, msg = 6, "Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:%s" % (
                    users[int(r() * len(users))], "10.0.%d.%d" % (int(r() * 4), int(r() * 256)),
                    1024 + int(r() * 64000), "%043x" % gb(172))
            elif x < 0.8:
                sev, msg = 6, "pam_unix(sshd:session): session opened for user %s(uid=%d) by (uid=0)" % (
                    users[int(r() * len(users))], 1000 + int(r() * 9))
            elif x < 0.93:
                sev, msg = 6, "Received disconnect from %s port %d:11: disconnected by user" % (
                    ip, 1024 + int(r() * 64000))
            else:
                sev, msg = 3, "error: kex_exchange_identification: Connection closed by remote host"
        elif k < 0.48:
            prog, fac = "CRON", 9
            pid = 10000 + int(r() * 50000)
            sev = 6
            msg = "(%s) CMD (%s)" % (["root", "www-data", "backup"][int(r() * 3)], [
                "/usr/lib/php/sessionclean", "cd / && run-parts --report /etc/cron.hourly",
                "/usr/local/bin/backup.sh --incremental", "test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )",
                "/opt/app/bin/rotate-logs", "command -v debian-sa1 > /dev/null && debian-sa1 1 1"][int(r() * 6)])
        elif k < 0.62:
            prog, fac = "kernel", 0
            up = uptime[host] + (ts - START_US) / 1e6
            x = r()
            if x < 0.4:
                sev, msg = 4, "[%.6f] [UFW BLOCK] IN=eth0 OUT= MAC=%s SRC=%s DST=10.0.%d.%d LEN=%d TOS=0x00 PREC=0x00 TTL=%d ID=%d PROTO=TCP SPT=%d DPT=%d WINDOW=%d RES=0x00 SYN URGP=0" % (
                    up, ":".join("%02x" % gb(8) for _ in range(14)), ext_ips[int(r() * len(ext_ips))],
                    int(r() * 4), int(r() * 256), 40 + int(r() * 40), 30 + int(r() * 220), gb(16),
                    1024 + int(r() * 64000), [22, 23, 80, 443, 3389, 5432, 6379, 8080][int(r() * 8)], gb(16))
            elif x < 0.6:
                sev, msg = 6, "[%.6f] eth0: Link is Up - 10Gbps/Full - flow control rx/tx" % up
            elif x < 0.75:
                sev, msg = 3, "[%.6f] Out of memory: Killed process %d (%s) total-vm:%dkB, anon-rss:%dkB, file-rss:0kB" % (
                    up, 1000 + int(r() * 60000), ["java", "python3", "node", "postgres"][int(r() * 4)],
                    int(r() * 8_000_000), int(r() * 4_000_000))
            else:
                sev, msg = 4, "[%.6f] TCP: request_sock_TCP: Possible SYN flooding on port %d. Sending cookies." % (
                    up, [80, 443, 8080][int(r() * 3)])
        elif k < 0.78:
            prog, fac = "systemd", 3
            pid = 1
            unit = ["nginx.service", "postgresql.service", "docker.service", "app-worker@%d.service" % int(r() * 8),
                    "logrotate.service", "apt-daily.service", "certbot.service", "node-exporter.service"][int(r() * 8)]
            x = r()
            if x < 0.4:
                sev, msg = 6, "Started %s." % unit
            elif x < 0.7:
                sev, msg = 6, "%s: Deactivated successfully." % unit
            elif x < 0.9:
                sev, msg = 6, "%s: Consumed %.3fs CPU time." % (unit, r() * 30)
            else:
                sev, msg = 3, "%s: Main process exited, code=exited, status=%d/%s" % (
                    unit, 1 + int(r() * 3), ["FAILURE", "INVALIDARGUMENT", "NOTIMPLEMENTED"][int(r() * 3)])
        elif k < 0.86:
            prog, fac = "sudo", 10
            sev = 5
            u = users[int(r() * len(users))]
            msg = "%8s : TTY=pts/%d ; PWD=/home/%s ; USER=root ; COMMAND=/usr/bin/%s" % (
                u, int(r() * 5), u, ["systemctl restart nginx", "apt-get update", "journalctl -xe",
                                     "tail -f /var/log/syslog", "docker ps"][int(r() * 5)])
        elif k < 0.94:
            prog, fac = "postfix/smtpd", 2
            pid = 2000 + int(r() * 30000)
            x = r()
            if x < 0.5:
                sev, msg = 6, "connect from unknown[%s]" % ext_ips[int(r() * len(ext_ips))]
            elif x < 0.8:
                sev, msg = 6, "%010X: client=unknown[%s]" % (gb(40), ext_ips[int(r() * len(ext_ips))])
            else:
                sev, msg = 4, "warning: hostname %s does not resolve to address %s: Name or service not known" % (
                    "host-%d.example.net" % int(r() * 10000), ext_ips[int(r() * len(ext_ips))])
        else:
            prog, fac = ["dhclient", "ntpd", "rsyslogd", "dockerd"][int(r() * 4)], 3
            pid = 300 + int(r() * 3000)
            sev = 6
            if prog == "dhclient":
                msg = "DHCPACK of 10.0.%d.%d from 10.0.0.1 (xid=0x%08x)" % (int(r() * 4), int(r() * 256), gb(32))
            elif prog == "ntpd":
                msg = "adjusting local clock by %.6fs" % ((r() - 0.5) / 10)
            elif prog == "rsyslogd":
                msg = "[origin software=\"rsyslogd\" swVersion=\"8.2302.0\" x-pid=\"%d\"] rsyslogd was HUPed" % pid
            else:
                sev = 4 if r() < 0.3 else 6
                msg = "level=%s msg=\"container %012x health check %s\"" % (
                    "warning" if sev == 4 else "info", gb(48), "failed" if sev == 4 else "ok")
        pri = fac * 8 + sev
        tag = "%s[%d]" % (prog, pid) if pid is not None else prog
        line = "<%d>%s %s %s: %s" % (pri, fmt.bsd(ts), host, tag, msg)
        out.add(line)
        written += len(line) + 1
        n += 1
        attrs = {"hostname": host, "appname": prog, "facility": FACILITY[fac]}
        if pid is not None:
            attrs["procid"] = pid
        ts_s = (ts // 1_000_000) * 1_000_000  # RFC 3164 has second resolution
        ch.add(_ch_row(ts_s, SEV_LEVEL[sev], prog, msg, "", "", 0, 0.0, "", attrs))
        if n % 20000 == 0:
            clock.retune(written, n)
    out.close()
    ch.close()
    return {"lines": n, "bytes": written}


SEGMENTS = {"app": 4, "access": 2, "syslog": 1}
FILES = {"app": "app.ndjson", "access": "access.log", "syslog": "syslog.log"}
GENS = {"app": gen_app, "access": gen_access, "syslog": gen_syslog}


def _task(args):
    kind, seg, nseg, out_dir, target, seed = args
    raw = os.path.join(out_dir, f".{kind}.{seg}.part")
    ch = os.path.join(out_dir, "ch", f".{kind}.{seg}.part")
    kw = {"needle_at": 0.5} if (kind == "app" and seg == nseg // 2) else {}
    res = GENS[kind](raw, ch, target, seed, seg, nseg, **kw)
    return kind, seg, raw, ch, res


def generate(out_dir, total_bytes, seed, jobs=2, log=print):
    """Generate (or reuse, when the manifest matches) the data set. Returns the manifest.

    Each stream is cut into time segments generated in parallel (each from its own seeded
    RNG), then concatenated in time order; the result depends on (seed, size) only."""
    os.makedirs(os.path.join(out_dir, "ch"), exist_ok=True)
    mpath = os.path.join(out_dir, "manifest.json")
    want = {"version": GEN_VERSION, "seed": seed, "target_bytes": total_bytes}
    if os.path.exists(mpath):
        with open(mpath) as f:
            m = json.load(f)
        if all(m.get(k) == v for k, v in want.items()) and all(
                os.path.exists(os.path.join(out_dir, n)) and
                os.path.getsize(os.path.join(out_dir, n)) == m["files"][n]["bytes"]
                for n in m["files"]):
            log(f"reusing generated data in {out_dir} (seed {seed}, {m['raw_bytes'] / 2**20:.1f} MiB)")
            return m
        os.remove(mpath)
    t0 = time.time()
    log(f"generating {total_bytes / 2**20:.0f} MiB of logs (seed {seed}, {jobs} processes) ...")
    tasks = []
    for kind, nseg in SEGMENTS.items():
        per = int(total_bytes * SHARES[kind]) // nseg
        for seg in range(nseg):
            tasks.append((kind, seg, nseg, out_dir, per, seed))
    tasks.sort(key=lambda t: -t[4])  # biggest first
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        results = pool.map(_task, tasks, chunksize=1)
    results.sort(key=lambda x: (x[0], x[1]))
    files = {}
    m = dict(want)
    for kind, fname in FILES.items():
        parts = [x for x in results if x[0] == kind]
        lines = sum(x[4]["lines"] for x in parts)
        nbytes = sum(x[4]["bytes"] for x in parts)
        for idx, dst in ((2, os.path.join(out_dir, fname)),
                         (3, os.path.join(out_dir, "ch", kind + ".jsonl"))):
            with open(dst, "wb") as out:
                for x in parts:
                    with open(x[idx], "rb") as f:
                        while True:
                            b = f.read(1 << 22)
                            if not b:
                                break
                            out.write(b)
                    os.remove(x[idx])
        files[fname] = {"lines": lines, "bytes": nbytes, "ch": "ch/" + kind + ".jsonl"}
        for x in parts:
            if x[4].get("needle"):
                m["needle"] = x[4]["needle"]
                m["needle_lines"] = x[4]["needle_lines"]
        log(f"  {fname}: {lines} lines, {nbytes / 2**20:.1f} MiB")
    lv = {}
    for x in results:
        for k, v in x[4].get("levels", {}).items():
            lv[k] = lv.get(k, 0) + v
    m.update({"files": files, "raw_bytes": sum(f["bytes"] for f in files.values()),
              "rows": sum(f["lines"] for f in files.values()), "app_levels": lv,
              "gen_seconds": round(time.time() - t0, 1)})
    with open(mpath, "w") as f:
        json.dump(m, f, indent=1)
    log(f"  generated in {m['gen_seconds']}s")
    return m
