//! Which parts of a record a query reads, so a scan can leave the rest undecoded. Only
//! aggregating queries (`stats`, `histogram`, `top`) ask for a projection: they read a few
//! columns of many records, where building every string of every record dominated the cost.
//! Queries that return records read everything.

use sightline_storage::Projection;

use crate::ast::{Field, Filter, Pipe, Query};

impl Query {
    /// The projection for this query's scan, or `None` when it returns whole records.
    pub fn projection(&self) -> Option<Projection> {
        let aggregates = self.pipes.iter().any(|p| {
            matches!(
                p,
                Pipe::Stats { .. } | Pipe::Histogram { .. } | Pipe::Top { .. }
            )
        });
        if !aggregates {
            return None;
        }
        let mut p = Projection::default();
        filter_fields(&self.filter, &mut p);
        for pipe in &self.pipes {
            match pipe {
                Pipe::Stats { aggs, by } => {
                    for a in aggs {
                        if let Some(f) = &a.field {
                            add(&f.field, &mut p);
                        }
                    }
                    for f in by {
                        add(&f.field, &mut p);
                    }
                }
                Pipe::Top { field, .. } => add(&field.field, &mut p),
                Pipe::Fields(fs) => fs.iter().for_each(|f| add(&f.field, &mut p)),
                Pipe::Histogram { .. } | Pipe::Limit(_) => {}
            }
        }
        Some(p)
    }
}

fn filter_fields(f: &Filter, p: &mut Projection) {
    match f {
        Filter::All => {}
        // Words and phrases match the message.
        Filter::Word(_) | Filter::Phrase(_) => p.body = true,
        Filter::Field { field, .. } => add(field, p),
        Filter::Not(inner) => filter_fields(inner, p),
        Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| filter_fields(f, p)),
    }
}

fn add(field: &Field, p: &mut Projection) {
    match field {
        Field::Message => p.body = true,
        Field::Attr(key) => {
            if !p.wants(key) {
                p.attributes.push(key.clone());
            }
        }
        // Always decoded by the storage.
        Field::Timestamp | Field::Level | Field::Service | Field::TraceId | Field::SpanId => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::parse;

    fn proj(q: &str) -> Option<(bool, Vec<String>)> {
        parse(q)
            .unwrap()
            .projection()
            .map(|p| (p.body, p.attributes))
    }

    #[test]
    fn only_aggregations_project() {
        assert_eq!(proj("service:api level:error"), None);
        assert_eq!(proj("* | fields timestamp, status"), None);
        assert_eq!(proj("* | stats count() by level"), Some((false, vec![])));
        assert_eq!(
            proj(
                "status:>=500 -path:/health | stats p95(duration_ms), avg(duration_ms) by endpoint"
            ),
            Some((
                false,
                vec![
                    "status".into(),
                    "path".into(),
                    "duration_ms".into(),
                    "endpoint".into()
                ]
            ))
        );
        assert_eq!(
            proj("timeout | top 3 path"),
            Some((true, vec!["path".into()]))
        );
        assert_eq!(
            proj("message:~\"x\\d\" | histogram 5m"),
            Some((true, vec![]))
        );
        assert_eq!(
            proj("(a:1 OR NOT b:2) | stats count()"),
            Some((false, vec!["a".into(), "b".into()]))
        );
    }
}
