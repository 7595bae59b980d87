-- Agencies and services are named in Bulgarian (`name`, the official name); `name_en` is the name shown to
-- people who read in English, empty when none was given (they are shown `name`).
ALTER TABLE agencies ADD COLUMN name_en TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN name_en TEXT NOT NULL DEFAULT '';

-- The national authority the first migration made, named in English then.
UPDATE agencies SET name = 'Агенция за социално подпомагане', name_en = 'Agency for Social Assistance'
WHERE id = '00000000-0000-4000-8000-000000000001' AND name = 'Agency for Social Assistance';
