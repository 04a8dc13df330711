//! Postings lists: sorted, duplicate-free series ids, and the set algebra label matchers
//! are evaluated with (intersection for "and", union over the values a regex matches,
//! subtraction for negative matchers). Used by the head's and the blocks' indexes.

/// A sorted list of unique series ids.
pub type Postings = Vec<u32>;

/// Ids in both lists.
pub fn intersect(a: &[u32], b: &[u32]) -> Postings {
    let (small, big) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    // Galloping would win for very skewed sizes; a merge walk keeps it simple and linear.
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < big.len() {
        match small[i].cmp(&big[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Ids in either list.
pub fn union(a: &[u32], b: &[u32]) -> Postings {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Union of many lists (k-way by repeated pairwise merging of similar sizes).
pub fn union_all(mut lists: Vec<Postings>) -> Postings {
    while lists.len() > 1 {
        let mut next = Vec::with_capacity(lists.len().div_ceil(2));
        let mut it = lists.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(union(&a, &b)),
                None => next.push(a),
            }
        }
        lists = next;
    }
    lists.pop().unwrap_or_default()
}

/// Ids in `a` but not in `b`.
pub fn subtract(a: &[u32], b: &[u32]) -> Postings {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j >= b.len() || b[j] != x {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn set() -> impl Strategy<Value = BTreeSet<u32>> {
        proptest::collection::btree_set(0..200u32, 0..60)
    }

    fn v(s: &BTreeSet<u32>) -> Vec<u32> {
        s.iter().copied().collect()
    }

    #[test]
    fn small_cases() {
        assert_eq!(intersect(&[1, 3, 5], &[3, 4, 5]), vec![3, 5]);
        assert_eq!(union(&[1, 3], &[2, 3]), vec![1, 2, 3]);
        assert_eq!(subtract(&[1, 2, 3], &[2]), vec![1, 3]);
        assert_eq!(union_all(vec![vec![5], vec![1], vec![3, 5]]), vec![1, 3, 5]);
        assert!(union_all(vec![]).is_empty());
    }

    proptest! {
        #[test]
        fn prop_algebra_matches_sets(a in set(), b in set(), c in set()) {
            prop_assert_eq!(intersect(&v(&a), &v(&b)), v(&a.intersection(&b).copied().collect()));
            prop_assert_eq!(union(&v(&a), &v(&b)), v(&a.union(&b).copied().collect()));
            prop_assert_eq!(subtract(&v(&a), &v(&b)), v(&a.difference(&b).copied().collect()));
            let all: BTreeSet<u32> = a.iter().chain(&b).chain(&c).copied().collect();
            prop_assert_eq!(union_all(vec![v(&a), v(&b), v(&c)]), v(&all));
        }
    }
}
