//! Errors of the wire crate: a request body that cannot be decoded. Every message names
//! the line, field or record position so the sender can find the problem.

/// Why a body was rejected. The whole batch is rejected with it: decoders never return a
/// partial result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A line that is not JSON (NDJSON). `reason` is serde_json's message with the column.
    #[error("line {line}: invalid JSON: {reason}")]
    InvalidJson { line: usize, reason: String },
    /// A line that is not UTF-8; `byte` is the offset of the first bad byte in the line.
    #[error("line {line}: invalid UTF-8 at byte {byte}")]
    InvalidUtf8 { line: usize, byte: usize },
    /// A line that is valid JSON but not usable as a record (not an object).
    #[error("line {line}: {reason}")]
    InvalidLine { line: usize, reason: String },
    /// A well-known field with a value that cannot be used (timestamp, trace id...).
    #[error("line {line}: field {field:?}: {reason}")]
    InvalidField {
        line: usize,
        field: String,
        reason: String,
    },
    /// An OTLP/protobuf body that prost rejected or that breaks an OTLP rule.
    #[error("cannot decode OTLP protobuf: {0}")]
    OtlpProtobuf(String),
    /// An OTLP/JSON body that serde rejected or that breaks an OTLP rule.
    #[error("cannot decode OTLP JSON: {0}")]
    OtlpJson(String),
    /// A line format name that is not known.
    #[error("unknown format {0:?} (expected one of json, logfmt, nginx, apache, syslog, regex)")]
    UnknownFormat(String),
    /// `regex` was asked for without a pattern.
    #[error("format regex needs a pattern")]
    MissingPattern,
    /// A pattern the regex crate rejected.
    #[error("invalid pattern: {0}")]
    InvalidPattern(String),
    /// A pattern with no `(?P<name>...)` group, which could extract nothing.
    #[error("pattern has no named groups")]
    NoNamedGroups,
    /// A Prometheus remote-write body that cannot be decompressed or decoded, or a series
    /// that breaks a naming rule (named by its 0-based index in the request and label).
    #[error("cannot decode remote write request: {0}")]
    RemoteWrite(String),
    /// A Prometheus text or OpenMetrics line that cannot be parsed; `column` is the 1-based
    /// byte position in the line.
    #[error("line {line}, column {column}: {reason}")]
    Exposition {
        line: usize,
        column: usize,
        reason: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
