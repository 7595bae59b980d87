-- A receiving service may decline before anyone acknowledged: that decline is the referral's first answer,
-- as an acknowledgement is. The column says so (no row has a decline before an acknowledgement yet, so none
-- changes).
ALTER TABLE referrals RENAME COLUMN first_ack_at TO first_answer_at;
