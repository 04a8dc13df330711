//! Engine tests: one or more per construct, with expected values worked out by hand from
//! Prometheus 2.42's rules (lookback, staleness, offset/@, subquery alignment, matching).

use promql_parser::parser::{parse, Expr};
use sightline_model::sample::stale_nan;
use sightline_model::{Labels, Sample, TimeSeries};

use super::{Engine, InstantSample, MemQuerier, Value};

/// Labels from selector syntax: `up{job="a"}`.
fn labels(sel: &str) -> Labels {
    let Ok(Expr::VectorSelector(vs)) = parse(sel) else {
        panic!("not a selector: {sel}")
    };
    let mut pairs: Vec<(String, String)> = vs
        .matchers
        .matchers
        .iter()
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    if let Some(n) = vs.name {
        pairs.push(("__name__".into(), n));
    }
    Labels::from_pairs(pairs).unwrap()
}

/// A series with samples at `t_s` seconds.
fn series(sel: &str, points: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels(sel),
        samples: points
            .iter()
            .map(|&(t, value)| Sample {
                timestamp_ms: t * 1000,
                value,
            })
            .collect(),
    }
}

/// `n` samples every `step_s` seconds from 0: `start, start+inc, ...`.
fn ramp(sel: &str, step_s: i64, start: f64, inc: f64, n: usize) -> TimeSeries {
    let pts: Vec<(i64, f64)> = (0..n)
        .map(|i| (i as i64 * step_s, start + inc * i as f64))
        .collect();
    series(sel, &pts)
}

fn fixture() -> MemQuerier {
    MemQuerier::new(vec![
        // every 5 minutes for 50 minutes
        ramp(
            r#"http_requests{job="api",instance="0",group="production"}"#,
            300,
            0.0,
            10.0,
            11,
        ),
        ramp(
            r#"http_requests{job="api",instance="1",group="production"}"#,
            300,
            0.0,
            20.0,
            11,
        ),
        ramp(
            r#"http_requests{job="api",instance="0",group="canary"}"#,
            300,
            0.0,
            30.0,
            11,
        ),
        ramp(
            r#"http_requests{job="db",instance="0",group="production"}"#,
            300,
            0.0,
            50.0,
            11,
        ),
        ramp(
            r#"http_requests{job="db",instance="1",group="canary"}"#,
            300,
            0.0,
            70.0,
            11,
        ),
    ])
}

fn instant(q: &MemQuerier, query: &str, t_s: i64) -> Value {
    Engine::default()
        .instant_query(q, query, t_s * 1000)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// The instant vector as sorted `(labels, value)` strings.
fn vector(q: &MemQuerier, query: &str, t_s: i64) -> Vec<(String, f64)> {
    match instant(q, query, t_s) {
        Value::Vector(v) => {
            let mut out: Vec<(String, f64)> =
                v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("{query}: not a vector: {other:?}"),
    }
}

fn scalar(q: &MemQuerier, query: &str, t_s: i64) -> f64 {
    match instant(q, query, t_s) {
        Value::Scalar { v, .. } => v,
        other => panic!("{query}: not a scalar: {other:?}"),
    }
}

fn err(q: &MemQuerier, query: &str, t_s: i64) -> super::PromqlError {
    Engine::default()
        .instant_query(q, query, t_s * 1000)
        .expect_err(query)
}

fn v(l: &str, x: f64) -> (String, f64) {
    (l.to_string(), x)
}

#[test]
fn vector_selector_lookback_and_staleness() {
    let q = MemQuerier::new(vec![
        series("a", &[(0, 1.0), (60, 2.0)]),
        series("b", &[(0, 1.0), (60, stale_nan()), (120, 3.0)]),
    ]);
    assert_eq!(vector(&q, "a", 60), vec![v("a{}", 2.0)]);
    assert_eq!(vector(&q, "a", 59), vec![v("a{}", 1.0)]);
    // lookback window [t - 5m, t] is inclusive at both ends
    assert_eq!(vector(&q, "a", 360), vec![v("a{}", 2.0)]);
    assert!(vector(&q, "a", 361).is_empty());
    // a staleness marker ends the series until the next sample
    assert_eq!(vector(&q, "b", 59), vec![v("b{}", 1.0)]);
    assert!(vector(&q, "b", 60).is_empty());
    assert!(vector(&q, "b", 119).is_empty());
    assert_eq!(vector(&q, "b", 120), vec![v("b{}", 3.0)]);
    // no sample before the first
    assert!(vector(&q, "a", -1).is_empty());
    // the result carries the evaluation time, not the sample's
    let Value::Vector(s) = instant(&q, "a", 100) else {
        panic!()
    };
    assert_eq!(s[0].t_ms, 100_000);
}

#[test]
fn matchers_and_or_selectors() {
    let q = fixture();
    assert_eq!(
        vector(&q, r#"http_requests{job="db",group=~"prod.*"}"#, 0).len(),
        1
    );
    assert_eq!(vector(&q, r#"http_requests{job!="db"}"#, 0).len(), 3);
    assert_eq!(
        vector(&q, r#"{__name__="http_requests",instance!~"0"}"#, 0).len(),
        2
    );
}

#[test]
fn offset_and_at_modifiers() {
    let q = MemQuerier::new(vec![ramp("x", 60, 0.0, 1.0, 100)]);
    assert_eq!(vector(&q, "x offset 10m", 3000), vec![v("x{}", 40.0)]);
    assert_eq!(vector(&q, "x offset -10m", 600), vec![v("x{}", 20.0)]);
    assert_eq!(vector(&q, "x @ 120", 3000), vec![v("x{}", 2.0)]);
    assert_eq!(vector(&q, "x @ 600 offset 5m", 0), vec![v("x{}", 5.0)]);
    // @ start()/end() are the range query's bounds
    let r = Engine::default()
        .range_query(&q, "x @ end()", 0, 600_000, 300_000)
        .unwrap();
    let Value::Matrix(m) = r else { panic!() };
    assert_eq!(
        m[0].samples.iter().map(|s| s.value).collect::<Vec<_>>(),
        vec![10.0, 10.0, 10.0]
    );
    let r = Engine::default()
        .range_query(&q, "x @ start()", 600_000, 1_200_000, 300_000)
        .unwrap();
    let Value::Matrix(m) = r else { panic!() };
    assert_eq!(m[0].samples[2].value, 10.0);
}

#[test]
fn matrix_selector_result_and_window_bounds() {
    let q = MemQuerier::new(vec![series(
        "x",
        &[(0, 0.0), (60, 1.0), (120, stale_nan()), (180, 3.0)],
    )]);
    let Value::Matrix(m) = instant(&q, "x[2m]", 180) else {
        panic!()
    };
    // window [60, 180] inclusive, staleness marker dropped
    assert_eq!(
        m[0].samples,
        vec![
            Sample {
                timestamp_ms: 60_000,
                value: 1.0
            },
            Sample {
                timestamp_ms: 180_000,
                value: 3.0
            }
        ]
    );
    assert_eq!(m[0].labels.metric_name(), Some("x"));
    let e = Engine::default()
        .range_query(&q, "x[2m]", 0, 60_000, 10_000)
        .unwrap_err();
    assert_eq!(e.error_type(), "bad_data");
    assert!(e.to_string().contains("range vector"), "{e}");
}

#[test]
fn subqueries_align_to_their_step() {
    let q = MemQuerier::new(vec![ramp("x", 60, 0.0, 1.0, 100)]);
    // inner steps at multiples of 2m in [10m - 5m, 10m]: 6m, 8m, 10m
    let Value::Matrix(m) = instant(&q, "x[5m:2m]", 600) else {
        panic!()
    };
    let ts: Vec<i64> = m[0].samples.iter().map(|s| s.timestamp_ms / 1000).collect();
    assert_eq!(ts, vec![360, 480, 600]);
    assert_eq!(m[0].samples[0].value, 6.0);
    // default step is one minute
    assert_eq!(scalar(&q, "scalar(count_over_time(x[5m:])) ", 600), 6.0);
    assert_eq!(
        vector(&q, "max_over_time(x[10m:1m] offset 5m)", 1200),
        vec![v("{}", 15.0)]
    );
    assert_eq!(
        vector(&q, "min_over_time((x * 2)[10m:1m] @ 1200)", 0),
        vec![v("{}", 20.0)]
    );
    // nested subquery
    assert_eq!(
        vector(&q, "max_over_time(sum_over_time(x[2m:1m])[3m:1m])", 600),
        vec![v("{}", 27.0)]
    );
}

#[test]
fn aggregations_by_without() {
    let q = fixture();
    assert_eq!(
        vector(&q, "sum by (job) (http_requests)", 3000),
        vec![v("{job=\"api\"}", 600.0), v("{job=\"db\"}", 1200.0)]
    );
    assert_eq!(
        vector(&q, "sum without (instance) (http_requests)", 3000),
        vec![
            v("{group=\"canary\", job=\"api\"}", 300.0),
            v("{group=\"canary\", job=\"db\"}", 700.0),
            v("{group=\"production\", job=\"api\"}", 300.0),
            v("{group=\"production\", job=\"db\"}", 500.0),
        ]
    );
    assert_eq!(vector(&q, "avg(http_requests)", 3000), vec![v("{}", 360.0)]);
    assert_eq!(
        vector(&q, "count by (group) (http_requests)", 3000),
        vec![
            v("{group=\"canary\"}", 2.0),
            v("{group=\"production\"}", 3.0)
        ]
    );
    assert_eq!(
        vector(&q, "quantile(0.5, http_requests)", 3000),
        vec![v("{}", 300.0)]
    );
    assert_eq!(
        vector(&q, "topk(2, http_requests)", 3000),
        vec![
            v(
                "http_requests{group=\"canary\", instance=\"1\", job=\"db\"}",
                700.0
            ),
            v(
                "http_requests{group=\"production\", instance=\"0\", job=\"db\"}",
                500.0
            ),
        ]
    );
    assert_eq!(
        vector(&q, "count_values by (job) (\"v\", http_requests)", 300),
        vec![
            v("{job=\"api\", v=\"10\"}", 1.0),
            v("{job=\"api\", v=\"20\"}", 1.0),
            v("{job=\"api\", v=\"30\"}", 1.0),
            v("{job=\"db\", v=\"50\"}", 1.0),
            v("{job=\"db\", v=\"70\"}", 1.0),
        ]
    );
    // topk keeps its per-group order within the instant vector
    let Value::Vector(s) = instant(&q, "bottomk(3, http_requests)", 3000) else {
        panic!()
    };
    assert_eq!(
        s.iter().map(|x| x.v).collect::<Vec<_>>(),
        vec![100.0, 200.0, 300.0]
    );
}

#[test]
fn arithmetic_and_name_dropping() {
    let q = fixture();
    assert_eq!(
        vector(&q, r#"http_requests{job="db",instance="1"} * 2"#, 300),
        vec![v("{group=\"canary\", instance=\"1\", job=\"db\"}", 140.0)]
    );
    assert_eq!(
        vector(&q, r#"2 - http_requests{job="db",instance="1"}"#, 300),
        vec![v("{group=\"canary\", instance=\"1\", job=\"db\"}", -68.0)]
    );
    // comparisons filter and keep the name and the vector's value
    assert_eq!(
        vector(&q, r#"100 < http_requests{job="db"}"#, 3000).len(),
        2
    );
    assert_eq!(
        vector(&q, r#"http_requests{job="db"} > 600"#, 3000),
        vec![v(
            "http_requests{group=\"canary\", instance=\"1\", job=\"db\"}",
            700.0
        )]
    );
    // bool gives 0/1 and drops the name
    assert_eq!(
        vector(&q, r#"http_requests{job="db"} > bool 600"#, 3000),
        vec![
            v("{group=\"canary\", instance=\"1\", job=\"db\"}", 1.0),
            v("{group=\"production\", instance=\"0\", job=\"db\"}", 0.0),
        ]
    );
    assert_eq!(scalar(&q, "1 + 2 * 3 ^ 2", 0), 19.0);
    assert_eq!(scalar(&q, "2 ^ 3 ^ 2", 0), 512.0);
    assert_eq!(scalar(&q, "5 % 3 == bool 2", 0), 1.0);
    assert_eq!(scalar(&q, "-(1) - -2", 0), 1.0);
    assert!(scalar(&q, "0 / 0", 0).is_nan());
    assert_eq!(
        vector(&q, r#"-http_requests{job="db",instance="1"}"#, 300),
        vec![v("{group=\"canary\", instance=\"1\", job=\"db\"}", -70.0)]
    );
}

#[test]
fn vector_matching() {
    let q = MemQuerier::new(vec![
        series(r#"a{i="1",j="x"}"#, &[(0, 10.0)]),
        series(r#"a{i="2",j="x"}"#, &[(0, 20.0)]),
        series(r#"b{i="1"}"#, &[(0, 2.0)]),
        series(r#"b{i="2"}"#, &[(0, 4.0)]),
        series(r#"c{j="x",k="kk"}"#, &[(0, 3.0)]),
    ]);
    assert_eq!(
        vector(&q, "a / on(i) b", 0),
        vec![v("{i=\"1\"}", 5.0), v("{i=\"2\"}", 5.0)]
    );
    assert_eq!(
        vector(&q, "a / ignoring(j) b", 0),
        vec![v("{i=\"1\"}", 5.0), v("{i=\"2\"}", 5.0)]
    );
    assert!(vector(&q, "a / b", 0).is_empty());
    assert_eq!(
        vector(&q, "a * on(j) group_left(k) c", 0),
        vec![
            v("{i=\"1\", j=\"x\", k=\"kk\"}", 30.0),
            v("{i=\"2\", j=\"x\", k=\"kk\"}", 60.0)
        ]
    );
    assert_eq!(
        vector(&q, "c - on(j) group_right a", 0),
        vec![
            v("{i=\"1\", j=\"x\"}", -7.0),
            v("{i=\"2\", j=\"x\"}", -17.0)
        ]
    );
    let e = err(&q, "a * on(j) c", 0);
    assert_eq!(e.error_type(), "execution");
    assert_eq!(
        e.to_string(),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    let e = err(&q, "c * on(j) a", 0);
    assert!(
        e.to_string().starts_with(
            "found duplicate series for the match group {j=\"x\"} on the right hand-side of the operation"
        ),
        "{e}"
    );
    // the comparison with group_left keeps the left value
    assert_eq!(vector(&q, "a > on(j) group_left c", 0).len(), 2);
}

#[test]
fn set_operators() {
    let q = MemQuerier::new(vec![
        series(r#"a{i="1"}"#, &[(0, 1.0)]),
        series(r#"a{i="2"}"#, &[(0, 2.0)]),
        series(r#"b{i="2"}"#, &[(0, 20.0)]),
        series(r#"b{i="3"}"#, &[(0, 30.0)]),
    ]);
    assert_eq!(vector(&q, "a and b", 0), vec![v("a{i=\"2\"}", 2.0)]);
    assert_eq!(vector(&q, "a unless b", 0), vec![v("a{i=\"1\"}", 1.0)]);
    assert_eq!(
        vector(&q, "a or b", 0),
        vec![
            v("a{i=\"1\"}", 1.0),
            v("a{i=\"2\"}", 2.0),
            v("b{i=\"3\"}", 30.0)
        ]
    );
    assert_eq!(vector(&q, "a and on() b", 0).len(), 2);
    assert!(vector(&q, "a unless ignoring(i) b", 0).is_empty());
}

#[test]
fn duplicate_labelsets_are_errors() {
    let q = MemQuerier::new(vec![
        series(r#"a{i="1"}"#, &[(0, 1.0)]),
        series(r#"b{i="1"}"#, &[(0, 2.0)]),
    ]);
    let e = err(&q, r#"{__name__=~"a|b"} * 2"#, 0);
    assert_eq!(
        e.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
    assert_eq!(e.error_type(), "execution");
    assert!(err(&q, r#"-{__name__=~"a|b"}"#, 0)
        .to_string()
        .contains("same labelset"));
    assert!(err(&q, r#"abs({__name__=~"a|b"})"#, 0)
        .to_string()
        .contains("same labelset"));
    // comparisons keep the name: no collision
    assert_eq!(vector(&q, r#"{__name__=~"a|b"} > 0"#, 0).len(), 2);
}

#[test]
fn range_functions_are_called_per_window() {
    let q = MemQuerier::new(vec![ramp(r#"x{a="1"}"#, 60, 0.0, 1.0, 20)]);
    assert_eq!(
        vector(&q, "sum_over_time(x[2m])", 600),
        vec![v("{a=\"1\"}", 27.0)]
    );
    assert_eq!(
        vector(&q, "count_over_time(x[2m] offset 1m)", 600),
        vec![v("{a=\"1\"}", 3.0)]
    );
    // last_over_time keeps the metric name
    assert_eq!(
        vector(&q, "last_over_time(x[2m])", 600),
        vec![v("x{a=\"1\"}", 10.0)]
    );
    assert_eq!(
        vector(&q, "quantile_over_time(0.5, x[4m])", 600),
        vec![v("{a=\"1\"}", 8.0)]
    );
    // an empty window gives no sample
    assert!(vector(&q, "sum_over_time(x[2m])", 5000).is_empty());
    let e = err(&q, "holt_winters(x[5m], 1, 0.5)", 600);
    assert_eq!(e.error_type(), "execution");
}

#[test]
fn absent_and_absent_over_time() {
    let q = MemQuerier::new(vec![series("x", &[(0, 1.0)])]);
    assert!(vector(&q, "absent(x)", 0).is_empty());
    assert_eq!(
        vector(&q, r#"absent(nope{job="a",i=~"b",k="c",k="d"})"#, 0),
        vec![v("{job=\"a\"}", 1.0)]
    );
    assert_eq!(vector(&q, "absent(x)", 1000), vec![v("{}", 1.0)]);
    assert_eq!(
        vector(&q, r#"absent_over_time(nope{a="b"}[1m])"#, 0),
        vec![v("{a=\"b\"}", 1.0)]
    );
    assert!(vector(&q, "absent_over_time(x[1m])", 60).is_empty());
    let r = Engine::default()
        .range_query(&q, "absent_over_time(x[1m])", 0, 180_000, 60_000)
        .unwrap();
    let Value::Matrix(m) = r else { panic!() };
    assert_eq!(
        m[0].samples
            .iter()
            .map(|s| s.timestamp_ms)
            .collect::<Vec<_>>(),
        vec![120_000, 180_000]
    );
}

#[test]
fn instant_functions() {
    let q = MemQuerier::new(vec![
        series(r#"x{a="1"}"#, &[(0, -2.5)]),
        series(r#"x{a="2"}"#, &[(0, 4.0)]),
        series(r#"x{a="3"}"#, &[(0, f64::NAN)]),
    ]);
    assert_eq!(
        vector(&q, r#"abs(x{a!="3"})"#, 0),
        vec![v("{a=\"1\"}", 2.5), v("{a=\"2\"}", 4.0)]
    );
    assert_eq!(
        vector(&q, r#"clamp(x{a!="3"}, -1, 1)"#, 0),
        vec![v("{a=\"1\"}", -1.0), v("{a=\"2\"}", 1.0)]
    );
    assert!(vector(&q, "clamp(x, 2, 1)", 0).is_empty());
    assert_eq!(
        vector(&q, r#"clamp_max(x{a="2"}, 1)"#, 0),
        vec![v("{a=\"2\"}", 1.0)]
    );
    assert_eq!(
        vector(&q, r#"round(x{a="1"})"#, 0),
        vec![v("{a=\"1\"}", -2.0)]
    );
    assert_eq!(scalar(&q, r#"scalar(x{a="2"})"#, 0), 4.0);
    assert!(scalar(&q, "scalar(x)", 0).is_nan());
    assert_eq!(vector(&q, "vector(7)", 0), vec![v("{}", 7.0)]);
    assert_eq!(scalar(&q, "time()", 90), 90.0);
    assert_eq!(
        vector(&q, "timestamp(x{a=\"1\"})", 200),
        vec![v("{a=\"1\"}", 0.0)]
    );
    assert_eq!(
        vector(&q, "timestamp(-x{a=\"1\"})", 200),
        vec![v("{a=\"1\"}", 200.0)]
    );
    assert_eq!(vector(&q, "year(vector(0))", 0), vec![v("{}", 1970.0)]);
    assert_eq!(vector(&q, "hour()", 7200), vec![v("{}", 2.0)]);
    // sort / sort_desc keep the name, NaN last
    let order = |query: &str| match instant(&q, query, 0) {
        Value::Vector(s) => s.iter().map(|x| x.labels.to_string()).collect::<Vec<_>>(),
        _ => panic!(),
    };
    assert_eq!(
        order("sort(x)"),
        vec!["x{a=\"1\"}", "x{a=\"2\"}", "x{a=\"3\"}"]
    );
    assert_eq!(
        order("sort_desc(x)"),
        vec!["x{a=\"2\"}", "x{a=\"1\"}", "x{a=\"3\"}"]
    );
}

#[test]
fn label_replace_and_join() {
    let q = MemQuerier::new(vec![series(r#"x{src="a-b",other="c"}"#, &[(0, 1.0)])]);
    assert_eq!(
        vector(
            &q,
            r#"label_replace(x, "dst", "$2/$1", "src", "(.*)-(.*)")"#,
            0
        ),
        vec![v("x{dst=\"b/a\", other=\"c\", src=\"a-b\"}", 1.0)]
    );
    // no match: unchanged; empty replacement removes the label
    assert_eq!(
        vector(&q, r#"label_replace(x, "dst", "$1", "src", "z(.*)")"#, 0),
        vec![v("x{other=\"c\", src=\"a-b\"}", 1.0)]
    );
    assert_eq!(
        vector(&q, r#"label_replace(x, "other", "", "src", ".*")"#, 0),
        vec![v("x{src=\"a-b\"}", 1.0)]
    );
    assert_eq!(
        vector(&q, r#"label_join(x, "j", ",", "src", "other", "none")"#, 0),
        vec![v("x{j=\"a-b,c,\", other=\"c\", src=\"a-b\"}", 1.0)]
    );
    let e = err(&q, r#"label_replace(x, "a-b", "", "src", ".*")"#, 0);
    assert_eq!(
        e.to_string(),
        "invalid destination label name in label_replace(): a-b"
    );
    let e = err(&q, r#"label_replace(x, "d", "", "src", "(")"#, 0);
    assert_eq!(e.error_type(), "execution");
}

#[test]
fn histogram_quantile_groups_buckets() {
    let q = MemQuerier::new(vec![
        series(r#"h_bucket{le="1",job="a"}"#, &[(0, 10.0)]),
        series(r#"h_bucket{le="2",job="a"}"#, &[(0, 20.0)]),
        series(r#"h_bucket{le="+Inf",job="a"}"#, &[(0, 20.0)]),
        series(r#"h_bucket{le="x",job="b"}"#, &[(0, 20.0)]),
    ]);
    assert_eq!(
        vector(&q, "histogram_quantile(0.75, h_bucket)", 0),
        vec![v("{job=\"a\"}", 1.5)]
    );
}

#[test]
fn range_query_steps_and_sorting() {
    let q = MemQuerier::new(vec![
        series(r#"x{a="2"}"#, &[(0, 1.0), (120, stale_nan())]),
        series(r#"x{a="1"}"#, &[(60, 5.0)]),
    ]);
    let Value::Matrix(m) = Engine::default()
        .range_query(&q, "x", 0, 180_000, 60_000)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].labels.get("a"), Some("1"));
    let ts = |s: &TimeSeries| {
        s.samples
            .iter()
            .map(|p| p.timestamp_ms / 1000)
            .collect::<Vec<_>>()
    };
    assert_eq!(ts(&m[0]), vec![60, 120, 180]);
    assert_eq!(ts(&m[1]), vec![0, 60]);
    // a scalar gives one unlabelled series
    let Value::Matrix(m) = Engine::default()
        .range_query(&q, "time()", 0, 120_000, 60_000)
        .unwrap()
    else {
        panic!()
    };
    assert!(m[0].labels.is_empty());
    assert_eq!(
        m[0].samples.iter().map(|p| p.value).collect::<Vec<_>>(),
        vec![0.0, 60.0, 120.0]
    );
    let e = Engine::default()
        .range_query(&q, "x", 0, 100_000_000, 1)
        .unwrap_err();
    assert_eq!(e.error_type(), "bad_data");
    assert_eq!(
        Engine::default()
            .range_query(&q, "x", 10, 0, 1)
            .unwrap_err()
            .error_type(),
        "bad_data"
    );
}

#[test]
fn scalar_and_string_results() {
    let q = MemQuerier::new(vec![]);
    assert_eq!(
        instant(&q, "\"hello\"", 5),
        Value::String {
            t_ms: 5000,
            s: "hello".into()
        }
    );
    assert_eq!(
        instant(&q, "pi()", 5),
        Value::Scalar {
            t_ms: 5000,
            v: std::f64::consts::PI
        }
    );
    assert_eq!(
        instant(&q, "vector(1) > 2", 0),
        Value::Vector(Vec::<InstantSample>::new())
    );
}

#[test]
fn parse_errors_and_unknown_functions_are_bad_data() {
    let q = MemQuerier::new(vec![]);
    for query in ["sum(", "foo{", "sort_by_label(x)", "limitk(1, x)", "x +"] {
        let e = err(&q, query, 0);
        assert_eq!(e.error_type(), "bad_data", "{query}: {e}");
    }
}

#[test]
fn too_many_samples() {
    let q = MemQuerier::new(vec![ramp("x", 1, 0.0, 1.0, 1000)]);
    let engine = Engine {
        max_samples: 100,
        ..Engine::default()
    };
    let e = engine.instant_query(&q, "x[10m]", 999_000).unwrap_err();
    assert_eq!(e.error_type(), "execution");
    assert!(e.to_string().contains("too many samples"));
    assert!(engine.instant_query(&q, "x[50s]", 999_000).is_ok());
    let e = engine
        .instant_query(&q, "max_over_time(x[1y:1ms])", 999_000)
        .unwrap_err();
    assert!(e.to_string().contains("too many samples"));
}

/// A range query's value at each step is the instant query's value at that step.
#[test]
fn range_queries_agree_with_instant_queries_at_every_step() {
    let mut data = vec![
        ramp(r#"m{job="a",i="1"}"#, 30, 0.0, 1.0, 120),
        ramp(r#"m{job="a",i="2"}"#, 45, 100.0, -2.0, 80),
        ramp(r#"m{job="b",i="1"}"#, 60, 5.0, 0.5, 30),
        series(
            r#"g{job="a"}"#,
            &[
                (0, 1.0),
                (400, stale_nan()),
                (900, 4.0),
                (2000, f64::NAN),
                (2500, 3.0),
            ],
        ),
        series(r#"h_bucket{le="1"}"#, &[(0, 1.0), (1800, 3.0)]),
        series(r#"h_bucket{le="+Inf"}"#, &[(0, 2.0), (1800, 7.0)]),
    ];
    data.push(series(r#"g{job="b"}"#, &[(1000, 2.0)]));
    let q = MemQuerier::new(data);
    let queries = [
        "m",
        "m offset 3m",
        "m @ 1000",
        "g",
        "rate(m[5m])",
        "increase(m[2m] offset 1m)",
        "sum by (job) (rate(m[3m]))",
        "avg without (i) (m)",
        "topk(1, m)",
        "bottomk by (job) (1, m)",
        "quantile(0.3, m)",
        "count_values(\"v\", g)",
        "m / on(job) group_left sum by (job) (m)",
        "m > 20",
        "m > bool 20",
        "g or m",
        "m unless g",
        "m and on(job) g",
        "max_over_time(m[10m:1m])",
        "max_over_time(rate(m[2m])[5m:30s] offset 1m)",
        "deriv(m[5m:1m])",
        "absent(g)",
        "absent_over_time(g[2m])",
        "timestamp(g)",
        "time() - timestamp(m)",
        "scalar(g{job=\"a\"}) * m",
        "histogram_quantile(0.5, h_bucket)",
        "label_replace(m, \"x\", \"$1\", \"job\", \"(.)\")",
        "clamp(m, 10, 50)",
        "predict_linear(m[10m], 60)",
        "last_over_time(g[10m])",
        "-m",
        "changes(g[20m])",
        "sum(g @ 1000)",
        "min_over_time(m[5m] @ 1500)",
    ];
    let engine = Engine::default();
    let (start, end, step) = (0i64, 3_600_000i64, 47_000i64);
    let key = |l: &Labels| l.to_string();
    for query in queries {
        let Value::Matrix(m) = engine
            .range_query(&q, query, start, end, step)
            .unwrap_or_else(|e| panic!("{query}: {e}"))
        else {
            panic!("{query}: not a matrix")
        };
        assert!(m.windows(2).all(|w| w[0].labels < w[1].labels), "{query}");
        let mut t = start;
        while t <= end {
            let mut from_range: Vec<(String, u64)> = m
                .iter()
                .filter_map(|s| {
                    s.samples
                        .iter()
                        .find(|p| p.timestamp_ms == t)
                        .map(|p| (key(&s.labels), p.value.to_bits()))
                })
                .collect();
            let mut from_instant: Vec<(String, u64)> = match engine
                .instant_query(&q, query, t)
                .unwrap_or_else(|e| panic!("{query} at {t}: {e}"))
            {
                Value::Vector(v) => v
                    .into_iter()
                    .map(|s| (key(&s.labels), s.v.to_bits()))
                    .collect(),
                Value::Scalar { v, .. } => vec![(key(&Labels::new()), v.to_bits())],
                other => panic!("{query}: {other:?}"),
            };
            from_range.sort();
            from_instant.sort();
            assert_eq!(from_range, from_instant, "{query} at {t}");
            t += step;
        }
    }
}

#[test]
#[ignore = "writes a .test file for tests/promql/check_with_prometheus.py"]
fn dump_for_prometheus_check() {
    let Ok(path) = std::env::var("PROMQL_DUMP") else {
        return;
    };
    let load = r#"load 30s
  m{job="a",i="1"} 0+1x120
  m{job="a",i="2"} 100-2x80
  m{job="b",i="1"} 5+0.5x30
  m{job="b",i="3"} 1e300+1e300x5
  n{job="a"} 3 1 4 1 5 9 2 6 5 3 5 NaN 8 9 7 9
  h_bucket{le="0.5",job="x"} 1+1x40
  h_bucket{le="1",job="x"} 2+3x40
  h_bucket{le="+Inf",job="x"} 3+4x40
"#;
    let mut data = Vec::new();
    for line in load.lines().skip(1) {
        let line = line.trim();
        let (sel, vals) = line.split_at(line.find(' ').unwrap());
        let mut pts = Vec::new();
        let mut t = 0i64;
        for tok in vals.split_whitespace() {
            if let Some((a, rest)) = tok.split_once('x') {
                let n: i64 = rest.parse().unwrap();
                let (start, inc) = match a.rfind(['+', '-']) {
                    Some(p) if p > 0 && !a[..p].ends_with('e') => (
                        a[..p].parse::<f64>().unwrap(),
                        a[p..].parse::<f64>().unwrap(),
                    ),
                    _ => (a.parse::<f64>().unwrap(), 0.0),
                };
                for k in 0..=n {
                    pts.push((t, start + inc * k as f64));
                    t += 30;
                }
            } else {
                let v = if tok == "NaN" {
                    f64::NAN
                } else {
                    tok.parse().unwrap()
                };
                pts.push((t, v));
                t += 30;
            }
        }
        data.push(series(sel, &pts));
    }
    let q = MemQuerier::new(data);
    let queries = [
        "count_values by (job) (\"v\", n)",
        "count_values without (i) (\"v\", m)",
        "topk(2, n or m)",
        "bottomk(2, m)",
        "avg(m)",
        "stddev by (job) (m)",
        "stdvar(m)",
        "quantile by (job) (0.9, m)",
        "m * on(job) group_left(v) label_replace(n, \"v\", \"x\", \"job\", \".*\")",
        "n > on(job) group_right m",
        "m atan2 2",
        "m % 7",
        "m ^ 0.5",
        "label_join(m, \"j\", \"-\", \"job\", \"i\")",
        "max_over_time(m[5m:1m] offset 2m)",
        "max_over_time(m[5m:45s] @ 600)",
        "sum_over_time(n[3m:20s])",
        "absent(nope{job=~\"a\",x=\"y\"})",
        "histogram_quantile(0.8, h_bucket)",
        "histogram_quantile(0.8, rate(h_bucket[5m]))",
        "timestamp(m offset 1m)",
        "timestamp(sum(m))",
        "sort_desc(m)",
        "changes(n[10m])",
        "resets(n[10m])",
        "round(m, 0.3)",
        "vector(time())",
        "days_in_month(vector(1e9))",
        "m == bool on(job, i) m",
        "sum without (job) (m) / ignoring(i) group_left sum(m)",
        "count(m) by (job) > 1",
        "-n",
        "group by (job) (m)",
        "irate(m[2m])",
        "delta(n[4m])",
        "deriv(n[4m])",
        "predict_linear(n[4m] offset 1m, 100)",
        "increase(m[1m])",
        "rate(m[1m] @ 300)",
        "scalar(n) + 1",
        "avg_over_time(n[2m])",
        "quantile_over_time(0.25, n[3m])",
        "stddev_over_time(n[3m])",
        "present_over_time(n[1m])",
        "last_over_time(m[1m] @ 600)",
        "holt_winters(n[5m], 0.3, 0.6)",
        "clamp_min(m, 50)",
        "sgn(n - 4)",
        "m unless on(job) n",
        "n and ignoring(job) vector(1)",
    ];
    let mut out = String::from(load);
    for t in [60, 300, 370, 600, 1000] {
        for query in queries {
            match Engine::default().instant_query(&q, query, t * 1000) {
                Ok(Value::Vector(v)) => {
                    out.push_str(&format!("\neval instant at {t}s {query}\n"));
                    for s in v {
                        let l = super::engine::go_labels_string(&s.labels);
                        out.push_str(&format!("  {l} {:?}\n", s.v));
                    }
                }
                Ok(Value::Scalar { v, .. }) => {
                    out.push_str(&format!("\neval instant at {t}s {query}\n  {v:?}\n"));
                }
                Ok(_) => {}
                Err(_) => out.push_str(&format!("\neval_fail instant at {t}s {query}\n")),
            }
        }
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn parse_errors_carry_the_parser_message() {
    let q = MemQuerier::new(vec![]);
    assert_eq!(
        err(&q, "rate(x)", 0).to_string(),
        "parse error: expected type matrix in call to function 'rate', got vector"
    );
    assert_eq!(
        err(&q, "1 == 1", 0).to_string(),
        "parse error: comparisons between scalars must use BOOL modifier"
    );
    assert_eq!(
        err(&q, "sum(", 0).to_string(),
        "parse error: unclosed left parenthesis"
    );
}

/// Regression: promql-parser 0.11 panics on numbers of seconds out of `Duration`'s range
/// (`hd0[5555559999...]`, found by the fuzz target); the engine refuses them first.
#[test]
fn out_of_range_duration_numbers_are_parse_errors() {
    let q = MemQuerier::new(vec![]);
    for query in [
        "hd0[5555559999999999999999999999999999999999999999999999999999999999995]",
        "x[5m:1e30]",
        "x[5:1e30]",
        "x offset -1e300",
        "x[Inf]",
        "x[0x1ffffffffffffffffffff]",
    ] {
        assert_eq!(err(&q, query, 0).error_type(), "bad_data", "{query}");
    }
    assert!(Engine::default().instant_query(&q, "x[90]", 0).is_ok());
    assert!(Engine::default()
        .instant_query(
            &q,
            "label_replace(vector(1), \"a\", \"[1e99]\", \"b\", \"\")",
            0
        )
        .is_ok());
    assert!(Engine::default()
        .instant_query(&q, "a:b:c[5m:30]", 0)
        .is_ok());
}

/// A range query at full resolution over many series stays interactive (run with
/// `--release --ignored`).
#[test]
#[ignore = "timing test; run in release mode"]
fn large_range_query_is_fast() {
    let data: Vec<TimeSeries> = (0..500)
        .map(|i| {
            ramp(
                &format!(r#"m{{job="j{}",i="{i}"}}"#, i % 10),
                15,
                0.0,
                1.0 + i as f64,
                4 * 60 * 24,
            )
        })
        .collect();
    let q = MemQuerier::new(data);
    let started = std::time::Instant::now();
    let Value::Matrix(m) = Engine::default()
        .range_query(
            &q,
            "sum by (job) (rate(m[5m])) / on(job) group_left count by (job) (m)",
            0,
            86_400_000,
            8_000,
        )
        .unwrap()
    else {
        panic!()
    };
    let took = started.elapsed();
    assert_eq!(m.len(), 10);
    assert!(took.as_secs() < 60, "took {took:?}");
    eprintln!("took {took:?}");
}
