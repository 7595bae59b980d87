-- The children's ages at submission (whole years, from birth years), so that those who read the referral
-- (the reports' free places beside a stalled one) can tell which services fit them without the case.
-- NULL for referrals submitted before they were kept.
ALTER TABLE referrals ADD COLUMN youngest_child_age SMALLINT, ADD COLUMN oldest_child_age SMALLINT;
