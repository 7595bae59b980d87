-- The step each referral is in now, when it is due and why its holder said it waits, as its newest event
-- (or a rebuild) tells: the stalled list names every open step past its deadline (acknowledgement, decision,
-- confirmation, arrival), not only the acknowledgement. A referral kept before learns them from its next
-- event or a rebuild; until then one still SUBMITTED is in its acknowledgement, due at its acknowledgement
-- deadline, as the list had it.
ALTER TABLE referrals
    ADD COLUMN step           TEXT,
    ADD COLUMN step_deadline  TIMESTAMPTZ,
    ADD COLUMN waiting_reason TEXT;
UPDATE referrals SET step = 'REFERRAL_STEP_NAME_ACKNOWLEDGEMENT', step_deadline = ack_deadline
 WHERE status = 'REFERRAL_STATUS_SUBMITTED';
CREATE INDEX referrals_stalled ON referrals (step_deadline) WHERE step IS NOT NULL;
