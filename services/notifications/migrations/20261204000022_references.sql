-- The reference of the referral a notice is about («Н-ВРЦ-2026-00042»), as its event told it: the inbox
-- names the referral as its page does. Empty for notices about no referral and for those written before
-- events carried references.
ALTER TABLE notifications ADD COLUMN reference TEXT NOT NULL DEFAULT '';
