//! Fuzzes the PromQL engine: any UTF-8 text either fails with an error or evaluates over a
//! small in-memory store, as an instant query and as a range query of a bounded number of
//! steps, without panicking; a range query always returns a matrix sorted by labels.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_model::sample::stale_nan;
use sightline_model::{Labels, Sample, TimeSeries};
use sightline_query::promql::{Engine, MemQuerier, Value};

fn series(pairs: &[(&str, &str)], points: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: Labels::from_pairs(pairs.iter().copied()).expect("valid fixture labels"),
        samples: points
            .iter()
            .map(|&(timestamp_ms, value)| Sample {
                timestamp_ms,
                value,
            })
            .collect(),
    }
}

fn querier() -> MemQuerier {
    let ramp: Vec<(i64, f64)> = (0..40).map(|i| (i * 15_000, i as f64 * 3.5)).collect();
    MemQuerier::new(vec![
        series(
            &[("__name__", "up"), ("job", "api"), ("instance", "a")],
            &ramp,
        ),
        series(
            &[("__name__", "up"), ("job", "db"), ("instance", "b")],
            &[
                (0, 1.0),
                (60_000, stale_nan()),
                (120_000, f64::NAN),
                (180_000, -0.0),
            ],
        ),
        series(
            &[("__name__", "req_bucket"), ("le", "0.5"), ("job", "api")],
            &[(0, 1.0), (300_000, 4.0)],
        ),
        series(
            &[("__name__", "req_bucket"), ("le", "+Inf"), ("job", "api")],
            &[(0, 2.0), (300_000, f64::INFINITY)],
        ),
        series(
            &[("__name__", "req_total"), ("job", "api")],
            &[(-60_000, f64::MAX), (0, 5.0), (600_000, 1e308)],
        ),
    ])
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let q = querier();
    // Few samples allowed, so that huge subqueries and ranges fail fast instead of
    // allocating.
    let engine = Engine {
        max_samples: 20_000,
        ..Engine::default()
    };
    let _ = engine.instant_query(&q, text, 300_000);
    let _ = engine.instant_query(&q, text, -1);
    if let Ok(v) = engine.range_query(&q, text, 0, 600_000, 30_000) {
        let Value::Matrix(m) = v else {
            panic!("range query of {text:?} gave a {}", v.type_name());
        };
        assert!(
            m.windows(2).all(|w| w[0].labels < w[1].labels),
            "range result of {text:?} not sorted by labels or has duplicate series"
        );
    }
});
