-- The W3C traceparent of the event's application that created the delivery (NULL when tracing is off):
-- each attempt is a span of that trace, and a webhook carries it to the receiving system.
ALTER TABLE deliveries ADD COLUMN trace_context TEXT;
