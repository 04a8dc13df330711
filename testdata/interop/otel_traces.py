"""Sends one known trace (and two correlated logs) through the real OpenTelemetry Python SDK.

Usage: otel_traces.py grpc|http

The exporter is the SDK's default OTLP exporter of that kind
(opentelemetry-exporter-otlp-proto-grpc or -proto-http), configured only by environment as an
application would be: OTEL_EXPORTER_OTLP_ENDPOINT (the HTTP exporter appends /v1/traces and
/v1/logs) and, for gRPC, OTEL_EXPORTER_OTLP_INSECURE=true.

The tree (service shop-frontend unless noted):

    GET /checkout          server, status OK
      SELECT orders        client, db.system=postgresql, db.statement, db.rows=3
      render               internal, event "cache miss"; logs "rendering cart"
      validate             internal, exception ValueError("boom"), status ERROR "boom";
                           logs "validation failed" (error)
      POST /pay            client
        charge             server, service payments (its own TracerProvider and resource)

Prints {"trace_id": "<32 hex>", "spans": {"<name>": "<16 hex>", ...}} on stdout. Exits
non-zero when any export was not acknowledged, so the test can tell a refused export from a
stored-but-wrong trace.
"""

import json
import logging
import sys
import time

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

kind = sys.argv[1] if len(sys.argv) > 1 else "http"
if kind == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
elif kind == "http":
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
else:
    sys.exit(f"usage: {sys.argv[0]} grpc|http")

failures = []


class Checked:
    """Delegates to an exporter and remembers every export that did not succeed."""

    def __init__(self, inner, what):
        self._inner = inner
        self._what = what

    def export(self, batch):
        result = self._inner.export(batch)
        if getattr(result, "name", "SUCCESS") != "SUCCESS":
            failures.append(f"{self._what} export of {len(batch)} items: {result}")
        return result

    def __getattr__(self, name):
        return getattr(self._inner, name)


def provider(service, extra):
    p = TracerProvider(resource=Resource.create({"service.name": service, **extra}))
    p.add_span_processor(BatchSpanProcessor(Checked(OTLPSpanExporter(), f"{service} spans")))
    return p


frontend_resource = {"deployment.environment": "test", "service.version": "1.2.3"}
frontend = provider("shop-frontend", frontend_resource)
payments = provider("payments", {"deployment.environment": "test", "service.version": "0.9.0"})

logs = LoggerProvider(
    resource=Resource.create({"service.name": "shop-frontend", **frontend_resource})
)
logs.add_log_record_processor(BatchLogRecordProcessor(Checked(OTLPLogExporter(), "logs")))
log = logging.getLogger("shop")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=logs))

ft = frontend.get_tracer("shop.frontend", "2.0.0")
pt = payments.get_tracer("shop.payments")
ids = {}


def remember(span):
    ids[span.name] = format(span.get_span_context().span_id, "016x")


with ft.start_as_current_span(
    "GET /checkout",
    kind=SpanKind.SERVER,
    attributes={
        "http.request.method": "GET",
        "http.route": "/checkout",
        "http.response.status_code": 200,
    },
) as root:
    remember(root)
    trace_id = format(root.get_span_context().trace_id, "032x")
    with ft.start_as_current_span(
        "SELECT orders",
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": "postgresql",
            "db.statement": "SELECT * FROM orders WHERE cart_id = $1",
            "db.rows": 3,
        },
    ) as s:
        remember(s)
        time.sleep(0.005)
    with ft.start_as_current_span("render", kind=SpanKind.INTERNAL) as s:
        remember(s)
        s.add_event("cache miss", {"cache.key": "cart:42", "cache.size": 17})
        log.info("rendering cart", extra={"cart_id": "c-42"})
    with ft.start_as_current_span(
        "validate", record_exception=False, set_status_on_exception=False
    ) as s:
        remember(s)
        s.record_exception(ValueError("boom"))
        s.set_status(Status(StatusCode.ERROR, "boom"))
        log.error("validation failed", extra={"cart_id": "c-42"})
    with ft.start_as_current_span(
        "POST /pay",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": "POST", "server.address": "payments"},
    ) as s:
        remember(s)
        # The payments service continues the same trace: a server span in another provider,
        # parented by the current (client) span through the shared context.
        with pt.start_as_current_span(
            "charge",
            kind=SpanKind.SERVER,
            attributes={"payment.amount": 45.99, "payment.approved": True},
        ) as c:
            remember(c)
            # The trace lasts at least 60 ms, for the duration filters.
            time.sleep(0.06)
    root.set_status(Status(StatusCode.OK))

for p in (frontend, payments):
    p.force_flush()
    p.shutdown()
logs.force_flush()
logs.shutdown()

if failures:
    sys.exit("exports failed: " + "; ".join(failures))
print(json.dumps({"trace_id": trace_id, "spans": ids}))
