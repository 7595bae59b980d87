-- Which services fit a stalled referral's children: the children's ages kept with the referral and the
-- ages each service takes. NULL where an event before this did not carry them: then any service fits.
ALTER TABLE referrals ADD COLUMN youngest_child_age INT, ADD COLUMN oldest_child_age INT;
ALTER TABLE services ADD COLUMN min_age INT, ADD COLUMN max_age INT;
