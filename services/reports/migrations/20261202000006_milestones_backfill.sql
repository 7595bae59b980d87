-- Milestones and day counts of the steps kept before they existed. Safe to run again: it computes both
-- from the steps alone (the benchmark runs it after loading a history straight into the tables).
UPDATE referrals r SET
    submitted_at = m.submitted_at, first_ack_at = m.first_ack_at, all_acks_at = m.all_acks_at,
    accepted_at = m.accepted_at, declined_at = m.declined_at, placed_at = m.placed_at
FROM (
    SELECT referral_id,
        min(at) FILTER (WHERE action = 'REFERRAL_ACTION_SUBMITTED') AS submitted_at,
        min(at) FILTER (WHERE action = 'REFERRAL_ACTION_ACKNOWLEDGED') AS first_ack_at,
        min(at) FILTER (WHERE action = 'REFERRAL_ACTION_ACKNOWLEDGED'
                          AND to_status = 'REFERRAL_STATUS_ACKNOWLEDGED') AS all_acks_at,
        min(at) FILTER (WHERE action = 'REFERRAL_ACTION_ACCEPTED') AS accepted_at,
        min(at) FILTER (WHERE action = 'REFERRAL_ACTION_DECLINED') AS declined_at,
        min(at) FILTER (WHERE action = 'REFERRAL_ACTION_PLACED') AS placed_at
    FROM steps GROUP BY referral_id
) m
WHERE m.referral_id = r.id;

DELETE FROM step_days;
INSERT INTO step_days (region_code, side, day, action, to_status, reason_code, steps)
SELECT sender_region_code, 'sender', (at AT TIME ZONE 'UTC')::date, action, to_status, reason_code, count(*)
FROM steps GROUP BY 1, 3, 4, 5, 6
UNION ALL
SELECT receiving_region_code, 'receiver', (at AT TIME ZONE 'UTC')::date, action, to_status, reason_code, count(*)
FROM steps GROUP BY 1, 3, 4, 5, 6;
