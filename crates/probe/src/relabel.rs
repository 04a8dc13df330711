//! Prometheus relabelling (`relabel_configs`, `metric_relabel_configs`), the actions a
//! scrape config uses in practice: `replace`, `keep`, `drop`, `labelmap`, `labeldrop`,
//! `labelkeep`, `lowercase`, `uppercase`, `keepequal`, `dropequal`. `hashmod` needs MD5 and
//! is refused at load time with a message naming the rule. Semantics follow Prometheus'
//! `model/relabel/relabel.go`: source values joined by `separator`, the regex anchored at
//! both ends, `$1`/`${name}` expansion in `replacement` and `target_label`, an empty result
//! of `replace` removes the label.

use serde::Deserialize;
use sightline_model::Labels;

/// One rule as written in YAML.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelabel {
    #[serde(default)]
    pub source_labels: Vec<String>,
    pub separator: Option<String>,
    pub regex: Option<String>,
    pub target_label: Option<String>,
    pub replacement: Option<String>,
    pub modulus: Option<u64>,
    pub action: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Replace,
    Keep,
    Drop,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
    KeepEqual,
    DropEqual,
}

/// A validated rule.
#[derive(Clone, Debug)]
pub struct Relabel {
    source_labels: Vec<String>,
    separator: String,
    regex: regex::Regex,
    target_label: String,
    replacement: String,
    action: Action,
}

impl Relabel {
    /// Validates a rule; `what` names it in errors (e.g. `scrape_configs[0].relabel_configs[2]`).
    ///
    /// # Errors
    /// Unknown or unsupported action, a regex that does not compile, a missing
    /// `target_label` where the action needs one.
    pub fn new(raw: &RawRelabel, what: &str) -> Result<Self, String> {
        let action = match raw
            .action
            .as_deref()
            .unwrap_or("replace")
            .to_ascii_lowercase()
            .as_str()
        {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => return Err(format!("{what}: action hashmod is not supported")),
            other => return Err(format!("{what}: unknown relabel action {other:?}")),
        };
        let src = raw.regex.as_deref().unwrap_or("(.*)");
        let regex = regex::Regex::new(&format!("^(?:{src})$"))
            .map_err(|e| format!("{what}: invalid regex {src:?}: {e}"))?;
        let target_label = raw.target_label.clone().unwrap_or_default();
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target_label.is_empty() {
            return Err(format!(
                "{what}: relabel configuration for {} action requires 'target_label' value",
                raw.action.as_deref().unwrap_or("replace")
            ));
        }
        Ok(Relabel {
            source_labels: raw.source_labels.clone(),
            separator: raw.separator.clone().unwrap_or_else(|| ";".into()),
            regex,
            target_label,
            replacement: raw.replacement.clone().unwrap_or_else(|| "$1".into()),
            action,
        })
    }
}

/// Applies `rules` in order; `None` when a rule drops the labels.
pub fn relabel(labels: &Labels, rules: &[Relabel]) -> Option<Labels> {
    let mut l = labels.clone();
    for r in rules {
        let value = r
            .source_labels
            .iter()
            .map(|n| l.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&r.separator);
        match r.action {
            Action::Drop => {
                if r.regex.is_match(&value) {
                    return None;
                }
            }
            Action::Keep => {
                if !r.regex.is_match(&value) {
                    return None;
                }
            }
            Action::DropEqual => {
                if l.get(&r.target_label).unwrap_or("") == value {
                    return None;
                }
            }
            Action::KeepEqual => {
                if l.get(&r.target_label).unwrap_or("") != value {
                    return None;
                }
            }
            Action::Replace => {
                let Some(caps) = r.regex.captures(&value) else {
                    continue;
                };
                let mut target = String::new();
                caps.expand(&r.target_label, &mut target);
                if !is_label_name(&target) {
                    l = l.without(&r.target_label);
                    continue;
                }
                let mut v = String::new();
                caps.expand(&r.replacement, &mut v);
                l = l.with(&target, &v);
            }
            Action::Lowercase => l = l.with(&r.target_label, &value.to_lowercase()),
            Action::Uppercase => l = l.with(&r.target_label, &value.to_uppercase()),
            Action::LabelMap => {
                let mut out = l.clone();
                for (name, v) in l.iter() {
                    if let Some(caps) = r.regex.captures(name) {
                        let mut target = String::new();
                        caps.expand(&r.replacement, &mut target);
                        out = out.with(&target, v);
                    }
                }
                l = out;
            }
            Action::LabelDrop | Action::LabelKeep => {
                let keep = r.action == Action::LabelKeep;
                let names: Vec<String> = l.iter().map(|(n, _)| n.to_string()).collect();
                for n in names {
                    if r.regex.is_match(&n) != keep {
                        l = l.without(&n);
                    }
                }
            }
        }
    }
    Some(l)
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Relabel {
        let raw: RawRelabel = serde_saphyr::from_str(yaml).unwrap();
        Relabel::new(&raw, "test").unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn replace_with_groups_and_defaults() {
        let r = rule("source_labels: [__address__]\nregex: '([^:]+):\\d+'\ntarget_label: host\n");
        let out = relabel(&labels(&[("__address__", "db1:9100")]), &[r]).unwrap();
        assert_eq!(out.get("host"), Some("db1"));
        // No match: unchanged.
        let r = rule("source_labels: [a]\nregex: x\ntarget_label: b\nreplacement: y\n");
        let l = labels(&[("a", "z")]);
        assert_eq!(relabel(&l, &[r]).unwrap(), l);
        // Empty replacement removes the target.
        let r = rule("source_labels: [a]\ntarget_label: a\nreplacement: ''\n");
        assert_eq!(
            relabel(&labels(&[("a", "1")]), &[r]).unwrap(),
            Labels::new()
        );
    }

    #[test]
    fn keep_drop_and_joined_sources() {
        let keep =
            rule("source_labels: [job, env]\nseparator: '/'\nregex: 'api/prod'\naction: keep\n");
        assert!(relabel(
            &labels(&[("job", "api"), ("env", "prod")]),
            std::slice::from_ref(&keep)
        )
        .is_some());
        assert!(relabel(&labels(&[("job", "api"), ("env", "dev")]), &[keep]).is_none());
        let drop = rule("source_labels: [__name__]\nregex: 'go_.*'\naction: drop\n");
        assert!(relabel(
            &labels(&[("__name__", "go_gc")]),
            std::slice::from_ref(&drop)
        )
        .is_none());
        // Anchored: a partial match does not drop.
        assert!(relabel(&labels(&[("__name__", "x_go_gc")]), &[drop]).is_some());
    }

    #[test]
    fn labelmap_labeldrop_labelkeep_case() {
        let m = rule("regex: '__meta_(.+)'\naction: labelmap\n");
        let out = relabel(&labels(&[("__meta_zone", "eu"), ("a", "1")]), &[m]).unwrap();
        assert_eq!(out.get("zone"), Some("eu"));
        assert_eq!(out.get("__meta_zone"), Some("eu"));
        let d = rule("regex: '__meta_.*'\naction: labeldrop\n");
        let out = relabel(&out, &[d]).unwrap();
        assert_eq!(
            out.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            vec!["a", "zone"]
        );
        let k = rule("regex: 'zone'\naction: labelkeep\n");
        assert_eq!(relabel(&out, &[k]).unwrap().len(), 1);
        let up = rule("source_labels: [zone]\ntarget_label: zone\naction: uppercase\n");
        assert_eq!(
            relabel(&labels(&[("zone", "eu")]), &[up])
                .unwrap()
                .get("zone"),
            Some("EU")
        );
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let raw: RawRelabel =
            serde_saphyr::from_str("action: hashmod\nmodulus: 4\ntarget_label: x\n").unwrap();
        assert!(Relabel::new(&raw, "r[0]")
            .unwrap_err()
            .contains("r[0]: action hashmod"));
        let raw: RawRelabel = serde_saphyr::from_str("regex: '('\n").unwrap();
        assert!(Relabel::new(&raw, "r[1]").is_err());
        let raw: RawRelabel = serde_saphyr::from_str("action: replace\n").unwrap();
        assert!(Relabel::new(&raw, "r[2]")
            .unwrap_err()
            .contains("target_label"));
    }
}
