//! Every gRPC call counted by method and status code, timed, and traced (a server span, the child of the
//! caller's `traceparent`), as a layer of the server: a method added later is observed without a line of
//! its own. Only methods the exchange declares are named; any other path is `unknown`, so that made-up
//! paths (answered UNAUTHENTICATED before routing) cannot grow the series.

use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::LazyLock,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tracing::{Instrument, field::Empty};

use crate::prometheus::{GRPC_DURATION, GRPC_REQUESTS};

/// The layer [`crate::grpc::serve`] puts in front of every service.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObservedLayer;

impl<S> tower_layer::Layer<S> for ObservedLayer {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observed { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Observed<S> {
    inner: S,
}

impl<S, Req, ResBody> tower_service::Service<http::Request<Req>> for Observed<S>
where
    S: tower_service::Service<http::Request<Req>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
{
    type Response = http::Response<Measured<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Req>) -> Self::Future {
        let method = declared(request.uri().path());
        let started = Instant::now();
        let span = server_span(method, request.headers());
        let answer = span.in_scope(|| self.inner.call(request));
        let in_call = span.clone();
        Box::pin(
            async move {
                let response = answer.await?;
                // A call that fails before its body (most errors) says its status in the headers; one that
                // answers says it in the trailers, after the body.
                let code = status_of(response.headers());
                Ok(response.map(|body| Measured {
                    body: Box::pin(body),
                    call: Some(Call {
                        method,
                        started,
                        code,
                        span,
                    }),
                }))
            }
            .instrument(in_call),
        )
    }
}

/// Label of a call to a path that names no declared method.
pub const UNKNOWN_METHOD: &str = "unknown";

/// Every method the exchange's servers declare, as `package.Service/Method`: the exchange's own (from the
/// embedded descriptor set, so a method added later is known without a line here), health and reflection.
static DECLARED: LazyLock<HashSet<String>> = LazyLock::new(|| {
    use placement_proto::prost::Message;
    let sets = [
        placement_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = HashSet::new();
    for encoded in sets {
        let set = prost_types::FileDescriptorSet::decode(encoded)
            .expect("the embedded descriptor sets are valid");
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    methods.insert(format!(
                        "{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    methods
});

/// The method `path` calls, if declared, else [`UNKNOWN_METHOD`]: the only values a label of a call takes.
pub fn declared(path: &str) -> &'static str {
    DECLARED
        .get(path.strip_prefix('/').unwrap_or(path))
        .map_or(UNKNOWN_METHOD, String::as_str)
}

/// The call's span, named as OpenTelemetry's RPC conventions name it. Health checks (every few seconds,
/// from every probe) make none.
fn server_span(declared: &'static str, headers: &http::HeaderMap) -> tracing::Span {
    let (service, method) = declared
        .split_once('/')
        .unwrap_or((UNKNOWN_METHOD, UNKNOWN_METHOD));
    if service.starts_with("grpc.health.") {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "grpc",
        otel.name = declared,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        trace_id = Empty,
    );
    let parent = headers
        .get(crate::trace_context::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    crate::trace_context::adopt(&span, parent);
    span
}

struct Call {
    method: &'static str,
    started: Instant,
    code: Option<i32>,
    span: tracing::Span,
}

impl Call {
    /// Recorded when the answer is over (or abandoned: the client went away before the end).
    fn record(self, ended: bool) {
        if let Some(code) = self.code {
            self.span.record("rpc.grpc.status_code", code);
        }
        let code = match (self.code, ended) {
            (Some(code), _) => code_name(code),
            (None, true) => "UNKNOWN",
            (None, false) => "CANCELLED",
        };
        // A declared method of another service than this one's is not served here either.
        let method = if code == "UNIMPLEMENTED" {
            UNKNOWN_METHOD
        } else {
            self.method
        };
        metrics::counter!(GRPC_REQUESTS, "method" => method, "code" => code).increment(1);
        metrics::histogram!(GRPC_DURATION, "method" => method)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// A response body that records its call when it ends.
pub struct Measured<B> {
    body: Pin<Box<B>>,
    call: Option<Call>,
}

impl<B> Drop for Measured<B> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.record(false);
        }
    }
}

impl<B: Body<Data = Bytes>> Body for Measured<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = self.body.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = self.call.as_mut()
                {
                    call.code = call.code.or(status_of(trailers));
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                if let Some(call) = self.call.take() {
                    call.record(true);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The code's canonical name, as grpc.io and every gRPC tool spell it.
fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNKNOWN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_methods_are_named() {
        assert_eq!(
            declared("/placement.v1.ReferralService/GetReferral"),
            "placement.v1.ReferralService/GetReferral"
        );
        assert_eq!(
            declared("/placement.v1.NotificationService/WatchNotifications"),
            "placement.v1.NotificationService/WatchNotifications"
        );
        assert_eq!(
            declared("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        assert_eq!(
            declared("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            "grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        );
        for made_up in [
            "/placement.v1.ReferralService/Xyz8f3a",
            "/placement.v1.ReferralService/GetReferral/",
            "/placement.v1.ReferralService/getreferral",
            "/placement.v1.Nope/GetReferral",
            "/placement.v1.ReferralService",
            "/",
            "",
            "//placement.v1.ReferralService/GetReferral",
            "/placement.v1.ReferralService/GetReferral?x=1",
        ] {
            assert_eq!(declared(made_up), UNKNOWN_METHOD, "{made_up:?}");
        }
    }

    #[test]
    fn every_service_of_the_exchange_is_declared() {
        // One method of each, so that a descriptor set left out of DECLARED is noticed.
        for path in [
            "/placement.v1.DirectoryService/GetService",
            "/placement.v1.CaseService/GetCase",
            "/placement.v1.ReportService/GetDistrictReport",
            "/placement.v1.AuditService/VerifyAuditTrail",
        ] {
            assert_ne!(declared(path), UNKNOWN_METHOD, "{path}");
        }
    }

    #[test]
    fn codes_are_named_as_grpc_names_them() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(3), "INVALID_ARGUMENT");
        assert_eq!(code_name(13), "INTERNAL");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(17), "UNKNOWN");
        assert_eq!(code_name(-1), "UNKNOWN");
        // The same names as tonic's codes, CamelCase turned into SCREAMING_SNAKE.
        for i in 0..17 {
            let mut screaming = String::new();
            for (n, c) in format!("{:?}", tonic::Code::from(i)).chars().enumerate() {
                if c.is_uppercase() && n > 0 {
                    screaming.push('_');
                }
                screaming.push(c.to_ascii_uppercase());
            }
            assert_eq!(code_name(i), screaming.replace("O_K", "OK"));
        }
    }
}
