-- Reminders: to the parties that have not acknowledged at half the acknowledgement time, and to the sender
-- when a director's order is three weeks old without a court decision. Both live here, not in a timer, so
-- they survive restarts; the columns recording that they were sent make them fire once.
ALTER TABLE referrals
    ADD COLUMN remind_at             TIMESTAMPTZ,
    ADD COLUMN reminded_at           TIMESTAMPTZ,
    ADD COLUMN court_reminded_at     TIMESTAMPTZ,
    ADD COLUMN court_decision_number TEXT,
    ADD COLUMN court_decision_date   DATE,
    ADD COLUMN court_decision_court  TEXT;
UPDATE referrals SET remind_at = created_at + (ack_deadline - created_at) / 2;
ALTER TABLE referrals ALTER COLUMN remind_at SET NOT NULL;

CREATE INDEX referrals_remind_due ON referrals (remind_at)
    WHERE status = 'REFERRAL_STATUS_SUBMITTED' AND reminded_at IS NULL AND escalated_at IS NULL;
CREATE INDEX referrals_court_due ON referrals (legal_basis_date)
    WHERE legal_basis_kind = 'LEGAL_BASIS_KIND_DSA_DIRECTOR_ORDER' AND court_decision_date IS NULL
      AND court_reminded_at IS NULL
      AND status IN ('REFERRAL_STATUS_SUBMITTED', 'REFERRAL_STATUS_ACKNOWLEDGED', 'REFERRAL_STATUS_ACCEPTED',
                     'REFERRAL_STATUS_PLACED');
