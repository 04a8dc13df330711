#!/usr/bin/env python3
"""Checks the eval cases of Prometheus .test scripts against a real Prometheus 2.42 server.

For every load state (the series loaded since the last `clear`), writes the samples as
OpenMetrics, builds TSDB blocks with `promtool tsdb create-blocks-from openmetrics`, starts
`prometheus` on them and runs each `eval instant` through /api/v1/query. Prints the cases
where Prometheus disagrees with the script. States with `stale` markers are skipped
(OpenMetrics cannot carry them).
"""
import json, math, os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.parse, urllib.request

def parse_duration(s):
    if s == "0": return 0
    total = 0
    for n, u in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", s):
        total += int(n) * {"y": 365*86400000, "w": 7*86400000, "d": 86400000, "h": 3600000, "m": 60000, "s": 1000, "ms": 1}[u]
    if "".join(a + b for a, b in re.findall(r"(\d+)(ms|y|w|d|h|m|s)", s)) != s: raise ValueError(s)
    return total

def num(s):
    l = s.lower()
    if l in ("inf", "+inf"): return math.inf
    if l == "-inf": return -math.inf
    if l == "nan": return math.nan
    return float(s)

def parse_metric(s):
    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?", s)
    name = m.group(1); rest = s[m.end():]
    labels = {}
    if name: labels["__name__"] = name
    if rest.startswith("{"):
        i = 1
        while True:
            while rest[i] in " ,\t": i += 1
            if rest[i] == "}": i += 1; break
            m = re.match(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*", rest[i:]); ln = m.group(1); i += m.end()
            q = rest[i]; i += 1; v = ""
            while rest[i] != q:
                if rest[i] == "\\" and q != "`": i += 1; v += {"n": "\n", "t": "\t"}.get(rest[i], rest[i])
                else: v += rest[i]
                i += 1
            i += 1; labels[ln] = v
        rest = rest[i:]
    return labels, rest.strip()

def parse_values(s):
    out = []
    for tok in s.split():
        if tok == "_": out.append(None); continue
        if tok.startswith("_x"): out += [None] * int(tok[2:]); continue
        if tok == "stale": out.append("stale"); continue
        m = re.match(r"^(.*?)x(\d+)$", tok)
        head, times = (m.group(1), int(m.group(2))) if m and m.group(1) else (tok, None)
        split = next((i for i in range(1, len(head)) if head[i] in "+-" and head[i-1] not in "eE"), None)
        v = num(head[:split] if split else head); off = head[split:] if split else None
        if times is None: out.append(v)
        elif off is None: out += [v] * (times + 1)
        else:
            d = num(off)
            for _ in range(times + 1): out.append(v); v += d
    return out

def parse_script(text):
    lines = [("" if l.strip().startswith("#") else l.strip()) for l in text.split("\n")]
    cmds = []; i = 0
    while i < len(lines):
        l = lines[i]; lineno = i + 1; i += 1
        if not l: continue
        word = l.split()[0]; rest = l[len(word):].strip()
        if word == "clear": cmds.append(("clear",))
        elif word == "load":
            gap = parse_duration(rest); series = []
            while i < len(lines) and lines[i]:
                labels, vals = parse_metric(lines[i]); vals = parse_values(vals); i += 1
                series.append((labels, [(k * gap, v) for k, v in enumerate(vals) if v is not None]))
            cmds.append(("load", series))
        elif word.startswith("eval"):
            m = re.match(r"instant(?:\s+at\s+(\S+))?\s+(.*)$", rest)
            if not m:
                while i < len(lines) and lines[i]: i += 1
                continue
            at = parse_duration(m.group(1)) if m.group(1) else 0
            exp = []; scalar = None
            while i < len(lines) and lines[i]:
                d = lines[i]; i += 1
                try:
                    scalar = num(d); break
                except ValueError: pass
                labels, vals = parse_metric(d); exp.append((labels, parse_values(vals)[0]))
            cmds.append(("eval", lineno, word, at, m.group(2), exp, scalar))
    return cmds

def almost(a, b):
    if math.isnan(a) and math.isnan(b): return True
    if a == b: return True
    d = abs(a - b); mn = 2.2250738585072014e-308
    if a == 0 or b == 0 or d < mn: return d < 1e-6 * mn
    return d / (abs(a) + abs(b)) < 1e-6

def fmt_ts(ms): return "%d.%03d" % divmod(ms, 1000) if ms >= 0 else repr(ms / 1000)

def om_value(v):
    if math.isnan(v): return "NaN"
    if v == math.inf: return "+Inf"
    if v == -math.inf: return "-Inf"
    return repr(v)

def esc(v): return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def run_state(store, evals, fname, out):
    if any(v == "stale" for _, smp in store.values() for _, v in smp):
        for e in evals: out.append((fname, e[1], "SKIP", "stale markers"))
        return
    d = tempfile.mkdtemp(prefix="promoracle")
    byname = {}
    for key, (labels, smp) in store.items():
        byname.setdefault(labels.get("__name__", ""), []).append((labels, smp))
    with open(os.path.join(d, "om.txt"), "w") as f:
        for name, ss in byname.items():
            for labels, smp in ss:
                ls = ",".join('%s="%s"' % (k, esc(v)) for k, v in sorted(labels.items()) if k != "__name__")
                for t, v in smp:
                    f.write("%s{%s} %s %s\n" % (name, ls, om_value(v), fmt_ts(t)))
        f.write("# EOF\n")
    blk = os.path.join(d, "db")
    if store:
        r = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", os.path.join(d, "om.txt"), blk], capture_output=True, text=True)
        if r.returncode != 0:
            for e in evals: out.append((fname, e[1], "SKIP", "create-blocks failed: " + r.stderr[-200:]))
            return
    else:
        os.makedirs(blk)
    port = free_port()
    open(os.path.join(d, "p.yml"), "w").close()
    proc = subprocess.Popen(["prometheus", "--config.file=" + os.path.join(d, "p.yml"), "--storage.tsdb.path=" + blk,
                             "--web.listen-address=127.0.0.1:%d" % port, "--storage.tsdb.retention.time=100y"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=1); break
            except Exception: time.sleep(0.1)
        for (_, line, word, at, expr, exp, scalar) in evals:
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": expr, "time": fmt_ts(at)}))
            try:
                body = json.load(urllib.request.urlopen(url, timeout=30))
            except urllib.error.HTTPError as e:
                body = json.load(e)
            fail = word == "eval_fail"
            if body["status"] != "success":
                out.append((fname, line, "OK" if fail else "DIFF", "" if fail else "error: " + body.get("error", "")))
                continue
            if fail:
                out.append((fname, line, "DIFF", "expected an error, got success")); continue
            rt = body["data"]["resultType"]; res = body["data"]["result"]
            if scalar is not None:
                ok = rt == "scalar" and almost(scalar, num(res[1]))
                out.append((fname, line, "OK" if ok else "DIFF", "" if ok else "got %s %s" % (rt, res))); continue
            if rt != "vector":
                out.append((fname, line, "DIFF", "got " + rt)); continue
            want = {tuple(sorted(l.items())): v for l, v in exp}
            got = [(tuple(sorted(r["metric"].items())), num(r["value"][1])) for r in res]
            msg = ""
            for pos, (l, v) in enumerate(got):
                if l not in want: msg = "unexpected %s %s" % (dict(l), v); break
                if not almost(want[l], v): msg = "for %s expected %s got %r" % (dict(l), want[l], v); break
                if word == "eval_ordered" and list(want.keys()).index(l) != pos: msg = "order differs"; break
            if not msg and len(set(l for l, _ in got)) != len(want): msg = "missing: %s" % [dict(l) for l in want if l not in dict(got)]
            out.append((fname, line, "DIFF" if msg else "OK", msg))
    finally:
        proc.terminate(); proc.wait()
        shutil.rmtree(d, ignore_errors=True)

def main():
    out = []
    for path in sys.argv[1:]:
        fname = os.path.basename(path)
        store = {}; evals = []
        def flush():
            if evals: run_state(dict(store), list(evals), fname, out)
            evals.clear()
        for c in parse_script(open(path).read()):
            if c[0] == "clear": flush(); store.clear()
            elif c[0] == "load":
                flush()
                for labels, smp in c[1]:
                    key = tuple(sorted(labels.items()))
                    old = dict(store.get(key, (labels, []))[1])
                    old.update(dict(smp))
                    store[key] = (labels, sorted(old.items()))
            else: evals.append(c)
        flush()
    for f, l, st, msg in out:
        if st != "OK": print("%s:%d %s %s" % (f, l, st, msg))
    print("total %d, ok %d, diff %d, skip %d" % (len(out), sum(1 for o in out if o[2] == "OK"), sum(1 for o in out if o[2] == "DIFF"), sum(1 for o in out if o[2] == "SKIP")))

if __name__ == "__main__":
    main()
