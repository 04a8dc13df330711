//! The Jaeger query API under `/jaeger/api/` in Jaeger's JSON shapes, so Grafana's Jaeger
//! data source and Jaeger-speaking tools work at `http://host:9470/jaeger`: `services`,
//! `services/<s>/operations`, `operations?service=`, `traces?...`, `traces/<id>`,
//! `dependencies`. Translates parameters ([`params`]) and renders ([`model`]); the search is
//! `sightline_query::traces`, the same as the native API's.

pub mod model;
pub mod params;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value as JsonValue;
use sightline_model::time::{now_ns, NANOS_PER_SEC};
use sightline_model::Span;
use sightline_query::traces as tq;

use crate::body::tenant;
use crate::error::ApiError;
use crate::native::traces::{blocking, measured};
use crate::state::AppState;

/// The range the service and operation lists cover. Jaeger lists every service ever seen
/// and takes no range; seven days is the default `traces.retention`, so the lists offer
/// what a default server still holds.
pub const LIST_LOOKBACK_NS: i64 = 7 * 24 * 3600 * NANOS_PER_SEC;

type Pairs = Query<Vec<(String, String)>>;

/// The routes, to be nested at `/jaeger`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/services", get(services))
        .route("/api/services/{service}/operations", get(operation_names))
        .route("/api/operations", get(operations))
        .route("/api/traces", get(search))
        .route("/api/traces/{id}", get(trace))
        .route("/api/dependencies", get(dependencies))
}

/// A handler's outcome: a Jaeger envelope, or an error in Jaeger's error envelope with the
/// status as its `code`.
fn respond(r: Result<(StatusCode, JsonValue), ApiError>) -> Response {
    match r {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => error_response(e.status(), &e.to_string()),
    }
}

fn error_response(status: StatusCode, msg: &str) -> Response {
    (status, Json(model::error_envelope(status.as_u16(), msg))).into_response()
}

fn ok(body: JsonValue) -> Result<(StatusCode, JsonValue), ApiError> {
    Ok((StatusCode::OK, body))
}

fn list_range() -> (i64, i64) {
    let now = now_ns();
    (now.saturating_sub(LIST_LOOKBACK_NS), now.saturating_add(1))
}

/// `GET /api/services`.
async fn services(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    respond(
        measured(&state, async {
            let tenant = tenant(&headers)?;
            let store = state.span_store()?;
            let (start, end) = list_range();
            let list = blocking(move || tq::services(&store, &tenant, start, end)).await?;
            ok(model::services_response(&list))
        })
        .await,
    )
}

/// `GET /api/services/<service>/operations`: operation names of any kind.
async fn operation_names(
    State(state): State<Arc<AppState>>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        measured(&state, async {
            let tenant = tenant(&headers)?;
            let store = state.span_store()?;
            let (start, end) = list_range();
            let ops =
                blocking(move || tq::operations(&store, &tenant, &service, start, end)).await?;
            ok(model::operation_names_response(&ops))
        })
        .await,
    )
}

/// `GET /api/operations?service=&spanKind=`.
async fn operations(
    State(state): State<Arc<AppState>>,
    Query(pairs): Pairs,
    headers: HeaderMap,
) -> Response {
    respond(
        measured(&state, async {
            let tenant = tenant(&headers)?;
            let service = params::first(&pairs, "service")
                .ok_or_else(|| {
                    ApiError::BadRequest("service: parameter 'service' is required".into())
                })?
                .to_string();
            let kind = params::span_kind(&pairs)?;
            let store = state.span_store()?;
            let (start, end) = list_range();
            let mut ops =
                blocking(move || tq::operations(&store, &tenant, &service, start, end)).await?;
            if let Some(k) = kind {
                ops.retain(|o| o.span_kind == k);
            }
            ok(model::operations_response(&ops))
        })
        .await,
    )
}

/// `GET /api/traces?service=&operation=&tags=&minDuration=&maxDuration=&start=&end=&limit=`
/// or `?traceID=..&traceID=..`.
async fn search(
    State(state): State<Arc<AppState>>,
    Query(pairs): Pairs,
    headers: HeaderMap,
) -> Response {
    respond(
        measured(&state, async {
            let tenant = tenant(&headers)?;
            let req = params::search(&pairs, now_ns())?;
            let store = state.span_store()?;
            let (traces, missing) = blocking(move || match req {
                params::Search::Query(q) => Ok((tq::find_traces(&store, &tenant, &q)?, Vec::new())),
                params::Search::ByIds(ids) => {
                    let mut traces: Vec<Vec<Span>> = Vec::new();
                    let mut missing = Vec::new();
                    for (text, id) in ids {
                        let spans = match id {
                            Some(id) => tq::get_trace(&store, &tenant, id)?,
                            None => Vec::new(),
                        };
                        if spans.is_empty() {
                            missing.push(text);
                        } else {
                            traces.push(spans);
                        }
                    }
                    Ok((traces, missing))
                }
            })
            .await?;
            ok(model::traces_response(&traces, &missing))
        })
        .await,
    )
}

/// `GET /api/traces/<id>`: `data` holds the one trace, or 404 `trace not found`. `start`
/// and `end` (Grafana sends them) are read for validity only: a trace is found by id over
/// all stored time.
async fn trace(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(pairs): Pairs,
    headers: HeaderMap,
) -> Response {
    respond(
        measured(&state, async {
            let tenant = tenant(&headers)?;
            let id = params::parse_trace_id(&id)?;
            for name in ["start", "end"] {
                if let Some(v) = params::first(&pairs, name) {
                    if v.parse::<i64>().is_err() {
                        return Err(ApiError::BadRequest(format!(
                            "{name}: expected an integer of Unix microseconds, got {v:?}"
                        )));
                    }
                }
            }
            let store = state.span_store()?;
            let spans = match id {
                Some(id) => blocking(move || tq::get_trace(&store, &tenant, id)).await?,
                None => Vec::new(),
            };
            if spans.is_empty() {
                return Ok((
                    StatusCode::NOT_FOUND,
                    model::error_envelope(404, "trace not found"),
                ));
            }
            ok(model::traces_response(&[spans], &[]))
        })
        .await,
    )
}

/// `GET /api/dependencies?endTs=<ms>&lookback=<ms>[&service=]`.
async fn dependencies(
    State(state): State<Arc<AppState>>,
    Query(pairs): Pairs,
    headers: HeaderMap,
) -> Response {
    respond(
        measured(&state, async {
            let tenant = tenant(&headers)?;
            let (start, end) = params::dependencies_range(&pairs, now_ns())?;
            let service = params::first(&pairs, "service").map(str::to_string);
            let store = state.span_store()?;
            let mut deps = blocking(move || tq::dependencies(&store, &tenant, start, end)).await?;
            if let Some(s) = service {
                deps.retain(|d| d.parent == s || d.child == s);
            }
            ok(model::dependencies_response(&deps))
        })
        .await,
    )
}

#[cfg(test)]
mod tests {
    use sightline_model::{
        Attributes, SpanId, SpanKind, StatusCode as SpanStatus, Tenant, TraceId, Value,
    };
    use sightline_storage::{FsyncPolicy, SamplingConfig, SpanStore, StoreConfig};

    use serde_json::json;

    use super::*;
    use crate::native::traces::trace_query;

    /// 2023-11-14T22:13:20Z.
    const T0: i64 = 1_700_000_000_000_000_000;
    const MS: i64 = 1_000_000;

    fn span(n: u8, service: &str, name: &str, method: &str, error: bool, ms: i64) -> Span {
        Span {
            trace_id: TraceId([n; 16]),
            span_id: SpanId([n; 8]),
            name: name.into(),
            kind: SpanKind::Server,
            start: T0 + i64::from(n) * 1000 * MS,
            end: T0 + i64::from(n) * 1000 * MS + ms * MS,
            status_code: if error {
                SpanStatus::Error
            } else {
                SpanStatus::Unset
            },
            service: service.into(),
            attributes: Attributes::from_pairs([(
                "http.method".to_string(),
                Value::Str(method.into()),
            )]),
            ..Span::default()
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The acceptance rule "Jaeger search results equal the native API's", checked at the
    /// function level on a real span store: the same filters written in each API's
    /// parameters select the same traces in the same order.
    #[test]
    fn jaeger_search_finds_what_the_native_search_finds() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StoreConfig::new(dir.path());
        cfg.table = "spans";
        cfg.fsync = FsyncPolicy::Never;
        let (store, _) = SpanStore::open(cfg, SamplingConfig::default()).unwrap();
        let tenant = Tenant::default_tenant();
        let mut child = span(1, "db", "SELECT", "none", false, 2);
        child.parent_span_id = Some(SpanId([1; 8]));
        child.span_id = SpanId([0x11; 8]);
        child.kind = SpanKind::Client;
        store
            .append(
                &tenant,
                vec![
                    span(1, "web", "GET /cart", "GET", true, 5),
                    child,
                    span(2, "web", "GET /cart", "GET", false, 5),
                    span(3, "web", "POST /cart", "POST", true, 5),
                    span(4, "web", "GET /cart", "GET", true, 50),
                    span(5, "api", "GET /cart", "GET", true, 5),
                    span(6, "web", "GET /cart", "GET", true, 5),
                ],
            )
            .unwrap();
        // Trace 6 starts after the searched range.
        let native_range = [("start", "1700000000"), ("end", "1700000005.999")];
        let jaeger_range = [("start", "1700000000000000"), ("end", "1700000005999000")];
        type Params<'a> = Vec<(&'a str, &'a str)>;
        // (native parameters, Jaeger parameters, trace ids expected in order)
        let cases: Vec<(Params, Params, Vec<u8>)> = vec![
            (
                vec![("service", "web")],
                vec![("service", "web")],
                vec![4, 3, 2, 1],
            ),
            (
                vec![("service", "web"), ("status", "error")],
                vec![("service", "web"), ("tags", r#"{"error":"true"}"#)],
                vec![4, 3, 1],
            ),
            (
                vec![
                    ("service", "web"),
                    ("operation", "GET /cart"),
                    ("attributes", "http.method=GET"),
                    ("status", "error"),
                    ("max_duration", "10ms"),
                ],
                vec![
                    ("service", "web"),
                    ("operation", "GET /cart"),
                    ("tags", "http.method=GET error=true"),
                    ("maxDuration", "10ms"),
                ],
                vec![1],
            ),
            (
                vec![("service", "web"), ("min_duration", "20ms")],
                vec![("service", "web"), ("minDuration", "20ms")],
                vec![4],
            ),
            (
                vec![("service", "web"), ("limit", "2")],
                vec![("service", "web"), ("limit", "2")],
                vec![4, 3],
            ),
            (vec![("service", "db")], vec![("service", "db")], vec![1]),
            (
                vec![("service", "nobody")],
                vec![("service", "nobody")],
                vec![],
            ),
        ];
        for (native, jaeger, want) in cases {
            let mut np: std::collections::HashMap<String, String> = native
                .iter()
                .chain(&native_range)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if !np.contains_key("limit") {
                np.insert("limit".into(), "100".into());
            }
            let nq = trace_query(&np).unwrap();
            let jp = pairs(&[jaeger.as_slice(), &jaeger_range].concat());
            let params::Search::Query(jq) = params::search(&jp, 0).unwrap() else {
                panic!("BUG: a search without traceID is a query");
            };
            let (rows, _) = tq::search_traces(&store, &tenant, &nq).unwrap();
            let native_ids: Vec<String> = rows.iter().map(|r| r.trace_id.to_hex()).collect();
            let traces = tq::find_traces(&store, &tenant, &jq).unwrap();
            let rendered = model::traces_response(&traces, &[]);
            let jaeger_ids: Vec<String> = rendered["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["traceID"].as_str().unwrap().to_string())
                .collect();
            let want: Vec<String> = want.iter().map(|n| TraceId([*n; 16]).to_hex()).collect();
            assert_eq!(native_ids, want, "native {native:?}");
            assert_eq!(jaeger_ids, want, "jaeger {jaeger:?}");
        }
        // Whole traces: the Jaeger search returns trace 1 with its child span.
        let jp = pairs(&[&[("service", "db")][..], &jaeger_range].concat());
        let params::Search::Query(jq) = params::search(&jp, 0).unwrap() else {
            panic!("BUG: a search without traceID is a query");
        };
        let traces = tq::find_traces(&store, &tenant, &jq).unwrap();
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].len(), 2);
        store.close().unwrap();
    }

    #[tokio::test]
    async fn routes_answer_in_jaeger_envelopes() {
        use crate::native::traces::tests::{get_json, state_with_spans};
        let dir = tempfile::tempdir().unwrap();
        let now = now_ns();
        let mut root = span(1, "web", "GET /cart", "GET", true, 5);
        root.start = now - 60 * NANOS_PER_SEC;
        root.end = root.start + 5 * MS;
        let mut child = span(1, "db", "SELECT", "none", false, 2);
        child.span_id = SpanId([0x11; 8]);
        child.parent_span_id = Some(root.span_id);
        child.kind = SpanKind::Client;
        child.start = root.start + MS;
        child.end = child.start + 2 * MS;
        let state = state_with_spans(dir.path(), vec![root, child]);
        let router = || routes().with_state(state.clone());
        let id = TraceId([1; 16]).to_hex();

        let (status, body) = get_json(router(), "/api/services").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"data": ["db", "web"], "total": 2, "limit": 0, "offset": 0, "errors": null})
        );
        let (_, body) = get_json(router(), "/api/services/web/operations").await;
        assert_eq!(body["data"], json!(["GET /cart"]));
        let (_, body) = get_json(router(), "/api/operations?service=db&spanKind=client").await;
        assert_eq!(
            body["data"],
            json!([{"name": "SELECT", "spanKind": "client"}])
        );
        let (_, body) = get_json(router(), "/api/operations?service=db&spanKind=server").await;
        assert_eq!(body["data"], json!([]));

        let (status, body) = get_json(router(), &format!("/api/traces/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"][0]["traceID"], id);
        assert_eq!(body["data"][0]["spans"].as_array().unwrap().len(), 2);
        assert_eq!(body["errors"], JsonValue::Null);

        let (status, body) = get_json(router(), "/api/traces/ff").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                   "errors": [{"code": 404, "msg": "trace not found"}]})
        );

        let (status, body) = get_json(
            router(),
            "/api/traces?service=web&tags=%7B%22error%22%3A%22true%22%7D&limit=20&lookback=1h",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"][0]["traceID"], id);

        let (_, body) = get_json(router(), &format!("/api/traces?traceID={id}&traceID=ff")).await;
        assert_eq!(body["data"][0]["traceID"], id);
        assert_eq!(
            body["errors"],
            json!([{"msg": "trace not found", "traceID": "ff"}])
        );

        for (uri, param) in [
            ("/api/traces", "service: "),
            ("/api/traces?service=web&minDuration=abc", "minDuration: "),
            ("/api/traces?service=web&tags=%7Bbad", "tags: "),
            ("/api/traces?service=web&limit=x", "limit: "),
            ("/api/traces/xyz", "traceID: "),
            ("/api/operations", "service: "),
            ("/api/dependencies?lookback=x", "lookback: "),
        ] {
            let (status, body) = get_json(router(), uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(body["data"], JsonValue::Null, "{uri}");
            assert_eq!(body["errors"][0]["code"], 400, "{uri}");
            let msg = body["errors"][0]["msg"].as_str().unwrap();
            assert!(msg.starts_with(param), "{uri}: {msg}");
        }

        let (status, body) = get_json(router(), "/api/dependencies").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["data"],
            json!([{"parent": "web", "child": "db", "callCount": 1}])
        );
        let (_, body) = get_json(router(), "/api/dependencies?service=nobody").await;
        assert_eq!(body["data"], json!([]));
    }
}
