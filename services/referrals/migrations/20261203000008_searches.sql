-- A search: one request for a case's children sent to several services at once, each as a referral of
-- its own. Its row is what a step that touches several of its referrals locks first (confirming one
-- withdraws the others), so that the children are placed once under any interleaving.
CREATE TABLE searches (
    id                 UUID PRIMARY KEY,
    sender_agency_id   UUID NOT NULL,
    case_id            UUID NOT NULL,
    idempotency_key    TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set once, when the sender confirms the placement of one of its referrals.
    placed_referral_id UUID REFERENCES referrals (id),
    UNIQUE (sender_agency_id, idempotency_key)
);

-- NULL for a referral sent alone; a search's referrals are read together (its view, its steps).
ALTER TABLE referrals ADD COLUMN search_id UUID REFERENCES searches (id);
CREATE INDEX referrals_search ON referrals (search_id) WHERE search_id IS NOT NULL;

-- Where a referral stands in its search: the position of its service among those asked.
ALTER TABLE referrals ADD COLUMN search_position SMALLINT;
