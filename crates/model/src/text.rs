//! The tokenizer shared by the storage bloom filters and the query language.
//!
//! A token is a maximal run of alphanumeric characters or `_`, lowercased. Storage indexes
//! the tokens of messages and string attribute values per block; a query may only require
//! tokens that any matching record must contain, so both sides must split text the same
//! way: this function is the single definition.

/// Calls `f` with each token of `s`, lowercased (ASCII fast path; other letters via
/// `char::to_lowercase`). Tokens longer than [`MAX_TOKEN_LEN`] bytes are skipped: they are
/// never indexed, so a query must not require them either.
pub fn for_each_token(s: &str, mut f: impl FnMut(&str)) {
    let mut buf = String::new();
    let mut start: Option<usize> = None;
    let emit = |tok: &str, buf: &mut String, f: &mut dyn FnMut(&str)| {
        if tok.len() > MAX_TOKEN_LEN {
            return;
        }
        if tok.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
            buf.clear();
            buf.extend(tok.chars().flat_map(char::to_lowercase));
            f(buf);
        } else {
            f(tok);
        }
    };
    for (i, c) in s.char_indices() {
        if is_token_char(c) {
            if start.is_none() {
                start = Some(i);
            }
        } else if let Some(st) = start.take() {
            emit(&s[st..i], &mut buf, &mut f);
        }
    }
    if let Some(st) = start {
        emit(&s[st..], &mut buf, &mut f);
    }
}

/// Tokens of `s` as owned strings (see [`for_each_token`]).
pub fn tokens(s: &str) -> Vec<String> {
    let mut v = Vec::new();
    for_each_token(s, |t| v.push(t.to_string()));
    v
}

/// Whether `c` belongs inside a token.
pub fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Longest token indexed, in bytes. Longer runs (base64 blobs, hashes longer than a trace
/// id) would bloat the filters without helping searches.
pub const MAX_TOKEN_LEN: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_lowercases() {
        assert_eq!(
            tokens("GET /api/v1?x=Timeout_3 Ünïcode"),
            ["get", "api", "v1", "x", "timeout_3", "ünïcode"]
        );
        assert!(tokens("  -- ").is_empty());
        assert!(tokens(&"a".repeat(65)).is_empty());
    }
}
