//! PromQL: Prometheus' query language evaluated over a storage
//! [`SeriesQuerier`](sightline_storage::SeriesQuerier) with Prometheus 2.42 semantics.
//!
//! Fed by: the query text (parsed by the `promql-parser` crate) and a querier bound to a
//! tenant. Feeds: the server's Prometheus HTTP API (`/api/v1/query`, `query_range`) and
//! metric alert/recording rules.
//!
//! The evaluator is our own code on purpose (the project writes its query engines itself
//! rather than embedding one), modelled on Prometheus' `promql/engine.go`: `engine.rs`
//! drives the evaluation step by step (selectors with lookback and staleness, offset and
//! `@`, subqueries, function calls), `aggregate.rs` holds the aggregation operators,
//! `binary.rs` the binary operators and vector matching, `functions.rs` the wiring of every
//! function; the per-window and per-value math lives in `range_fns.rs`, `instant_fns.rs` and
//! `quantile.rs`. `value.rs` is the result type, `mem_querier.rs` an in-memory store for
//! tests. Deviations from Prometheus are listed in `docs/promql-compatibility.md`.

mod aggregate;
mod binary;
pub mod engine;
pub mod error;
mod functions;
pub mod instant_fns;
pub mod mem_querier;
pub mod quantile;
pub mod range_fns;
pub mod selector;
#[cfg(test)]
mod tests;
pub mod value;

pub use engine::Engine;
pub use error::PromqlError;
pub use mem_querier::MemQuerier;
pub use selector::selector_matchers;
pub use value::{InstantSample, Value};
