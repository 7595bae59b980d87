-- A district's figures for a period are read from the steps alone, by an index on (district, time): each
-- step carries its referral's two districts.
ALTER TABLE steps ADD COLUMN sender_region_code TEXT, ADD COLUMN receiving_region_code TEXT;
UPDATE steps s SET sender_region_code = r.sender_region_code, receiving_region_code = r.receiving_region_code
FROM referrals r WHERE r.id = s.referral_id;
DELETE FROM steps WHERE sender_region_code IS NULL;
ALTER TABLE steps ALTER COLUMN sender_region_code SET NOT NULL, ALTER COLUMN receiving_region_code SET NOT NULL;
CREATE INDEX steps_sender_region_at ON steps (sender_region_code, at);
CREATE INDEX steps_receiving_region_at ON steps (receiving_region_code, at);
