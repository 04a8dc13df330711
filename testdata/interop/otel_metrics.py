"""Sends metrics with the real OpenTelemetry Python SDK and its OTLP/HTTP exporter, with
default exporter settings (OTEL_EXPORTER_OTLP_ENDPOINT from the environment), cumulative
temporality (the SDK's default) or delta when OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta.
Values: counter app.orders{region=eu} += 5 then += 2 (two exports); histogram
http.server.duration (unit ms) records 10, 20, 300; up-down counter app.queue.depth += 7, -3."""
from opentelemetry import metrics
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=3_600_000)
provider = MeterProvider(
    resource=Resource.create({"service.name": "checkout", "service.instance.id": "pod-1", "deployment.environment": "test"}),
    metric_readers=[reader],
)
metrics.set_meter_provider(provider)
meter = metrics.get_meter("interop")

orders = meter.create_counter("app.orders", description="Orders placed.")
duration = meter.create_histogram("http.server.duration", unit="ms", description="Request time.")
queue = meter.create_up_down_counter("app.queue.depth", description="Queued jobs.")

orders.add(5, {"region": "eu"})
for v in (10, 20, 300):
    duration.record(v, {"route": "/pay"})
queue.add(7)
provider.force_flush()
orders.add(2, {"region": "eu"})
queue.add(-3)
provider.force_flush()
provider.shutdown()
print("sent")
