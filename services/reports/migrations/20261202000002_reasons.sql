-- Why a referral was declined or withdrawn (the DeclineReason or WithdrawReason value), on that step.
ALTER TABLE steps ADD COLUMN reason_code INT NOT NULL DEFAULT 0;
