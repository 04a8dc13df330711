//! Test harness: starts the real `sightline` binary on a temp data dir and port 0, learns
//! its ports from its log, waits for `/ready`, and prints the server's log when a test
//! fails (ripgrep's `tests/util.rs` style).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sightline"))
}

/// The repository root (for `testdata/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub struct Server {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub main: String,
    pub otlp: String,
    /// `http://127.0.0.1:<port>` of the OTLP/gRPC listener, when the test asked for one
    /// with `--otlp-grpc 127.0.0.1:0` (it is `off` otherwise).
    pub grpc: String,
    log: Arc<Mutex<String>>,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh temp data dir.
    pub fn start() -> Server {
        Self::start_with(&[], &[])
    }

    pub fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Server {
            child: None,
            dir,
            main: String::new(),
            otlp: String::new(),
            grpc: String::new(),
            log: Arc::new(Mutex::new(String::new())),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            _tmp: Some(tmp),
        };
        s.spawn();
        s.wait_ready();
        s
    }

    /// Starts the process (ports fresh each time) without waiting for readiness.
    pub fn spawn(&mut self) {
        let mut cmd = Command::new(bin());
        let wants_grpc = self.extra_args.iter().any(|a| a == "--otlp-grpc");
        cmd.arg("serve").arg("--data-dir").arg(&self.dir).args([
            "--listen",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
        ]);
        if !wants_grpc {
            cmd.args(["--otlp-grpc", "off"]);
        }
        cmd.args(&self.extra_args)
            .env("RUST_LOG", "info")
            .env_remove("SIGHTLINE_SERVER")
            .current_dir(self.dir.parent().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sightline");
        let stderr = child.stderr.take().unwrap();
        let log = self.log.clone();
        let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                for what in ["main", "otlp-http", "otlp-grpc"] {
                    let pat = format!("{what} listening on http://");
                    if let Some(i) = line.find(&pat) {
                        let addr = line[i + pat.len()..]
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_string();
                        let _ = tx.send((what.to_string(), addr));
                    }
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        self.child = Some(child);
        self.main.clear();
        self.otlp.clear();
        self.grpc.clear();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.main.is_empty() || self.otlp.is_empty() || (wants_grpc && self.grpc.is_empty()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((what, addr)) if what == "main" => self.main = format!("http://{addr}"),
                Ok((what, addr)) if what == "otlp-grpc" => self.grpc = format!("http://{addr}"),
                Ok((_, addr)) => self.otlp = format!("http://{addr}"),
                Err(_) => panic!("server did not report its listeners; log:\n{}", self.log()),
            }
        }
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let c = client();
        loop {
            if let Ok(r) = c.get(format!("{}/ready", self.main)).send() {
                if r.status().is_success() {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("server not ready within 60s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.main, path)
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("server not running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "server did not stop within 30s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn restart(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    /// Waits for the process to exit on its own (e.g. a startup error); returns status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("server not running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                // Let the log thread catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("server did not exit; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// POST NDJSON lines; panics unless accepted.
    pub fn ingest_ndjson(&self, body: &str) -> Value {
        let r = client()
            .post(self.url("/api/v1/logs/ingest"))
            .header("Content-Type", "application/x-ndjson")
            .body(body.to_string())
            .send()
            .unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        assert!(status.is_success(), "ingest failed: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    pub fn flush(&self) {
        let r = client()
            .post(self.url("/api/v1/admin/flush"))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "flush: {}", r.text().unwrap());
    }

    /// Runs a log query over `[start, end]` (Unix seconds or RFC 3339); returns the body.
    pub fn query_range(&self, q: &str, start: &str, end: &str, limit: usize) -> Value {
        let r = client()
            .get(self.url("/api/v1/logs/query"))
            .query(&[
                ("q", q),
                ("start", start),
                ("end", end),
                ("limit", &limit.to_string()),
            ])
            .send()
            .unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        assert!(status.is_success(), "query {q:?} failed: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Query over all time up to now.
    pub fn query(&self, q: &str) -> Value {
        self.query_range(q, "0", &now_secs().to_string(), 10_000)
    }

    /// The `data` rows of [`Server::query`].
    pub fn rows(&self, q: &str) -> Vec<Value> {
        self.query(q)["data"].as_array().unwrap().clone()
    }

    /// `q | stats count()` over all time.
    pub fn count(&self, q: &str) -> i64 {
        let rows = self.rows(&format!("{q} | stats count()"));
        rows[0]["count"].as_i64().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- sightline server log -----\n{}\n-----", self.log());
        }
        self.kill9();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1
}

/// Runs the CLI with `args`; returns (success, stdout, stderr).
pub fn cli(args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(args)
        .env_remove("SIGHTLINE_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sin = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        sin.write_all(data).unwrap();
    }
    drop(sin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A free TCP port on 127.0.0.1, for peers that cannot listen on port 0 and report the port
/// (bound, then released: another process could take it in between, which a test machine
/// makes unlikely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Installs the Debian package `package` when `binary` is not on `PATH` (`apt-get update`
/// first when the plain install fails); fails loudly (never skips) when it cannot.
pub fn ensure_debian_package(binary: &str, package: &str) {
    let on_path = |b: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if on_path(binary) {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .expect("apt-get must be available to install missing peers")
    };
    let mut out = install();
    if !out.status.success() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        out = install();
    }
    assert!(
        out.status.success() && on_path(binary),
        "apt-get install {package} failed (needed for `{binary}`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A peer process (Prometheus, ...) whose stdout and stderr go to a log file; killed on drop,
/// and its log printed when the test is failing.
pub struct Peer {
    pub name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

impl Peer {
    /// Spawns `cmd` with its output sent to `log_path`.
    pub fn spawn(name: &str, cmd: &mut Command, log_path: PathBuf) -> Peer {
        let log = std::fs::File::create(&log_path).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Peer {
            name: name.to_string(),
            child: Some(child),
            log_path,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until GET `url` answers 2xx; panics (with the peer's log) when the process
    /// exits or `timeout` passes first.
    pub fn wait_http_ok(&mut self, url: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let c = client();
        loop {
            if let Ok(r) = c.get(url).send() {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "{} exited with {st} before {url} was ready; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} not ready at {url} within {timeout:?}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- {} log -----\n{}\n-----", self.name, self.log());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
