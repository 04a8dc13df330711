"""A throwaway ClickHouse 18.16 server for bench/ scripts: minimal config in a fresh work dir,
started by hand on free ports (optionally pinned with taskset), SQL over HTTP, table sizes and
a full OPTIMIZE. Python 3.11 stdlib only; needs the Debian clickhouse-server package."""

import os
import shutil
import signal
import subprocess
import time

import benchlib as bl

SERVER = "/usr/sbin/clickhouse-server"

CONFIG = """<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>{http}</http_port><tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{dir}/data/</path><tmp_path>{dir}/tmp/</tmp_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>536870912</mark_cache_size>
</yandex>
"""
USERS = """<yandex>
  <profiles><default>{settings}</default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"""


class ClickHouse:
    """One server in `workdir` (wiped on start). `cpus`: a taskset cpu list, or None.
    `settings`: profile settings {name: value} (e.g. experimental features)."""

    def __init__(self, workdir, cpus=None, settings=None):
        self.dir = workdir
        self.cpus = cpus
        self.settings = settings or {}
        self.port = None
        self.proc = None
        self.log_fh = None

    def start(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.port = bl.free_port()
        with open(os.path.join(self.dir, "config.xml"), "w") as f:
            f.write(CONFIG.format(http=self.port, tcp=bl.free_port(), dir=self.dir))
        with open(os.path.join(self.dir, "users.xml"), "w") as f:
            f.write(USERS.format(settings="".join(f"<{k}>{v}</{k}>"
                                                  for k, v in self.settings.items())))
        self.log_fh = open(os.path.join(self.dir, "server.log"), "ab")
        cmd = [SERVER, "--config-file=" + os.path.join(self.dir, "config.xml")]
        if self.cpus:
            cmd = ["taskset", "-c", self.cpus, *cmd]  # taskset execs: the pid is the server's
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=self.log_fh, stderr=self.log_fh, cwd=self.dir)
        bl.wait_http(self.port, "/ping", 120, self.proc)
        return time.perf_counter() - t0

    def sql(self, q, timeout=3600):
        """Run one statement over HTTP: (response text, seconds). Raises on an error."""
        st, body, dt = bl.http_request(self.port, "POST", "/", body=q.encode(), timeout=timeout)
        if st != 200:
            raise RuntimeError(f"ClickHouse: HTTP {st} for {q[:80]!r}: {body[:300]!r}")
        return body.decode(), dt

    def version(self):
        return self.sql("SELECT version()")[0].strip()

    def parts_bytes(self, table, database="default"):
        """(bytes on disk, active parts) of a table, from system.parts."""
        txt = self.sql("SELECT sum(bytes_on_disk), count() FROM system.parts WHERE database = "
                       f"'{database}' AND table = '{table}' AND active FORMAT TSV")[0]
        b, n = txt.split()
        return int(b), int(n)

    def optimize_final(self, table, database="default", attempts=20):
        """Merge every partition of a table into one part; returns seconds taken.

        18.16 merges a single partition per OPTIMIZE, and an OPTIMIZE that meets a running
        background merge does nothing: wait for merges, name each partition, repeat until
        every partition is one part."""
        t0 = time.perf_counter()
        for _attempt in range(attempts):
            while int(self.sql("SELECT count() FROM system.merges")[0]):
                time.sleep(0.2)
            multi = self.sql(f"SELECT partition FROM system.parts WHERE database = '{database}' "
                             f"AND table = '{table}' AND active GROUP BY partition HAVING "
                             "count() > 1 FORMAT TSV")[0].split()
            if not multi:
                break
            for part in multi:
                self.sql(f"OPTIMIZE TABLE {database}.{table} PARTITION '{part}' FINAL")
        return time.perf_counter() - t0

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log_fh.close()
        self.proc = None
