level:>=warn service:db | fields timestamp, level, host, duration_ms | limit 3
