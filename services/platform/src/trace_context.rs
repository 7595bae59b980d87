//! The W3C trace context (`traceparent`) as it crosses the exchange's hops: gRPC metadata, the outbox row,
//! the AMQP message headers, the delivery row and the webhook's request. Without tracing configured every
//! function here is a no-op and returns `None`.

use std::collections::HashMap;

use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";

/// The `traceparent` naming `span` as the parent of what follows it.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.remove(TRACEPARENT)
}

/// The `traceparent` of the span the caller is in.
pub fn current() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// Makes `span` a child of the span `traceparent` names, when there is one, and records the trace id on
/// the span's `trace_id` field (which every log line written in it then carries).
pub fn adopt(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent {
        let carrier = HashMap::from([(TRACEPARENT.to_string(), traceparent.to_string())]);
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
        // Refused only when the span is closed or tracing is off: then there is nothing to link.
        let _ = span.set_parent(parent);
    }
    if let Some(id) = trace_id(span) {
        span.record("trace_id", id.as_str());
    }
}

/// The trace id of `span`, when tracing is on.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let cx = span.context();
    let context = cx.span().span_context().clone();
    context.is_valid().then(|| context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_tracing_nothing_is_propagated() {
        let span = tracing::info_span!("test", trace_id = tracing::field::Empty);
        adopt(
            &span,
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(traceparent_of(&span), None);
        assert_eq!(trace_id(&span), None);
    }
}
