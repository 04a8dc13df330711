//! The log query parser: a hand-written recursive-descent parser over characters, so that
//! every error names the exact character offset where the query went wrong (a generated
//! or combinator parser would need the same position bookkeeping and adds a dependency).
//!
//! The grammar is documented in `docs/query-language.md`.

use regex::Regex;
use sightline_model::Level;

use crate::ast::{
    Agg, AggFunc, CmpOp, Field, FieldName, FieldOp, Filter, Pattern, Pipe, Query, Word,
};
use crate::error::ParseError;

/// Deepest nesting of parentheses and negations accepted. Real queries nest a handful of
/// levels; the cap keeps the recursive parser and evaluator far from the stack limit on
/// hostile input (a fuzzer easily produces thousands of `(`).
const MAX_DEPTH: usize = 64;

/// Parses a log query.
///
/// # Errors
/// A [`ParseError`] with the 0-based character offset of the problem.
pub fn parse(q: &str) -> Result<Query, ParseError> {
    let mut p = Parser {
        chars: q.chars().collect(),
        pos: 0,
        depth: 0,
    };
    let filter = p.parse_or()?.unwrap_or(Filter::All);
    p.skip_ws();
    match p.peek() {
        None | Some('|') => {}
        Some(c) => return Err(p.err(format!("unexpected \"{c}\""))),
    }
    let mut pipes: Vec<Pipe> = Vec::new();
    while p.peek() == Some('|') {
        p.pos += 1;
        p.skip_ws();
        let name_pos = p.pos;
        let pipe = p.parse_pipe()?;
        if is_aggregation(&pipe) {
            if let Some(prev) = pipes
                .iter()
                .find(|x| is_aggregation(x) || matches!(x, Pipe::Fields(_)))
            {
                return Err(ParseError::new(
                    name_pos,
                    format!(
                        "\"{}\" cannot follow \"{}\"",
                        pipe_name(&pipe),
                        pipe_name(prev)
                    ),
                ));
            }
        }
        pipes.push(pipe);
        p.skip_ws();
        match p.peek() {
            None | Some('|') => {}
            Some(c) => return Err(p.err(format!("unexpected \"{c}\""))),
        }
    }
    Ok(Query { filter, pipes })
}

fn is_aggregation(p: &Pipe) -> bool {
    matches!(
        p,
        Pipe::Stats { .. } | Pipe::Histogram { .. } | Pipe::Top { .. }
    )
}

fn pipe_name(p: &Pipe) -> &'static str {
    match p {
        Pipe::Stats { .. } => "stats",
        Pipe::Histogram { .. } => "histogram",
        Pipe::Top { .. } => "top",
        Pipe::Fields(_) => "fields",
        Pipe::Limit(_) => "limit",
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

/// Characters that end a bare word or value.
fn is_delim(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '|' | '"')
}

/// Characters that end a name inside a pipe.
fn is_pipe_delim(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '|' | '"' | ',')
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, i: usize) -> Option<char> {
        self.chars.get(self.pos + i).copied()
    }

    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.pos, message)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Whether the keyword `kw` (upper case, standing alone) starts here.
    fn at_keyword(&self, kw: &str) -> bool {
        let n = kw.chars().count();
        kw.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
            && self.peek_at(n).is_none_or(is_delim)
    }

    /// Whether nothing that could start a term is here.
    fn at_term_end(&self) -> bool {
        matches!(self.peek(), None | Some('|') | Some(')'))
            || self.at_keyword("OR")
            || self.at_keyword("AND")
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// `or := and ("OR" and)*`; `None` when there is no term at all.
    fn parse_or(&mut self) -> Result<Option<Filter>, ParseError> {
        let first = self.parse_and()?;
        let mut alts = Vec::new();
        loop {
            self.skip_ws();
            if !self.at_keyword("OR") {
                break;
            }
            if first.is_none() {
                return Err(self.err("expected term before \"OR\""));
            }
            self.pos += 2;
            self.skip_ws();
            match self.parse_and()? {
                Some(f) => alts.push(f),
                None => return Err(self.err("expected term after \"OR\"")),
            }
        }
        Ok(match first {
            None => None,
            Some(f) if alts.is_empty() => Some(f),
            Some(f) => {
                alts.insert(0, f);
                Some(Filter::Or(alts))
            }
        })
    }

    /// `and := unary (["AND"] unary)*`.
    fn parse_and(&mut self) -> Result<Option<Filter>, ParseError> {
        let mut terms = Vec::new();
        loop {
            self.skip_ws();
            if self.at_keyword("AND") {
                if terms.is_empty() {
                    return Err(self.err("expected term before \"AND\""));
                }
                self.pos += 3;
                self.skip_ws();
                if self.at_term_end() {
                    return Err(self.err("expected term after \"AND\""));
                }
                continue;
            }
            if self.at_term_end() {
                break;
            }
            terms.push(self.parse_unary()?);
        }
        Ok(match terms.len() {
            0 => None,
            1 => terms.pop(),
            _ => Some(Filter::And(terms)),
        })
    }

    /// `unary := ("NOT" | "-") unary | primary`.
    fn parse_unary(&mut self) -> Result<Filter, ParseError> {
        self.skip_ws();
        if self.at_keyword("NOT") {
            self.pos += 3;
            self.skip_ws();
            if self.at_term_end() {
                return Err(self.err("expected term after \"NOT\""));
            }
            return self.negate();
        }
        if self.peek() == Some('-')
            && self
                .peek_at(1)
                .is_some_and(|c| !c.is_whitespace() && c != ')' && c != '|')
        {
            self.pos += 1;
            return self.negate();
        }
        self.parse_primary()
    }

    fn negate(&mut self) -> Result<Filter, ParseError> {
        self.enter()?;
        let inner = self.parse_unary()?;
        self.depth -= 1;
        Ok(Filter::Not(Box::new(inner)))
    }

    /// `primary := "(" or ")" | phrase | field ":" value | word`.
    fn parse_primary(&mut self) -> Result<Filter, ParseError> {
        match self.peek() {
            Some('(') => {
                let open = self.pos;
                self.enter()?;
                self.pos += 1;
                let inner = self.parse_or()?;
                self.skip_ws();
                if self.peek() != Some(')') {
                    return Err(match inner {
                        None => self.err("expected term after \"(\""),
                        Some(_) => ParseError::new(
                            self.pos,
                            format!("expected \")\" to close \"(\" at position {open}"),
                        ),
                    });
                }
                let Some(inner) = inner else {
                    return Err(self.err("expected term after \"(\""));
                };
                self.pos += 1;
                self.depth -= 1;
                Ok(inner)
            }
            Some('"') => Ok(Filter::Phrase(self.quoted(false)?)),
            _ => {
                let start = self.pos;
                let run = self.bare_run(is_delim);
                if let Some(colon) = run.find(':').filter(|&i| i > 0) {
                    let name = &run[..colon];
                    // Back up to just after the colon: the value has its own lexing.
                    self.pos = start + name.chars().count() + 1;
                    let field = Field::from_name(name);
                    let op = self.field_value(&field)?;
                    return Ok(match (field, op) {
                        (
                            Field::Message,
                            FieldOp::Eq {
                                value,
                                quoted: true,
                            },
                        ) => Filter::Phrase(value),
                        (
                            Field::Message,
                            FieldOp::Eq {
                                value,
                                quoted: false,
                            },
                        ) => Filter::Word(Word::new(&value, false)),
                        (Field::Message, FieldOp::Prefix(p)) => Filter::Word(Word::new(&p, true)),
                        (field, op) => Filter::Field { field, op },
                    });
                }
                if run == "*" {
                    return Ok(Filter::All);
                }
                Ok(Filter::Word(match run.strip_suffix('*') {
                    Some(p) => Word::new(p, true),
                    None => Word::new(&run, false),
                }))
            }
        }
    }

    /// Reads characters up to a delimiter.
    fn bare_run(&mut self, delim: fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|&c| !delim(c)) {
            s.push(c);
            self.pos += 1;
        }
        s
    }

    /// A `"quoted string"` starting here. `\"` is a quote; otherwise in regex mode a
    /// backslash is kept with the character after it (`\d` stays `\d`), else `\\` is a
    /// backslash and other escapes are kept as written.
    fn quoted(&mut self, regex: bool) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(ParseError::new(open, "unclosed quote")),
                Some('"') => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some('\\') => {
                    let Some(next) = self.peek_at(1) else {
                        return Err(ParseError::new(open, "unclosed quote"));
                    };
                    match next {
                        '"' => s.push('"'),
                        '\\' if !regex => s.push('\\'),
                        c => {
                            s.push('\\');
                            s.push(c);
                        }
                    }
                    self.pos += 2;
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// What follows `field:`.
    fn field_value(&mut self, field: &Field) -> Result<FieldOp, ParseError> {
        match self.peek() {
            None => Err(self.err("expected value after \":\"")),
            Some(c) if c.is_whitespace() || matches!(c, '(' | ')' | '|') => {
                Err(self.err("expected value after \":\""))
            }
            Some('~') => {
                self.pos += 1;
                let at = self.pos;
                let src = if self.peek() == Some('"') {
                    self.quoted(true)?
                } else {
                    self.bare_run(is_delim)
                };
                if src.is_empty() && self.pos == at {
                    return Err(self.err("expected regex after \"~\""));
                }
                Regex::new(&src)
                    .map(|r| FieldOp::Regex(Pattern(r)))
                    .map_err(|e| {
                        ParseError::new(at, format!("invalid regex: {}", regex_reason(&e)))
                    })
            }
            Some('>' | '<' | '=') => {
                let (op, text) = match (self.peek(), self.peek_at(1)) {
                    (Some('>'), Some('=')) => (CmpOp::Ge, ">="),
                    (Some('<'), Some('=')) => (CmpOp::Le, "<="),
                    (Some('>'), _) => (CmpOp::Gt, ">"),
                    (Some('<'), _) => (CmpOp::Lt, "<"),
                    _ => (CmpOp::Eq, "="),
                };
                self.pos += text.len();
                let at = self.pos;
                let run = self.bare_run(is_delim);
                if run.is_empty() {
                    return Err(self.err(format!("expected number after \"{text}\"")));
                }
                let n = match field {
                    Field::Level => Level::parse(&run)
                        .map(|l| f64::from(l.number()))
                        .or_else(|| run.parse::<f64>().ok()),
                    _ => run.parse::<f64>().ok(),
                };
                match n.filter(|n| !n.is_nan()) {
                    Some(n) => Ok(FieldOp::Cmp(op, n)),
                    None => Err(ParseError::new(
                        at,
                        format!("expected number after \"{text}\", got \"{run}\""),
                    )),
                }
            }
            Some('"') => {
                let at = self.pos;
                let value = self.quoted(false)?;
                check_level(field, &value, at)?;
                Ok(FieldOp::Eq {
                    value,
                    quoted: true,
                })
            }
            Some(_) => {
                let at = self.pos;
                let run = self.bare_run(is_delim);
                if run == "*" {
                    return Ok(FieldOp::Exists);
                }
                if let Some(p) = run.strip_suffix('*') {
                    return Ok(FieldOp::Prefix(p.to_string()));
                }
                check_level(field, &run, at)?;
                Ok(FieldOp::Eq {
                    value: run,
                    quoted: false,
                })
            }
        }
    }

    /// A name inside a pipe (field, aggregate, keyword); empty when none is here.
    fn name(&mut self) -> String {
        self.skip_ws();
        self.bare_run(is_pipe_delim)
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), ParseError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected \"{c}\" {what}")))
        }
    }

    /// A non-negative integer argument.
    fn count_arg(&mut self, after: &str) -> Result<usize, ParseError> {
        self.skip_ws();
        let at = self.pos;
        let run = self.bare_run(is_pipe_delim);
        if run.is_empty() {
            return Err(self.err(format!("expected number after \"{after}\"")));
        }
        run.parse::<usize>().map_err(|_| {
            ParseError::new(
                at,
                format!("expected a non-negative integer after \"{after}\", got \"{run}\""),
            )
        })
    }

    /// `name ("," name)*`, at least one.
    fn field_list(&mut self, after: &str) -> Result<Vec<FieldName>, ParseError> {
        let mut out = Vec::new();
        loop {
            let name = self.name();
            if name.is_empty() {
                return Err(self.err(format!("expected field after \"{after}\"")));
            }
            out.push(FieldName::new(&name));
            self.skip_ws();
            if self.peek() != Some(',') {
                return Ok(out);
            }
            self.pos += 1;
        }
    }

    /// One pipe, positioned at its name.
    fn parse_pipe(&mut self) -> Result<Pipe, ParseError> {
        let at = self.pos;
        let name = self.name();
        match name.as_str() {
            "" => Err(self.err("expected pipe after \"|\"")),
            "stats" => self.parse_stats(),
            "histogram" => {
                self.skip_ws();
                let d_at = self.pos;
                let run = self.bare_run(is_pipe_delim);
                if run.is_empty() {
                    return Err(self.err("expected duration after \"histogram\""));
                }
                let step = humantime::parse_duration(&run)
                    .ok()
                    .and_then(|d| i64::try_from(d.as_nanos()).ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| ParseError::new(d_at, format!("invalid duration \"{run}\"")))?;
                Ok(Pipe::Histogram { step_ns: step })
            }
            "top" => {
                let n = self.count_arg("top")?;
                let field = self.name();
                if field.is_empty() {
                    return Err(self.err(format!("expected field after \"top {n}\"")));
                }
                Ok(Pipe::Top {
                    n,
                    field: FieldName::new(&field),
                })
            }
            "fields" => Ok(Pipe::Fields(self.field_list("fields")?)),
            "limit" => Ok(Pipe::Limit(self.count_arg("limit")?)),
            other => Err(ParseError::new(at, format!("unknown pipe \"{other}\""))),
        }
    }

    /// `stats agg ("," agg)* ["by" name ("," name)*]`.
    fn parse_stats(&mut self) -> Result<Pipe, ParseError> {
        let mut aggs = Vec::new();
        loop {
            self.skip_ws();
            let at = self.pos;
            let name = self.name();
            if name.is_empty() || (name == "by" && self.peek() != Some('(')) {
                self.pos = at;
                let after = if aggs.is_empty() { "stats" } else { "," };
                return Err(self.err(format!("expected aggregate after \"{after}\"")));
            }
            let func = agg_func(&name)
                .ok_or_else(|| ParseError::new(at, format!("unknown aggregate \"{name}\"")))?;
            self.expect('(', &format!("after \"{name}\""))?;
            let field = self.name();
            self.expect(')', &format!("to close \"{name}(\""))?;
            let field = (!field.is_empty()).then(|| FieldName::new(&field));
            if field.is_none() && func != AggFunc::Count {
                return Err(ParseError::new(
                    self.pos - 1,
                    format!("expected field in \"{name}()\""),
                ));
            }
            let mut out_name = match &field {
                None => "count".to_string(),
                Some(f) => format!("{name}({})", f.name),
            };
            let before_as = self.pos;
            if self.name() == "as" {
                let alias = self.name();
                if alias.is_empty() {
                    return Err(self.err("expected name after \"as\""));
                }
                out_name = alias;
            } else {
                self.pos = before_as;
            }
            aggs.push(Agg {
                func,
                field,
                name: out_name,
            });
            self.skip_ws();
            if self.peek() != Some(',') {
                break;
            }
            self.pos += 1;
        }
        let before_by = self.pos;
        let by = if self.name() == "by" {
            self.field_list("by")?
        } else {
            self.pos = before_by;
            Vec::new()
        };
        Ok(Pipe::Stats { aggs, by })
    }
}

/// The aggregate function a name refers to.
fn agg_func(name: &str) -> Option<AggFunc> {
    Some(match name {
        "count" => AggFunc::Count,
        "count_distinct" => AggFunc::CountDistinct,
        "sum" => AggFunc::Sum,
        "avg" => AggFunc::Avg,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        _ => {
            let p: f64 = name.strip_prefix('p')?.parse().ok()?;
            if !(0.0..=100.0).contains(&p)
                || !name[1..].bytes().all(|b| b.is_ascii_digit() || b == b'.')
            {
                return None;
            }
            AggFunc::Percentile(p)
        }
    })
}

/// `level:x` must name a level.
fn check_level(field: &Field, value: &str, at: usize) -> Result<(), ParseError> {
    if *field == Field::Level && Level::parse(value).is_none() {
        return Err(ParseError::new(at, format!("unknown level \"{value}\"")));
    }
    Ok(())
}

/// The regex crate's error on one line: its last line, which says what is wrong.
fn regex_reason(e: &regex::Error) -> String {
    let s = e.to_string();
    let line = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.trim().trim_start_matches("error: ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(q: &str) -> Filter {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}")).filter
    }

    fn word(t: &str) -> Filter {
        Filter::Word(Word::new(t, false))
    }

    fn eq(field: &str, v: &str) -> Filter {
        Filter::Field {
            field: Field::from_name(field),
            op: FieldOp::Eq {
                value: v.into(),
                quoted: false,
            },
        }
    }

    fn err(q: &str) -> (usize, String) {
        let e = parse(q).expect_err(q);
        (e.position, e.message)
    }

    #[test]
    fn empty_and_star_are_all() {
        assert_eq!(f(""), Filter::All);
        assert_eq!(f("   "), Filter::All);
        assert_eq!(f("*"), Filter::All);
        assert_eq!(parse("| limit 3").unwrap().filter, Filter::All);
    }

    #[test]
    fn words_phrases_and_prefixes() {
        assert_eq!(f("timeout"), word("timeout"));
        assert_eq!(f("time*"), Filter::Word(Word::new("time", true)));
        assert_eq!(
            f(r#""connection refused""#),
            Filter::Phrase("connection refused".into())
        );
        assert_eq!(
            f(r#""say \"hi\" \\ now""#),
            Filter::Phrase(r#"say "hi" \ now"#.into())
        );
        assert_eq!(f("a b"), Filter::And(vec![word("a"), word("b")]));
    }

    #[test]
    fn field_operators() {
        assert_eq!(f("service:api"), eq("service", "api"));
        assert_eq!(f("level:warning"), eq("level", "warning"));
        assert_eq!(
            f(r#"path:"/a b""#),
            Filter::Field {
                field: Field::Attr("path".into()),
                op: FieldOp::Eq {
                    value: "/a b".into(),
                    quoted: true
                }
            }
        );
        let op = |q: &str| match f(q) {
            Filter::Field { op, .. } => op,
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(op("status:*"), FieldOp::Exists);
        assert_eq!(op("path:/api*"), FieldOp::Prefix("/api".into()));
        assert_eq!(op("status:>=500"), FieldOp::Cmp(CmpOp::Ge, 500.0));
        assert_eq!(op("status:>500"), FieldOp::Cmp(CmpOp::Gt, 500.0));
        assert_eq!(op("status:<=5.5"), FieldOp::Cmp(CmpOp::Le, 5.5));
        assert_eq!(op("status:<-1"), FieldOp::Cmp(CmpOp::Lt, -1.0));
        assert_eq!(op("status:=7"), FieldOp::Cmp(CmpOp::Eq, 7.0));
        assert_eq!(op("level:>=warn"), FieldOp::Cmp(CmpOp::Ge, 13.0));
        match op(r#"message:~"timeout after \d+ms""#) {
            FieldOp::Regex(p) => {
                assert_eq!(p.0.as_str(), r"timeout after \d+ms");
                assert!(p.0.is_match("x timeout after 250ms"));
            }
            other => panic!("{other:?}"),
        }
        match op(r#"m:~"a\"b\\c""#) {
            FieldOp::Regex(p) => assert_eq!(p.0.as_str(), r#"a"b\\c"#),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            f("trace_id:4bf9"),
            Filter::Field {
                field: Field::TraceId,
                ..
            }
        ));
        assert_eq!(f("msg:x"), word("x"));
        assert_eq!(f("body:x*"), Filter::Word(Word::new("x", true)));
        assert_eq!(f(r#"message:"a b""#), Filter::Phrase("a b".into()));
        assert!(matches!(
            f("msg:*"),
            Filter::Field {
                field: Field::Message,
                op: FieldOp::Exists
            }
        ));
    }

    #[test]
    fn precedence_not_and_or() {
        // NOT binds tighter than AND, AND tighter than OR.
        assert_eq!(
            f("a b OR NOT c d"),
            Filter::Or(vec![
                Filter::And(vec![word("a"), word("b")]),
                Filter::And(vec![Filter::Not(Box::new(word("c"))), word("d")]),
            ])
        );
        assert_eq!(f("a AND b"), f("a b"));
        assert_eq!(
            f("-path:/health status:500"),
            Filter::And(vec![
                Filter::Not(Box::new(eq("path", "/health"))),
                eq("status", "500")
            ])
        );
        assert_eq!(
            f("(a OR b) c"),
            Filter::And(vec![Filter::Or(vec![word("a"), word("b")]), word("c")])
        );
        assert_eq!(
            f("level:error OR level:fatal"),
            Filter::Or(vec![eq("level", "error"), eq("level", "fatal")])
        );
        assert_eq!(f("NOT (a)"), Filter::Not(Box::new(word("a"))));
        // Lowercase keywords and a lone dash are words.
        assert_eq!(
            f("a or b"),
            Filter::And(vec![word("a"), word("or"), word("b")])
        );
        assert_eq!(f("- a"), Filter::And(vec![word("-"), word("a")]));
    }

    #[test]
    fn pipes() {
        let q =
            parse("* | stats count() as n, p95(duration_ms), avg(d) by endpoint, level | limit 2")
                .unwrap();
        let Pipe::Stats { aggs, by } = &q.pipes[0] else {
            panic!("{q:?}")
        };
        let names: Vec<_> = aggs.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["n", "p95(duration_ms)", "avg(d)"]);
        assert_eq!(aggs[1].func, AggFunc::Percentile(95.0));
        assert_eq!(by, &[FieldName::new("endpoint"), FieldName::new("level")]);
        assert_eq!(q.pipes[1], Pipe::Limit(2));
        assert!(q.has_pipes());
        assert!(!parse("a").unwrap().has_pipes());
        assert_eq!(
            parse("* | stats count()").unwrap().pipes[0],
            Pipe::Stats {
                aggs: vec![Agg {
                    func: AggFunc::Count,
                    field: None,
                    name: "count".into()
                }],
                by: vec![]
            }
        );
        assert_eq!(
            parse("* | histogram 5m").unwrap().pipes,
            [Pipe::Histogram {
                step_ns: 300_000_000_000
            }]
        );
        assert_eq!(
            parse("* | top 10 path").unwrap().pipes,
            [Pipe::Top {
                n: 10,
                field: FieldName::new("path")
            }]
        );
        assert_eq!(
            parse("* | fields timestamp,message ,  x").unwrap().pipes,
            [Pipe::Fields(vec![
                FieldName::new("timestamp"),
                FieldName::new("message"),
                FieldName::new("x")
            ])]
        );
    }

    #[test]
    fn errors_name_exact_positions() {
        assert_eq!(err(r#"a "conn"#), (2, "unclosed quote".into()));
        assert_eq!(err(r#"m:~"x"#), (3, "unclosed quote".into()));
        assert_eq!(
            err("status:>= x"),
            (9, "expected number after \">=\"".into())
        );
        assert_eq!(
            err("status:>=abc"),
            (9, "expected number after \">=\", got \"abc\"".into())
        );
        assert_eq!(
            err("level:error |"),
            (13, "expected pipe after \"|\"".into())
        );
        assert_eq!(
            err("* | frobnicate 3"),
            (4, "unknown pipe \"frobnicate\"".into())
        );
        let (pos, msg) = err(r#"message:~"a(b""#);
        assert_eq!(pos, 9);
        assert!(msg.starts_with("invalid regex: "), "{msg}");
        assert_eq!(
            err("* | stats"),
            (9, "expected aggregate after \"stats\"".into())
        );
        assert_eq!(
            err("* | stats by level"),
            (10, "expected aggregate after \"stats\"".into())
        );
        assert_eq!(
            err("* | stats sum()"),
            (14, "expected field in \"sum()\"".into())
        );
        assert_eq!(
            err("* | stats bogus(x)"),
            (10, "unknown aggregate \"bogus\"".into())
        );
        assert_eq!(err("service: x"), (8, "expected value after \":\"".into()));
        assert_eq!(err("service:"), (8, "expected value after \":\"".into()));
        assert_eq!(
            err("(a b"),
            (4, "expected \")\" to close \"(\" at position 0".into())
        );
        assert_eq!(err("a )"), (2, "unexpected \")\"".into()));
        assert_eq!(err("OR a"), (0, "expected term before \"OR\"".into()));
        assert_eq!(err("a OR"), (4, "expected term after \"OR\"".into()));
        assert_eq!(err("NOT"), (3, "expected term after \"NOT\"".into()));
        assert_eq!(err("()"), (1, "expected term after \"(\"".into()));
        assert_eq!(err("level:loud"), (6, "unknown level \"loud\"".into()));
        assert_eq!(
            err("* | histogram 5 parsecs"),
            (14, "invalid duration \"5\"".into())
        );
        assert_eq!(
            err("* | top x path"),
            (
                8,
                "expected a non-negative integer after \"top\", got \"x\"".into()
            )
        );
        assert_eq!(
            err("* | limit"),
            (9, "expected number after \"limit\"".into())
        );
        assert_eq!(
            err("* | top 3 a | stats count()"),
            (14, "\"stats\" cannot follow \"top\"".into())
        );
        assert_eq!(err("* | limit 3 x"), (12, "unexpected \"x\"".into()));
        // Positions count characters, not bytes.
        assert_eq!(err("é \"x"), (2, "unclosed quote".into()));
        let e = parse("aaaaaaa service:").unwrap_err();
        assert_eq!(
            e.to_string(),
            "syntax error at position 16: expected value after \":\""
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let q = "(".repeat(10_000);
        assert!(err(&q).1.starts_with("nesting deeper than"));
        let q = "-".repeat(10_000) + "a";
        assert!(err(&q).1.starts_with("nesting deeper than"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_query_like_text(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("("), proptest::strategy::Just(")"),
                    proptest::strategy::Just("\""), proptest::strategy::Just("\\"),
                    proptest::strategy::Just(":"), proptest::strategy::Just("|"),
                    proptest::strategy::Just(" "), proptest::strategy::Just("OR"),
                    proptest::strategy::Just("NOT"), proptest::strategy::Just("-"),
                    proptest::strategy::Just("*"), proptest::strategy::Just("~"),
                    proptest::strategy::Just(">="), proptest::strategy::Just("stats"),
                    proptest::strategy::Just("count()"), proptest::strategy::Just("by"),
                    proptest::strategy::Just(","), proptest::strategy::Just("a"),
                    proptest::strategy::Just("level"), proptest::strategy::Just("5m"),
                    proptest::strategy::Just("top"), proptest::strategy::Just("9"),
                ],
                0..24,
            )
        ) {
            let q: String = parts.concat();
            if let Err(e) = parse(&q) {
                proptest::prop_assert!(e.position <= q.chars().count(), "{q}: {e}");
            }
        }
    }
}
