service:api | stats count() as n, count(trace_id), sum(duration_ms), min(duration_ms), max(duration_ms), p50(duration_ms), count_distinct(endpoint)
