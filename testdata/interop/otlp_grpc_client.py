"""Drives Sightline's OTLP/gRPC listener with the real grpcio client and the
opentelemetry-proto messages (no SDK: the requests are built by hand so their content is
known exactly).

usage: otlp_grpc_client.py TARGET CASE MARKER [--gzip] [--tenant T]

TARGET is host:port (an http:// prefix is dropped). CASE is one of:
  logs       one log record, body "grpc log MARKER", attribute marker=MARKER,
             resource service.name=grpc-e2e
  metrics    a cumulative monotonic sum grpc.e2e.requests = 7 {marker=MARKER} and a gauge
             grpc.e2e.temperature = 21.5 {marker=MARKER}
  traces     a trace of two spans (server "GET /checkout" in grpc-e2e, its child client
             span "charge" in grpc-payment with status error), attribute marker=MARKER;
             the trace id is the MD5 of MARKER
  malformed  a body that is not protobuf, sent to LogsService/Export as raw bytes
  malformed-traces  the same to TraceService/Export

Prints one JSON line: {"code": "<grpc status name>", "message": "...", "partial_success": bool}.
"""
import hashlib
import json
import sys
import time

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status


def kv(k, v):
    return KeyValue(key=k, value=AnyValue(string_value=v))


def resource(service):
    return Resource(attributes=[kv("service.name", service)])


def logs_request(marker, now):
    rec = LogRecord(
        time_unix_nano=now,
        severity_number=9,
        severity_text="INFO",
        body=AnyValue(string_value=f"grpc log {marker}"),
        attributes=[kv("marker", marker)],
    )
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=resource("grpc-e2e"),
                scope_logs=[ScopeLogs(scope=InstrumentationScope(name="e2e"), log_records=[rec])],
            )
        ]
    )


def metrics_request(marker, now):
    attrs = [kv("marker", marker)]
    total = Metric(
        name="grpc.e2e.requests",
        sum=Sum(
            aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE,
            is_monotonic=True,
            data_points=[NumberDataPoint(start_time_unix_nano=now - 10**9, time_unix_nano=now, as_int=7, attributes=attrs)],
        ),
    )
    gauge = Metric(
        name="grpc.e2e.temperature",
        gauge=Gauge(data_points=[NumberDataPoint(time_unix_nano=now, as_double=21.5, attributes=attrs)]),
    )
    return metrics_service_pb2.ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=resource("grpc-e2e"),
                scope_metrics=[ScopeMetrics(scope=InstrumentationScope(name="e2e"), metrics=[total, gauge])],
            )
        ]
    )


def traces_request(marker, now):
    trace_id = hashlib.md5(marker.encode()).digest()
    root = Span(
        trace_id=trace_id,
        span_id=bytes.fromhex("00000000000000a1"),
        name="GET /checkout",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now - 50_000_000,
        end_time_unix_nano=now,
        attributes=[kv("marker", marker)],
    )
    child = Span(
        trace_id=trace_id,
        span_id=bytes.fromhex("00000000000000b2"),
        parent_span_id=bytes.fromhex("00000000000000a1"),
        name="charge",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=now - 40_000_000,
        end_time_unix_nano=now - 10_000_000,
        attributes=[kv("marker", marker)],
        status=Status(code=Status.STATUS_CODE_ERROR, message="card declined"),
    )
    scope = InstrumentationScope(name="e2e")
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(resource=resource("grpc-e2e"), scope_spans=[ScopeSpans(scope=scope, spans=[root])]),
            ResourceSpans(resource=resource("grpc-payment"), scope_spans=[ScopeSpans(scope=scope, spans=[child])]),
        ]
    )


# Field 1 (resource_logs), length-delimited, announcing 2^31 bytes with 3 present: no
# protobuf decoder can read it.
MALFORMED = b"\x0a\x80\x80\x80\x80\x08abc"


def main():
    args = sys.argv[1:]
    target, case, marker = args[0], args[1], args[2]
    target = target.removeprefix("http://")
    gzip = "--gzip" in args
    metadata = []
    if "--tenant" in args:
        metadata.append(("x-scope-orgid", args[args.index("--tenant") + 1]))
    compression = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
    now = time.time_ns()
    out = {"code": "OK", "message": "", "partial_success": False}
    with grpc.insecure_channel(target) as channel:
        try:
            if case == "logs":
                resp = logs_service_pb2_grpc.LogsServiceStub(channel).Export(
                    logs_request(marker, now), metadata=metadata, compression=compression, timeout=30
                )
            elif case == "metrics":
                resp = metrics_service_pb2_grpc.MetricsServiceStub(channel).Export(
                    metrics_request(marker, now), metadata=metadata, compression=compression, timeout=30
                )
            elif case == "traces":
                resp = trace_service_pb2_grpc.TraceServiceStub(channel).Export(
                    traces_request(marker, now), metadata=metadata, compression=compression, timeout=30
                )
                out["trace_id"] = hashlib.md5(marker.encode()).hexdigest()
            elif case in ("malformed", "malformed-traces"):
                method = {
                    "malformed": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                    "malformed-traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                }[case]
                # No serializer: the bytes go on the wire as they are.
                call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
                resp = None
                call(MALFORMED, metadata=metadata, compression=compression, timeout=30)
            else:
                raise SystemExit(f"unknown case {case}")
            out["partial_success"] = resp is not None and resp.HasField("partial_success")
        except grpc.RpcError as e:
            out["code"] = e.code().name
            out["message"] = e.details() or ""
    print(json.dumps(out))


if __name__ == "__main__":
    main()
