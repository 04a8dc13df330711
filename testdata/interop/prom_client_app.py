"""A small app instrumented with the real `prometheus-client` library from PyPI, for the
scrape interop test: exposes fixed values on /metrics at 127.0.0.1:$PORT and prints
`ready` once serving. Values: app_requests_total{path="/api"} = 42, app_temperature = 3.5,
app_latency_seconds histogram with observations 0.1, 0.2, 0.7 (buckets 0.25, 0.5, 1)."""
import os
import sys
import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server

requests = Counter("app_requests", "Requests served.", ["path"])
temperature = Gauge("app_temperature", "Temperature in degrees.")
latency = Histogram("app_latency_seconds", "Request latency.", buckets=[0.25, 0.5, 1.0])

requests.labels(path="/api").inc(42)
temperature.set(3.5)
for v in (0.1, 0.2, 0.7):
    latency.observe(v)

start_http_server(int(os.environ["PORT"]), addr="127.0.0.1")
print("ready", flush=True)
while True:
    time.sleep(3600)
