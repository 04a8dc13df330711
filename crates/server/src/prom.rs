//! The Prometheus-compatible surface: the HTTP query API Grafana's Prometheus data source
//! speaks (`/api/v1/query`, `query_range`, `series`, `labels`, `label/<name>/values`,
//! `metadata`, `status/buildinfo`) with Prometheus' JSON and error shapes.

pub mod api;
pub mod params;
pub mod write;
