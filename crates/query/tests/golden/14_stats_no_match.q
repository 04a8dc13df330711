service:nosuch | stats count(), avg(duration_ms), p99(duration_ms)
