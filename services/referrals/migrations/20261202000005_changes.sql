-- ListReferralChanges reads referrals in the order of their last change.
CREATE INDEX referrals_changes ON referrals (updated_at, id);
