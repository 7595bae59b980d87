-- Deadlines written once: a referral's timers say when a system step (reminder, escalation, court
-- reminder) falls due; whether it may still happen is the state machine's to say (services/referrals/src/
-- referral.rs), which sets them at submission and stops them when a step makes them pointless. The due
-- query is then `due_at <= now()` alone, and no partial index repeats the rules.
CREATE TABLE referral_timers (
    referral_id UUID NOT NULL REFERENCES referrals (id),
    step        TEXT NOT NULL,
    due_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (referral_id, step)
);
CREATE INDEX referral_timers_due ON referral_timers (due_at);

-- The timers of the referrals that exist, by the rules as they were when this migration was written.
INSERT INTO referral_timers (referral_id, step, due_at)
SELECT id, 'REMIND', remind_at FROM referrals
 WHERE status = 'REFERRAL_STATUS_SUBMITTED' AND reminded_at IS NULL AND escalated_at IS NULL;
INSERT INTO referral_timers (referral_id, step, due_at)
SELECT id, 'ESCALATE', ack_deadline FROM referrals
 WHERE status = 'REFERRAL_STATUS_SUBMITTED' AND escalated_at IS NULL;
INSERT INTO referral_timers (referral_id, step, due_at)
SELECT id, 'REMIND_OF_COURT', (legal_basis_date + 21)::timestamp AT TIME ZONE 'UTC' FROM referrals
 WHERE legal_basis_kind = 'LEGAL_BASIS_KIND_DSA_DIRECTOR_ORDER' AND court_decision_date IS NULL
   AND court_reminded_at IS NULL
   AND status IN ('REFERRAL_STATUS_SUBMITTED', 'REFERRAL_STATUS_ACKNOWLEDGED', 'REFERRAL_STATUS_ACCEPTED',
                  'REFERRAL_STATUS_PLACED');

DROP INDEX referrals_due;
DROP INDEX referrals_remind_due;
DROP INDEX referrals_court_due;
ALTER TABLE referrals DROP COLUMN remind_at;

-- Statuses are read back as the enum they are, and an unknown name is refused: a submission's history
-- entry has no status before it, which is NULL rather than a name that means "none".
ALTER TABLE referral_history ALTER COLUMN from_status DROP NOT NULL;
UPDATE referral_history SET from_status = NULL WHERE from_status = 'REFERRAL_STATUS_UNSPECIFIED';
