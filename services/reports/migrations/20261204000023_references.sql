-- The reference people say for each referral («Н-ВРЦ-2026-00042»), learnt from its events or a rebuild,
-- so that the lists of the figures (stalled referrals) name referrals as the pages do. Empty until an
-- event or a rebuild that carries it arrives.
ALTER TABLE referrals ADD COLUMN reference TEXT NOT NULL DEFAULT '';
