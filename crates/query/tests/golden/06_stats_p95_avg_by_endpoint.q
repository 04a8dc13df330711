* | stats p95(duration_ms), avg(duration_ms) by endpoint
