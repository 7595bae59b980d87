-- The reference people say and write for a case, «С-2026-00042» (see placement_model::reference): the year
-- the case was opened (Europe/Sofia) and its number among that year's cases in the whole country.

-- The last number given in each year, raised in the transaction that opens a case: concurrent openings on
-- any instance queue on the row, and a rolled-back opening gives its number back.
CREATE TABLE reference_counters (
    year        INTEGER PRIMARY KEY,
    last_number INTEGER NOT NULL CHECK (last_number > 0)
);

-- Where a counter made from now on starts: deploy/restore.sh raises it (and every counter) past anything
-- given between the backup and the restore, so that no reference is given twice.
CREATE TABLE reference_floor (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    skipped   INTEGER NOT NULL DEFAULT 0 CHECK (skipped >= 0)
);
INSERT INTO reference_floor DEFAULT VALUES;

-- Cases opened before references get theirs here, in the order they were opened.
ALTER TABLE cases
    ADD COLUMN reference TEXT,
    -- The reference of the referral that placed the children, learnt from its event.
    ADD COLUMN placement_referral_reference TEXT;
WITH numbered AS (
    SELECT id, EXTRACT(YEAR FROM opened_at AT TIME ZONE 'Europe/Sofia')::int AS year,
           row_number() OVER (PARTITION BY EXTRACT(YEAR FROM opened_at AT TIME ZONE 'Europe/Sofia')
                              ORDER BY opened_at, id) AS number
    FROM cases
)
UPDATE cases c
SET reference = 'С-' || n.year || '-' || lpad(n.number::text, greatest(5, length(n.number::text)), '0')
FROM numbered n
WHERE c.id = n.id;
INSERT INTO reference_counters (year, last_number)
SELECT EXTRACT(YEAR FROM opened_at AT TIME ZONE 'Europe/Sofia')::int, count(*) FROM cases GROUP BY 1;
ALTER TABLE cases ALTER COLUMN reference SET NOT NULL;
-- The last guard: a reference names one case.
CREATE UNIQUE INDEX cases_reference ON cases (reference);
