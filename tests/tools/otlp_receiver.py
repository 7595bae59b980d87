"""An OTLP/gRPC trace receiver for the tests, on the official OpenTelemetry protocol definitions
(PyPI's opentelemetry-proto) served with grpcio: every span received is written to OUT as one JSON line
(trace and span ids in hex, the parent's, the name, the kind, the service and every attribute).

    python otlp_receiver.py PORT OUT
"""

import json
import sys
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in any_value.kvlist_value.values}
    if kind == "bytes_value":
        return any_value.bytes_value.hex()
    return getattr(any_value, kind) if kind else None


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, out):
        self.out = out

    def Export(self, request, context):
        for resource_spans in request.resource_spans:
            resource = {kv.key: value_of(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    line = {
                        "service": resource.get("service.name", ""),
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "attributes": {kv.key: value_of(kv.value) for kv in span.attributes},
                        "events": [
                            {kv.key: value_of(kv.value) for kv in e.attributes} | {"name": e.name}
                            for e in span.events
                        ],
                    }
                    self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.out.flush()
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "a", encoding="utf-8") as out:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(out), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        print(f"listening {port}", flush=True)
        server.wait_for_termination()


if __name__ == "__main__":
    main()
