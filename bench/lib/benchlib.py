"""Helpers for bench/ scripts: HTTP senders, process stats, sizes. Python 3.11 stdlib only."""

import http.client
import os
import socket
import statistics
import threading
import time
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dir_bytes(path):
    """Apparent size (sum of st_size) of every file under path."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except FileNotFoundError:
                pass
    return total


def proc_cpu_seconds(pid):
    """utime + stime of a process (and its waited-for children), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        return sum(int(x) for x in fields[11:15]) / tck
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")


def proc_peak_rss(pid):
    """VmHWM of a process in bytes (NaN when unknown)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return float("nan")


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def http_request(port, method, path, body=None, headers=None, timeout=600):
    """One request on a fresh connection: (status, body bytes, seconds)."""
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data, time.perf_counter() - t0
    finally:
        c.close()


def wait_http(port, path, timeout, proc=None, want=200):
    """Poll until GET path answers `want`; returns seconds waited. Raises on timeout or when
    proc exits."""
    t0 = time.time()
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {path} was ready")
        try:
            st, _, _ = http_request(port, "GET", path, timeout=5)
            if st == want:
                return time.time() - t0
        except OSError:
            pass
        if time.time() - t0 > timeout:
            raise RuntimeError(f"{path} on port {port} not ready after {timeout}s")
        time.sleep(0.05)


def line_chunks(path, chunk_bytes):
    """Cut a file into (offset, length, lines) pieces of about chunk_bytes at line ends."""
    size = os.path.getsize(path)
    out = []
    with open(path, "rb") as f:
        off = 0
        while off < size:
            f.seek(off)
            data = f.read(chunk_bytes)
            if off + len(data) < size:
                cut = data.rfind(b"\n")
                if cut < 0:
                    raise ValueError(f"{path}: a line longer than {chunk_bytes} bytes at {off}")
                data = data[:cut + 1]
            out.append((off, len(data), data.count(b"\n")))
            off += len(data)
    return out


def chunks_by_lines(path, line_counts):
    """Cut a file into pieces holding the given numbers of lines: [(offset, length, lines)]."""
    import mmap
    out = []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        pos = 0
        find = mm.find
        for n in line_counts:
            start = pos
            for _ in range(n):
                nl = find(b"\n", pos)
                if nl < 0:
                    raise ValueError(f"{path}: fewer lines than expected")
                pos = nl + 1
            out.append((start, pos - start, n))
        if pos != len(mm):
            raise ValueError(f"{path}: more lines than expected")
    return out


class Sender:
    """Sends file pieces as request bodies with N concurrent connections (one thread each).

    jobs: [(url_path, file_path, offset, length, headers)]; responses are checked by
    `check(status, body) -> int` (rows accepted) which raises on failure."""

    def __init__(self, port, jobs, workers, check):
        self.port = port
        self.jobs = jobs
        self.workers = workers
        self.check = check
        self.lock = threading.Lock()
        self.next = 0
        self.rows = 0
        self.bytes = 0
        self.errors = []
        self.latencies = []

    def _worker(self):
        fds = {}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1800)
        try:
            while True:
                with self.lock:
                    if self.errors or self.next >= len(self.jobs):
                        return
                    job = self.jobs[self.next]
                    self.next += 1
                url, fpath, off, length, headers = job
                fd = fds.get(fpath)
                if fd is None:
                    fd = fds[fpath] = os.open(fpath, os.O_RDONLY)
                body = os.pread(fd, length, off)
                t0 = time.perf_counter()
                for attempt in range(2):
                    try:
                        conn.request("POST", url, body=body, headers=headers)
                        r = conn.getresponse()
                        data = r.read()
                        break
                    except (ConnectionError, http.client.HTTPException):
                        # a server may close an idle keep-alive connection; retry once
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1800)
                        if attempt:
                            raise
                dt = time.perf_counter() - t0
                try:
                    n = self.check(r.status, data)
                except Exception as e:  # noqa: BLE001 - reported to the caller
                    with self.lock:
                        self.errors.append(f"{url} {os.path.basename(fpath)}@{off}+{length}: {e}")
                    return
                with self.lock:
                    self.rows += n
                    self.bytes += length
                    self.latencies.append(dt)
        except Exception as e:  # noqa: BLE001
            with self.lock:
                self.errors.append(f"worker: {type(e).__name__}: {e}")
        finally:
            conn.close()
            for fd in fds.values():
                os.close(fd)

    def run(self):
        t0 = time.perf_counter()
        ts = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.workers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.perf_counter() - t0


def interleave(per_file_jobs):
    """Merge per-file job lists so that every file advances at the same relative pace
    (the files cover the same time span), keeping each file's order."""
    keyed = []
    for jobs in per_file_jobs:
        n = len(jobs)
        for i, j in enumerate(jobs):
            keyed.append(((i + 0.5) / n, j))
    keyed.sort(key=lambda x: x[0])
    return [j for _, j in keyed]


def qs(**params):
    return urllib.parse.urlencode(params)
