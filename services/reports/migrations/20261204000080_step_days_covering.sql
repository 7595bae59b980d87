-- A district report reads a year of its day counts (about 1,700 rows a side), which lie scattered over the
-- table's pages among every other district's: fetched from the heap, that was most of its steps' cost.
-- With the count in the key's index, the index answers alone. A count raised then writes an index entry
-- where it could often be updated in place: a few small writes a step against a report's page reads.
ALTER TABLE step_days
    DROP CONSTRAINT step_days_pkey,
    ADD CONSTRAINT step_days_pkey PRIMARY KEY (side, region_code, day, action, to_status, reason_code)
        INCLUDE (steps);
