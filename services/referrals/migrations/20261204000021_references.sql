-- The reference people say and write for a referral, «Н-ВРЦ-2026-00042» (see placement_model::reference):
-- the sending DSA's district (its Cyrillic abbreviation), the year the referral was made (Europe/Sofia)
-- and its number among that district's referrals of that year.

-- The last number given per district and year, raised in the transaction that inserts the referral:
-- concurrent submissions on any instance queue on the row, and a rolled-back one gives its number back.
CREATE TABLE reference_counters (
    region_code TEXT NOT NULL,
    year        INTEGER NOT NULL,
    last_number INTEGER NOT NULL CHECK (last_number > 0),
    PRIMARY KEY (region_code, year)
);

-- Where a counter made from now on starts: deploy/restore.sh raises it (and every counter) past anything
-- given between the backup and the restore, so that no reference is given twice.
CREATE TABLE reference_floor (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    skipped   INTEGER NOT NULL DEFAULT 0 CHECK (skipped >= 0)
);
INSERT INTO reference_floor DEFAULT VALUES;

-- Referrals made before references get theirs here, in the order they were made. The abbreviations are
-- those of placement_model::reference, as of this migration; a code outside them is written as it is.
ALTER TABLE referrals ADD COLUMN reference TEXT;
WITH letters (region_code, letters) AS (
    VALUES ('BGS', 'БГС'), ('BLG', 'БЛГ'), ('DOB', 'ДОБ'), ('GAB', 'ГАБ'), ('HKV', 'ХКВ'), ('JAM', 'ЯМБ'),
           ('KNL', 'КНЛ'), ('KRZ', 'КРЖ'), ('LOV', 'ЛОВ'), ('MON', 'МОН'), ('PAZ', 'ПАЗ'), ('PDV', 'ПДВ'),
           ('PER', 'ПЕР'), ('PVN', 'ПВН'), ('RAZ', 'РАЗ'), ('RSE', 'РСЕ'), ('SFO', 'СФО'), ('SHU', 'ШУМ'),
           ('SLS', 'СЛС'), ('SLV', 'СЛВ'), ('SML', 'СМЛ'), ('SOF', 'СОФ'), ('SZR', 'СЗР'), ('TGV', 'ТГВ'),
           ('VAR', 'ВАР'), ('VID', 'ВИД'), ('VRC', 'ВРЦ'), ('VTR', 'ВТР')
),
numbered AS (
    SELECT id, upper(sender_region_code) AS region_code,
           EXTRACT(YEAR FROM created_at AT TIME ZONE 'Europe/Sofia')::int AS year,
           row_number() OVER (PARTITION BY upper(sender_region_code),
                                           EXTRACT(YEAR FROM created_at AT TIME ZONE 'Europe/Sofia')
                              ORDER BY created_at, id) AS number
    FROM referrals
)
UPDATE referrals r
SET reference = 'Н-' || COALESCE(l.letters, n.region_code) || '-' || n.year || '-'
                || lpad(n.number::text, greatest(5, length(n.number::text)), '0')
FROM numbered n LEFT JOIN letters l ON l.region_code = n.region_code
WHERE r.id = n.id;
INSERT INTO reference_counters (region_code, year, last_number)
SELECT upper(sender_region_code), EXTRACT(YEAR FROM created_at AT TIME ZONE 'Europe/Sofia')::int, count(*)
FROM referrals GROUP BY 1, 2;
ALTER TABLE referrals ALTER COLUMN reference SET NOT NULL;
-- The last guard, and how a reference is found.
CREATE UNIQUE INDEX referrals_reference ON referrals (reference);
