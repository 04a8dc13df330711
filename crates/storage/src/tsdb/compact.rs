//! Planning of block compaction and retention (pure functions over block metadata; the
//! TSDB performs the plans). Compaction merges the blocks of one tenant that lie wholly
//! inside one aligned window of a larger range (2h -> 6h -> 24h with the default block
//! duration, like Prometheus' exponential ranges), once that window is complete. Retention
//! drops whole blocks: older than the newest data minus the retention age, then the oldest
//! until the total size fits.

/// What planning needs to know about a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockMeta {
    pub id: u64,
    pub min_t: i64,
    pub max_t: i64,
    pub bytes: u64,
}

/// Compaction ranges for a block duration: 3x and 12x (2h -> 6h -> 24h). Ratios as in
/// Prometheus' defaults, where they balance merge write amplification against the number of
/// blocks a long query opens.
pub fn ranges(block_ms: i64) -> Vec<i64> {
    vec![block_ms.saturating_mul(3), block_ms.saturating_mul(12)]
}

/// One group of a tenant's blocks (ids, oldest first by id) to merge, if any: the smallest
/// range first; a window qualifies when it holds at least two blocks, every block touching
/// it lies wholly inside it, and it ended at or before `newest` (the tenant's newest
/// sample), so no later cut adds to it.
pub fn plan(blocks: &[BlockMeta], ranges: &[i64], newest: i64) -> Option<Vec<u64>> {
    for &range in ranges {
        if range <= 0 {
            continue;
        }
        let mut windows: Vec<i64> = blocks.iter().map(|b| b.min_t.div_euclid(range)).collect();
        windows.sort_unstable();
        windows.dedup();
        for w in windows {
            let (start, end) = (
                w.saturating_mul(range),
                w.saturating_add(1).saturating_mul(range),
            );
            if end > newest {
                continue;
            }
            let touching: Vec<&BlockMeta> = blocks
                .iter()
                .filter(|b| b.min_t < end && b.max_t >= start)
                .collect();
            if touching.len() < 2 || touching.iter().any(|b| b.min_t < start || b.max_t >= end) {
                continue;
            }
            let mut ids: Vec<u64> = touching.iter().map(|b| b.id).collect();
            ids.sort_unstable();
            return Some(ids);
        }
    }
    None
}

/// Blocks (ids) retention deletes: those whose newest sample is older than `newest -
/// retention_ms` (when `retention_ms > 0`), then the oldest remaining ones (by max time)
/// until the total size is at most `max_bytes` (when `max_bytes > 0`).
pub fn retention(blocks: &[BlockMeta], newest: i64, retention_ms: i64, max_bytes: u64) -> Vec<u64> {
    let mut doomed = Vec::new();
    let mut left: Vec<&BlockMeta> = Vec::new();
    for b in blocks {
        if retention_ms > 0 && b.max_t < newest.saturating_sub(retention_ms) {
            doomed.push(b.id);
        } else {
            left.push(b);
        }
    }
    if max_bytes > 0 {
        left.sort_by_key(|b| (b.max_t, b.id));
        let mut total: u64 = left.iter().map(|b| b.bytes).sum();
        for b in left {
            if total <= max_bytes {
                break;
            }
            total -= b.bytes;
            doomed.push(b.id);
        }
    }
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: u64, min_t: i64, max_t: i64) -> BlockMeta {
        BlockMeta {
            id,
            min_t,
            max_t,
            bytes: 10,
        }
    }

    #[test]
    fn merges_complete_windows_only() {
        let r = ranges(10); // 30, 120
        let blocks = [b(1, 0, 9), b(2, 10, 19), b(3, 20, 29), b(4, 30, 35)];
        assert_eq!(plan(&blocks, &r, 35), Some(vec![1, 2, 3]));
        // Window [30, 60) is not complete yet; [0, 30) holds one merged block.
        assert_eq!(
            plan(&[b(5, 0, 29), b(4, 30, 35), b(6, 40, 45)], &r, 45),
            None
        );
        // A block straddling a 30 window blocks it; the complete 120 window takes both.
        assert_eq!(plan(&[b(1, 0, 9), b(2, 5, 40)], &r, 100), None);
        assert_eq!(plan(&[b(1, 0, 9), b(2, 5, 40)], &r, 200), Some(vec![1, 2]));
        // The 120 range picks up merged 30 windows.
        assert_eq!(
            plan(&[b(1, 0, 29), b(2, 30, 59), b(3, 200, 201)], &r, 201),
            Some(vec![1, 2])
        );
    }

    #[test]
    fn retention_by_age_then_size() {
        let blocks = [b(1, 0, 9), b(2, 10, 19), b(3, 20, 29)];
        assert_eq!(retention(&blocks, 29, 15, 0), vec![1]);
        assert_eq!(retention(&blocks, 29, 0, 15), vec![1, 2]);
        assert!(retention(&blocks, 29, 0, 0).is_empty());
        assert_eq!(retention(&blocks, 29, 15, 15), vec![1, 2]);
    }
}
