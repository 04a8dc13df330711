//! The parsed form of a log query: a boolean filter over records and a chain of pipes
//! turning the matching records into rows.

use regex::Regex;

/// A parsed query: `<filter> [| <pipe>]...`.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub filter: Filter,
    pub pipes: Vec<Pipe>,
}

/// A boolean condition on one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `*` or the empty query.
    All,
    /// A bare word (`timeout`, `time*`, `/api/users`): matches the message's tokens.
    Word(Word),
    /// A quoted phrase: case-insensitive substring of the message.
    Phrase(String),
    /// `field:<op>`.
    Field {
        field: Field,
        op: FieldOp,
    },
    Not(Box<Filter>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

/// A bare word matched against the tokens of a text (see `matcher.rs` for the rules).
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    /// The word as written, without the trailing `*` of a prefix.
    pub text: String,
    /// Written with a trailing `*`: its last token matches as a prefix.
    pub prefix: bool,
    /// The tokens of `text` (lowercased, not length-capped), computed once.
    pub tokens: Vec<String>,
}

impl Word {
    pub fn new(text: &str, prefix: bool) -> Self {
        Self {
            text: text.to_string(),
            prefix,
            tokens: crate::matcher::all_tokens(text),
        }
    }
}

/// The field a condition, aggregate or projection names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Timestamp,
    Level,
    Service,
    /// `message`, `msg` or `body`.
    Message,
    TraceId,
    SpanId,
    /// Any other name: a record attribute, else a resource attribute.
    Attr(String),
}

impl Field {
    /// The field a name refers to.
    pub fn from_name(name: &str) -> Self {
        match name {
            "timestamp" => Self::Timestamp,
            "level" => Self::Level,
            "service" => Self::Service,
            "message" | "msg" | "body" => Self::Message,
            "trace_id" => Self::TraceId,
            "span_id" => Self::SpanId,
            other => Self::Attr(other.to_string()),
        }
    }
}

/// What `field:` is followed by.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldOp {
    /// `field:*`: the field is present (non-empty for message and service).
    Exists,
    /// `field:value` or `field:"value"`: equality of the text form (level by meaning).
    /// The parser turns `message:` equality and prefixes into [`Filter::Word`] and
    /// [`Filter::Phrase`].
    Eq { value: String, quoted: bool },
    /// `field:val*`: the text form starts with `val`.
    Prefix(String),
    /// `field:>N` and friends (for `level`, `N` may be a level name).
    Cmp(CmpOp, f64),
    /// `field:~"regex"`: unanchored search in the text form.
    Regex(Pattern),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
}

impl CmpOp {
    /// Applies the operator; false whenever either side is NaN.
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Self::Gt => a > b,
            Self::Ge => a >= b,
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Eq => a == b,
        }
    }
}

/// A compiled regex that compares by its source text (so queries can be compared in tests).
#[derive(Clone, Debug)]
pub struct Pattern(pub Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// One stage after a `|`.
#[derive(Clone, Debug, PartialEq)]
pub enum Pipe {
    /// `stats <agg>, ... [by <field>, ...]`.
    Stats { aggs: Vec<Agg>, by: Vec<FieldName> },
    /// `histogram <duration>`: counts per bucket of `step_ns`.
    Histogram { step_ns: i64 },
    /// `top <n> <field>`.
    Top { n: usize, field: FieldName },
    /// `fields a, b, ...`.
    Fields(Vec<FieldName>),
    /// `limit <n>`.
    Limit(usize),
}

/// A field as written (the output key) and what it refers to.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldName {
    pub name: String,
    pub field: Field,
}

impl FieldName {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            field: Field::from_name(name),
        }
    }
}

/// One aggregate of `stats`.
#[derive(Clone, Debug, PartialEq)]
pub struct Agg {
    pub func: AggFunc,
    /// The field, `None` only for `count()`.
    pub field: Option<FieldName>,
    /// The output column: `as` name, else `count` for `count()`, else as written, e.g.
    /// `p95(duration_ms)`.
    pub name: String,
}

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AggFunc {
    /// `count()` counts records; `count(f)` those having `f`.
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    /// `pNN`: the NN-th percentile (0 to 100), nearest rank.
    Percentile(f64),
}

impl Query {
    /// Whether the query has pipes (its output is rows, not records).
    pub fn has_pipes(&self) -> bool {
        !self.pipes.is_empty()
    }
}
