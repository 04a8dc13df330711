//! Spans and SIGKILL: a writer streams OTLP/HTTP protobuf trace batches (one trace per batch)
//! while the server is killed at random moments; after every restart each acknowledged span
//! is present exactly once and every batch is all or nothing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::traces::{hex, now_ns, otlp_body, proto_span, trace_spans};
use crate::util::Server;

/// Spans a batch: big enough that a kill often lands mid-request, small enough for many
/// batches a second on two cores.
const SPANS: u64 = 40;
const ROUNDS: usize = 5;

/// A small deterministic generator, seeded from the clock and printed, so a failing run can
/// be replayed with `CRASH_SEED=<n>`.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The trace id of batch `b`: a per-run prefix (from the seed) and the batch number.
fn trace_of(seed: u64, b: u64) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&(seed | 1 << 63).to_be_bytes());
    t[8..].copy_from_slice(&b.to_be_bytes());
    t
}

/// Batch `b`: one trace, a root and `SPANS - 1` children, span ids `b * 1000 + i + 1`.
fn batch(seed: u64, b: u64) -> Vec<u8> {
    let trace = trace_of(seed, b);
    let now = now_ns();
    let spans = (0..SPANS)
        .map(|i| {
            let parent = (i > 0).then_some(b * 1000 + 1);
            let name = format!("op-{}", i % 4);
            proto_span(
                trace,
                b * 1000 + i + 1,
                parent,
                &name,
                now - 5_000_000,
                now - i,
                i == 3,
            )
        })
        .collect();
    otlp_body("crash-svc", spans)
}

/// The span ids stored for batch `b` (empty when the trace is unknown); panics on
/// duplicates or foreign spans.
fn stored(s: &Server, seed: u64, b: u64) -> usize {
    let id = hex(&trace_of(seed, b));
    let spans = trace_spans(s, &id);
    let ids: BTreeSet<u64> = spans
        .iter()
        .map(|sp| u64::from_str_radix(sp["span_id"].as_str().unwrap(), 16).unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        spans.len(),
        "batch {b}: a span stored twice: {spans:?}"
    );
    for i in &ids {
        assert!(
            (b * 1000 + 1..=b * 1000 + SPANS).contains(i),
            "batch {b}: foreign span {i:x}"
        );
    }
    spans.len()
}

#[test]
fn sigkill_while_writing_spans_loses_no_acknowledged_span() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ns() | 1);
    eprintln!("trace crash test seed: CRASH_SEED={seed}");
    let mut rng = XorShift(seed);
    // Flush often so kills also land during flushes and merges, not only in the WAL path.
    let mut s = Server::start_with(
        &[],
        &[
            ("SIGHTLINE_STORAGE_FLUSH_INTERVAL", "150ms"),
            ("SIGHTLINE_STORAGE_MAX_PARTS_PER_PARTITION", "3"),
            ("SIGHTLINE_METRICS_HOST_INTERVAL", "off"),
        ],
    );
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut attempted: BTreeSet<u64> = BTreeSet::new();
    let mut next = 0u64;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("{}/v1/traces", s.otlp);
        let stop2 = stop.clone();
        let first = next;
        let writer = std::thread::spawn(move || {
            let c = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let (mut ok, mut b) = (Vec::new(), first);
            while !stop2.load(Ordering::Relaxed) {
                let r = c
                    .post(&url)
                    .header("Content-Type", "application/x-protobuf")
                    .body(batch(seed, b))
                    .send();
                match r {
                    Ok(r) if r.status().is_success() => ok.push(b),
                    Ok(r) => panic!("batch {b} rejected: {}", r.text().unwrap_or_default()),
                    Err(_) => break, // the server is gone: this batch's fate is unknown
                }
                b += 1;
            }
            (ok, b)
        });
        std::thread::sleep(Duration::from_millis(200 + rng.next() % 1300));
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        let (ok, last) = writer.join().unwrap();
        acked.extend(ok);
        attempted.extend(first..=last);
        next = last + 1;
        eprintln!("round {round}: {} batches acknowledged so far", acked.len());
        s.restart();
        // Check after every restart: a later crash must not undo an earlier recovery.
        for &b in &attempted {
            let n = stored(&s, seed, b);
            if acked.contains(&b) {
                assert_eq!(
                    n, SPANS as usize,
                    "acknowledged batch {b} must be whole after round {round}"
                );
            } else {
                assert!(
                    n == 0 || n == SPANS as usize,
                    "batch {b} is partial: {n} spans"
                );
            }
        }
    }
    assert!(
        acked.len() >= ROUNDS,
        "the writer got too few batches in: {}",
        acked.len()
    );
    // Still accepting spans after all that.
    let b = next + 1;
    let (st, text) = crate::traces::post(
        &format!("{}/v1/traces", s.otlp),
        "application/x-protobuf",
        batch(seed, b),
    );
    assert_eq!(st, 200, "{text}");
    assert_eq!(stored(&s, seed, b), SPANS as usize);
}
