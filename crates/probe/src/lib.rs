//! Sightline's collectors: host metrics with node_exporter's names (`host.rs`) and the
//! Prometheus-style scrape manager (`scrape_config.rs` the YAML shape, `relabel.rs`
//! relabelling, `scrape.rs` the loops, targets and staleness).
//!
//! Fed by: `/proc`, scrape targets over HTTP. Feeds: the server's metric ingest through a
//! [`scrape::SampleSink`]. Decoding of scraped bodies is `sightline-wire`'s.

pub mod host;
pub mod relabel;
pub mod scrape;
pub mod scrape_config;
