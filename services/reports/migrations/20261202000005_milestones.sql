-- When each referral first reached each milestone, kept on the referral: a period's durations and outcomes
-- are then read from one row per referral, found by district and submission time, instead of from all of
-- its steps.
ALTER TABLE referrals
    ADD COLUMN submitted_at TIMESTAMPTZ,
    ADD COLUMN first_ack_at TIMESTAMPTZ,
    ADD COLUMN all_acks_at  TIMESTAMPTZ,
    ADD COLUMN accepted_at  TIMESTAMPTZ,
    ADD COLUMN declined_at  TIMESTAMPTZ,
    ADD COLUMN placed_at    TIMESTAMPTZ;
-- Covering, so that a district's year is read from the index alone.
CREATE INDEX referrals_sender_submitted ON referrals (sender_region_code, submitted_at)
    INCLUDE (receiving_region_code, service_id, first_ack_at, all_acks_at, accepted_at, declined_at, placed_at);
CREATE INDEX referrals_receiving_submitted ON referrals (receiving_region_code, submitted_at)
    INCLUDE (sender_region_code, service_id, first_ack_at, all_acks_at, accepted_at, declined_at, placed_at);

-- Steps counted per district, side, UTC day and kind, raised in the transaction that keeps the step (only
-- when it is new): a period's counts add its whole days from here and read only the partial days at its
-- two ends from the steps.
CREATE TABLE step_days (
    region_code TEXT NOT NULL,
    side        TEXT NOT NULL CHECK (side IN ('sender', 'receiver')),
    day         DATE NOT NULL,
    action      TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    reason_code INT NOT NULL,
    steps       BIGINT NOT NULL,
    PRIMARY KEY (side, region_code, day, action, to_status, reason_code)
);
-- The national figures read every district's days.
CREATE INDEX step_days_side_day ON step_days (side, day);
