-- An accepted offer the sender kept as a fallback when it confirmed the placement through another referral
-- of the search (ConfirmPlacement's keep_as_fallback_referral_id): it holds its places until fallback_until,
-- when its timer RELEASE_FALLBACK (a row of referral_timers) withdraws it as placed elsewhere. NULL for every
-- other referral.
ALTER TABLE referrals ADD COLUMN fallback_until TIMESTAMPTZ;
