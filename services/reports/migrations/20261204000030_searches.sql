-- The search each referral is one request of (NULL for one sent alone) and why it ended (the DeclineReason
-- or WithdrawReason of its decline or withdrawal): the search figures group a period's referrals by search
-- and tell a search placed elsewhere from one closed without a place, and a service's declines are counted
-- by reason. Referrals kept before this learn their search from their next event or a rebuild.
ALTER TABLE referrals ADD COLUMN search_id UUID, ADD COLUMN end_reason INT;
UPDATE referrals r SET end_reason = s.reason_code
FROM steps s
WHERE s.referral_id = r.id AND s.action IN ('REFERRAL_ACTION_DECLINED', 'REFERRAL_ACTION_WITHDRAWN');
-- Covering again, with what the search figures read, so that a district's year is still read from the
-- index alone.
DROP INDEX referrals_sender_submitted;
DROP INDEX referrals_receiving_submitted;
CREATE INDEX referrals_sender_submitted ON referrals (sender_region_code, submitted_at)
    INCLUDE (receiving_region_code, service_id, first_answer_at, all_acks_at, accepted_at, declined_at, placed_at,
             search_id, status, end_reason);
CREATE INDEX referrals_receiving_submitted ON referrals (receiving_region_code, submitted_at)
    INCLUDE (sender_region_code, service_id, first_answer_at, all_acks_at, accepted_at, declined_at, placed_at,
             search_id, status, end_reason);
