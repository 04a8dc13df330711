"""Sends logs through the real OpenTelemetry Python SDK with its default OTLP/HTTP exporter.

The endpoint comes from OTEL_EXPORTER_OTLP_ENDPOINT (the SDK appends /v1/logs), exactly as an
application configured by environment would. Prints "<trace_id> <span_id>" of the span the
error record was logged in.
"""

import logging

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

resource = Resource.create({"service.name": "py-checkout", "deployment.environment": "interop"})
trace.set_tracer_provider(TracerProvider(resource=resource))
provider = LoggerProvider(resource=resource)
provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))

log = logging.getLogger("shop")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))

tracer = trace.get_tracer("shop")
with tracer.start_as_current_span("checkout") as span:
    log.error("payment failed for order %s", "o-1001", extra={"order_id": "o-1001", "amount_cents": 4599})
    ctx = span.get_span_context()
log.info("inventory checked", extra={"sku": "sku-42", "in_stock": True})
log.warning("slow response", extra={"duration_ms": 812.5})

provider.shutdown()  # flushes the batch processor
print(format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))
