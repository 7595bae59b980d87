-- Notices about no referral's step keep their facts too, in the same column: a district's digest its
-- placement.v1.DistrictDigestReady, a search that ran out its SearchExhausted, an endpoint disabled its
-- EndpointDisabledFacts. The notice's kind says which message `facts` holds (as an event's type says what
-- its payload is), so one column serves every kind and no row is ever half one, half another. Their title
-- and body keep the Bulgarian words as written, shown only where the facts cannot be read (by an instance of
-- the release before, while an upgrade rolls out: none of these decodes as a NoticeFacts). Notices of these
-- kinds stored before have no facts and keep the words they were written with.
COMMENT ON COLUMN notifications.facts IS
    'What the notice tells, protobuf-encoded; the message is the kind''s: NoticeFacts for a referral''s step, DistrictDigestReady, SearchExhausted or EndpointDisabledFacts. NULL: a notice stored as words.';
