-- The gauge of referrals past their acknowledgement deadline is sampled every few seconds: it must read
-- the open referrals only, not the whole history.
CREATE INDEX referrals_unacknowledged ON referrals (ack_deadline)
    WHERE status = 'REFERRAL_STATUS_SUBMITTED';
