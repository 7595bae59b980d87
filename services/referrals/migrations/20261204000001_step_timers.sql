-- A timer on every open step (see services/model/src/referral.rs): the referral keeps its urgency, which
-- scales the steps' times; the deadline of the step it is in; whether that step (when later than the
-- acknowledgement, whose own are reminded_at and escalated_at) was reminded or escalated; what its holder
-- said of its wait; and when the children arrived, the last step. The step's columns are cleared when the
-- next step opens. The new timers are rows of referral_timers named REMIND_<STEP> and ESCALATE_<STEP>; the
-- acknowledgement's keep their names, REMIND and ESCALATE.
ALTER TABLE referrals
    ADD COLUMN urgency           TEXT NOT NULL DEFAULT 'URGENCY_ROUTINE',
    ADD COLUMN arrived_at        TIMESTAMPTZ,
    ADD COLUMN step_deadline     TIMESTAMPTZ,
    ADD COLUMN step_reminded_at  TIMESTAMPTZ,
    ADD COLUMN step_escalated_at TIMESTAMPTZ,
    ADD COLUMN postponements     INTEGER NOT NULL DEFAULT 0 CHECK (postponements >= 0),
    ADD COLUMN waiting_reason    TEXT,
    ADD COLUMN waiting_comment   TEXT NOT NULL DEFAULT '',
    ADD COLUMN waiting_until     DATE;

-- Before arrivals were recorded apart, confirming the placement confirmed that the children had arrived.
UPDATE referrals r
   SET arrived_at = COALESCE(
           (SELECT min(h.at) FROM referral_history h
             WHERE h.referral_id = r.id AND h.action = 'REFERRAL_ACTION_PLACED'),
           r.updated_at)
 WHERE r.status = 'REFERRAL_STATUS_PLACED';

-- An acknowledgement under way is the step open; referrals acknowledged or accepted before this release keep
-- no later timer (their steps started before they had one).
UPDATE referrals SET step_deadline = ack_deadline WHERE status = 'REFERRAL_STATUS_SUBMITTED';
