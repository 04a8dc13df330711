//! Sightline's server: configuration, the HTTP surfaces (one module per API: `native/`,
//! `otlp/`), the ingest pipeline and the wiring of storage and query.
//!
//! Fed by: the `sightline serve` command (a validated [`config::Config`]).
//! Feeds: clients over HTTP. Decoding lives in `sightline-wire`, query evaluation in
//! `sightline-query`, durability in `sightline-storage`; this crate only translates and wires.

pub mod body;
pub mod config;
pub mod error;
pub mod jaeger;
pub mod metrics;
pub mod native;
pub mod otlp;
pub mod pipeline;
pub mod prom;
pub mod spanmetrics;
pub mod state;
pub mod zipkin;

mod collectors;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use sightline_storage::event_store::EventStore;
use sightline_storage::LogStore;
use sightline_storage::{SpanStore, Tsdb};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::state::AppState;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot open storage in {dir}: {source}")]
    Storage {
        dir: String,
        source: sightline_storage::Error,
    },
    #[error("invalid scrape configuration {0}")]
    ScrapeConfig(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// The main listener's routes.
pub fn main_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/logs", post(otlp::http::logs))
        .route("/v1/metrics", post(otlp::http::metrics))
        .route("/api/v1/logs/ingest", post(native::logs::ingest))
        .route(
            "/api/v1/logs/query",
            get(native::logs::query).post(native::logs::query),
        )
        .route("/api/v1/logs/tail", get(native::logs::tail))
        .route("/api/v1/logs/fields", get(native::logs::fields))
        .route("/api/v1/admin/flush", post(native::admin::flush))
        .route("/api/v1/write", post(prom::write::remote_write))
        .route(
            "/api/v1/import/prometheus",
            post(prom::write::import_prometheus),
        )
        .route(
            "/api/v1/import/openmetrics",
            post(prom::write::import_openmetrics),
        )
        .route(
            "/api/v1/query",
            get(prom::api::query).post(prom::api::query),
        )
        .route(
            "/api/v1/query_range",
            get(prom::api::query_range).post(prom::api::query_range),
        )
        .route(
            "/api/v1/series",
            get(prom::api::series).post(prom::api::series),
        )
        .route(
            "/api/v1/labels",
            get(prom::api::labels).post(prom::api::labels),
        )
        .route("/api/v1/label/{name}/values", get(prom::api::label_values))
        .route("/api/v1/metadata", get(prom::api::metadata))
        .route("/api/v1/status/buildinfo", get(prom::api::buildinfo))
        .route("/v1/traces", post(otlp::http::traces))
        .route("/api/v2/spans", post(zipkin::spans))
        .merge(native::traces::routes())
        .nest("/jaeger", jaeger::routes())
        .fallback(not_found)
        // Bodies are read with our own limit (413 with a message, gzip-aware); axum's
        // default 2 MB cap would answer first with a bare text.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// The OTLP/HTTP listener's routes: the OTLP paths and the probes.
pub fn otlp_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/logs", post(otlp::http::logs))
        .route("/v1/metrics", post(otlp::http::metrics))
        .route("/v1/traces", post(otlp::http::traces))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": format!("no such path {}", uri.path())})),
    )
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: replaying the write-ahead log\n",
        )
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let stats = state.store().ok().map(|s| s.stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(stats),
    )
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, ServeError> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, what, source })?;
    // Tests and scripts read this line to learn the port when they pass port 0.
    info!("{what} listening on http://{}", l.local_addr()?);
    Ok(l)
}

/// Runs the server until `shutdown` resolves, then drains connections and flushes storage.
///
/// Listeners are bound first so `/health` and `/ready` answer during the WAL replay; the
/// replay runs on a blocking thread and the store is installed when it is done.
///
/// # Errors
/// A listener that cannot bind, or storage that cannot be opened (corruption names the file
/// and offset).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = Arc::new(AppState::new(config.clone(), stop_rx.clone()));

    let mut servers = Vec::new();
    if let Some(addr) = config.listen {
        servers.push((bind(addr, "main").await?, main_router(state.clone())));
    }
    if let Some(addr) = config.otlp_http {
        servers.push((bind(addr, "otlp-http").await?, otlp_router(state.clone())));
    }
    let grpc_listener = match config.otlp_grpc {
        Some(addr) => Some(bind(addr, "otlp-grpc").await?),
        None => None,
    };

    let mut tasks = Vec::new();
    for (listener, router) in servers {
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        }));
    }
    if let Some(listener) = grpc_listener {
        let mut rx = stop_rx.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        tasks.push(tokio::spawn(otlp::grpc::serve(
            listener,
            state.clone(),
            shutdown,
        )));
    }

    let scrape_cfg = match &config.scrape_config_file {
        Some(p) => Some(sightline_probe::scrape_config::load(p).map_err(ServeError::ScrapeConfig)?),
        None => None,
    };

    let store_cfg = config.store_config();
    let tsdb_cfg = config.tsdb_config();
    let span_cfg = config.span_store_config();
    let sampling = config.sampling.clone();
    let dir = config.data_dir.display().to_string();
    let opened = tokio::task::spawn_blocking(move || {
        let (store, report) = EventStore::open(store_cfg)?;
        let (tsdb, treport) = match Tsdb::open(tsdb_cfg) {
            Ok(t) => t,
            Err(e) => {
                let _ = store.close();
                return Err(e);
            }
        };
        match SpanStore::open(span_cfg, sampling) {
            Ok((spans, sreport)) => Ok((store, report, tsdb, treport, spans, sreport)),
            Err(e) => {
                let _ = store.close();
                let _ = tsdb.close();
                Err(e)
            }
        }
    });
    tokio::pin!(shutdown);
    let stores = tokio::select! {
        r = opened => match r.map_err(std::io::Error::other)? {
            Ok((store, report, tsdb, treport, spans, sreport)) => {
                info!(batches = report.batches, records = report.records, truncated = ?report.truncated, "wal replay done");
                info!(blocks = treport.blocks, samples = treport.wal.records + treport.checkpoint_samples, "metrics wal replay done");
                info!(batches = sreport.batches, spans = sreport.records, truncated = ?sreport.truncated, "traces wal replay done");
                state.set_store(store.clone());
                state.set_metric_store(tsdb.clone());
                state.set_span_store(spans.clone());
                info!("ready");
                Some((store, tsdb, spans))
            }
            Err(source) => {
                let _ = stop_tx.send(true);
                return Err(ServeError::Storage { dir, source });
            }
        },
        () = &mut shutdown => None,
    };
    let collectors = stores
        .as_ref()
        .map(|(_, tsdb, _)| collectors::start(&state, tsdb.clone(), scrape_cfg));
    if stores.is_some() {
        shutdown.await;
    }
    info!("shutting down: draining connections");
    let _ = stop_tx.send(true);
    if let Some(c) = collectors {
        c.stop().await;
    }
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "listener stopped with an error"),
            Err(e) => error!(error = %e, "listener task failed"),
        }
    }
    if let Some((store, tsdb, spans)) = stores {
        info!("flushing storage");
        let dir2 = dir.clone();
        tokio::task::spawn_blocking(move || tsdb.close())
            .await
            .map_err(std::io::Error::other)?
            .map_err(|source| ServeError::Storage { dir: dir2, source })?;
        let dir3 = dir.clone();
        tokio::task::spawn_blocking(move || spans.close())
            .await
            .map_err(std::io::Error::other)?
            .map_err(|source| ServeError::Storage { dir: dir3, source })?;
        tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(std::io::Error::other)?
            .map_err(|source| ServeError::Storage { dir, source })?;
    }
    info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot install SIGTERM handler");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    info!("signal received");
}
