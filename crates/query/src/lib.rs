//! Sightline's log query language: `<filter> [| <pipe>]...`, e.g.
//! `service:api level:error "connection refused" | stats count() by endpoint`.
//!
//! Fed by: the query text from the HTTP API and alert rules, and a storage
//! [`LogQuerier`](sightline_storage::LogQuerier) bound to a tenant and time range. Feeds:
//! the server's log search, live tail ([`Query::matches`]) and log alert rules.
//!
//! `parser.rs` turns text into the `ast.rs` types; `hints.rs` derives the storage pruning
//! hints; `matcher.rs` evaluates filters on records; `eval.rs` drives the scan and pipes;
//! `aggregate.rs` holds `stats`/`histogram`/`top`; `render.rs` the JSON output. The
//! language is documented in `docs/query-language.md`.

mod aggregate;
pub mod ast;
pub mod error;
mod eval;
mod hints;
mod matcher;
mod parser;
mod projection;
pub mod promql;
mod render;
pub mod traces;

pub use ast::{Agg, AggFunc, CmpOp, Field, FieldName, FieldOp, Filter, Pattern, Pipe, Query, Word};
pub use error::{Error, ParseError, Result};
pub use eval::{execute, field_counts, QueryOutput};
pub use parser::parse;
pub use render::record_json;
/// The storage contracts [`execute`] runs over, re-exported for callers and test fixtures.
pub use sightline_storage::{Error as StorageError, LogQuerier, ScanRequest, ScanStats};
