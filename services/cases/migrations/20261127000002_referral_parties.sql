-- Who receives each referral of a case, so the receiving service's agency and the foster-care team may read
-- what they need of the case while the referral is open or placed with them (and not after a decline or a
-- withdrawal). `open_or_placed` is true from submission, false after a decline or withdrawal.
ALTER TABLE case_referrals
    ADD COLUMN receiving_agency_id   UUID,
    ADD COLUMN foster_team_agency_id UUID,
    ADD COLUMN open_or_placed        BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX case_referrals_parties ON case_referrals (case_id, receiving_agency_id, foster_team_agency_id)
    WHERE open_or_placed;
