-- The W3C traceparent of the span that wrote the event (NULL when tracing is off), so that the relay's
-- publish and every consumer join the trace of the call that caused the event.
ALTER TABLE outbox ADD COLUMN trace_context TEXT;
