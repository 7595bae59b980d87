-- One agency's figures (a DSA's own): its referrals by submission time.
CREATE INDEX referrals_sender_agency ON referrals (sender_agency_id, submitted_at);
