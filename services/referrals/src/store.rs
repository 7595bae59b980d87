//! Referral rows, their parties and history, and their wire and event forms.

use chrono::{DateTime, NaiveDate, Utc};
use placement_platform::time::{court_application_due, date, opt_timestamp, timestamp};
use placement_proto::v1::{
    Acknowledgement, AgencyKind, DeclineReason, LegalBasis, LegalBasisKind, Referral,
    ReferralAction, ReferralEvent, ReferralHistoryEntry, ReferralStatus, WithdrawReason,
};
use sqlx::{FromRow, PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::referral::{Party, Record, ReferralFacts, ReferralState, Timer, Transition};

pub const REFERRAL_COLUMNS: &str = "id, case_id, sender_agency_id, sender_region_code, service_id, \
     receiving_agency_id, receiving_region_code, foster_team_agency_id, receiving_rdsa_agency_id, places, \
     legal_basis_kind, legal_basis_number, legal_basis_date, legal_basis_court, reason, status, ack_deadline, \
     escalated_at, decline_reason, withdraw_reason, resolution_comment, idempotency_key, created_at, \
     updated_at, version, reminded_at, court_reminded_at, court_decision_number, court_decision_date, \
     court_decision_court, youngest_child_age, oldest_child_age";

#[derive(Debug, Clone, FromRow)]
pub struct ReferralRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub sender_agency_id: Uuid,
    pub sender_region_code: String,
    pub service_id: Uuid,
    pub receiving_agency_id: Uuid,
    pub receiving_region_code: String,
    pub foster_team_agency_id: Uuid,
    pub receiving_rdsa_agency_id: Option<Uuid>,
    pub places: i32,
    pub legal_basis_kind: LegalBasisKind,
    pub legal_basis_number: String,
    pub legal_basis_date: NaiveDate,
    pub legal_basis_court: String,
    pub reason: String,
    pub status: ReferralStatus,
    pub ack_deadline: DateTime<Utc>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub decline_reason: Option<DeclineReason>,
    pub withdraw_reason: Option<WithdrawReason>,
    pub resolution_comment: String,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub reminded_at: Option<DateTime<Utc>>,
    pub court_reminded_at: Option<DateTime<Utc>>,
    pub court_decision_number: Option<String>,
    pub court_decision_date: Option<NaiveDate>,
    pub court_decision_court: Option<String>,
    pub youngest_child_age: Option<i16>,
    pub oldest_child_age: Option<i16>,
}

#[derive(Debug, Clone, FromRow)]
pub struct PartyRow {
    pub referral_id: Uuid,
    pub agency_id: Uuid,
    pub receiving_provider: bool,
    pub foster_care_team: bool,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    pub referral_id: Uuid,
    pub version: i64,
    pub action: ReferralAction,
    /// None for the submission.
    pub from_status: Option<ReferralStatus>,
    pub to_status: ReferralStatus,
    pub actor_agency_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

impl ReferralRow {
    pub fn status(&self) -> ReferralStatus {
        self.status
    }

    /// The state the model builds from this row's facts, as it builds a client's from the wire.
    pub fn state(&self, parties: &[PartyRow]) -> ReferralState {
        ReferralState::of(self.facts(parties))
    }

    fn facts(&self, parties: &[PartyRow]) -> ReferralFacts {
        ReferralFacts {
            status: self.status(),
            sender: self.sender_agency_id,
            receiving_agency: self.receiving_agency_id,
            parties: parties
                .iter()
                .map(|p| Party {
                    agency: p.agency_id,
                    acknowledged: p.acknowledged_at.is_some(),
                })
                .collect(),
            legal_basis: self.legal_basis_kind,
            legal_basis_date: self.legal_basis_date,
            court_decision_recorded: self.court_decision_date.is_some(),
            escalated: self.escalated_at.is_some(),
            reminded: self.reminded_at.is_some(),
            court_reminded: self.court_reminded_at.is_some(),
        }
    }

    pub fn rests_on_order(&self) -> bool {
        self.legal_basis_kind == LegalBasisKind::DsaDirectorOrder
    }

    pub fn into_proto(self, parties: Vec<PartyRow>, history: Vec<HistoryRow>) -> Referral {
        Referral {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            sender_agency_id: self.sender_agency_id.to_string(),
            sender_region_code: self.sender_region_code.clone(),
            service_id: self.service_id.to_string(),
            receiving_agency_id: self.receiving_agency_id.to_string(),
            receiving_region_code: self.receiving_region_code.clone(),
            foster_care_team_agency_id: self.foster_team_agency_id.to_string(),
            receiving_rdsa_agency_id: self
                .receiving_rdsa_agency_id
                .map(|a| a.to_string())
                .unwrap_or_default(),
            places: placement_platform::numbers::count(self.places),
            legal_basis: Some(LegalBasis {
                kind: self.legal_basis_kind as i32,
                number: self.legal_basis_number.clone(),
                issued_on: Some(date(self.legal_basis_date)),
                court: self.legal_basis_court.clone(),
            }),
            reason: self.reason.clone(),
            status: self.status() as i32,
            acknowledgements: parties
                .into_iter()
                .map(|p| Acknowledgement {
                    agency_id: p.agency_id.to_string(),
                    receiving_provider: p.receiving_provider,
                    foster_care_team: p.foster_care_team,
                    acknowledged_at: opt_timestamp(p.acknowledged_at),
                })
                .collect(),
            acknowledgement_deadline: Some(timestamp(self.ack_deadline)),
            escalated: self.escalated_at.is_some(),
            escalated_at: opt_timestamp(self.escalated_at),
            decline_reason: self.decline_reason.unwrap_or(DeclineReason::Unspecified) as i32,
            withdraw_reason: self.withdraw_reason.unwrap_or(WithdrawReason::Unspecified) as i32,
            resolution_comment: self.resolution_comment.clone(),
            history: history
                .into_iter()
                .map(|h| ReferralHistoryEntry {
                    action: h.action as i32,
                    from_status: h.from_status.unwrap_or(ReferralStatus::Unspecified) as i32,
                    to_status: h.to_status as i32,
                    actor_agency_id: h.actor_agency_id.map(|a| a.to_string()).unwrap_or_default(),
                    at: Some(timestamp(h.at)),
                    version: placement_platform::numbers::serial(h.version),
                })
                .collect(),
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
            version: placement_platform::numbers::serial(self.version),
            court_decision: self.court_decision_date.map(|d| LegalBasis {
                kind: LegalBasisKind::CourtDecision as i32,
                number: self.court_decision_number.clone().unwrap_or_default(),
                issued_on: Some(date(d)),
                court: self.court_decision_court.clone().unwrap_or_default(),
            }),
            court_application_due_on: self
                .rests_on_order()
                .then(|| date(court_application_due(self.legal_basis_date))),
            reminded_at: opt_timestamp(self.reminded_at),
            youngest_child_age: self.youngest_child_age.map(age),
            oldest_child_age: self.oldest_child_age.map(age),
        }
    }

    /// The event announcing this referral's latest step: identifiers and codes only, never the free-text
    /// reason or comment.
    pub fn event(
        &self,
        previous: ReferralStatus,
        actor: Option<Uuid>,
        reason_code: i32,
        outstanding: Vec<Uuid>,
    ) -> ReferralEvent {
        ReferralEvent {
            referral_id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            sender_agency_id: self.sender_agency_id.to_string(),
            sender_region_code: self.sender_region_code.clone(),
            service_id: self.service_id.to_string(),
            receiving_agency_id: self.receiving_agency_id.to_string(),
            receiving_region_code: self.receiving_region_code.clone(),
            foster_care_team_agency_id: self.foster_team_agency_id.to_string(),
            receiving_rdsa_agency_id: self
                .receiving_rdsa_agency_id
                .map(|a| a.to_string())
                .unwrap_or_default(),
            places: placement_platform::numbers::count(self.places),
            status: self.status() as i32,
            actor_agency_id: actor.map(|a| a.to_string()).unwrap_or_default(),
            reason_code,
            previous_status: previous as i32,
            acknowledgement_deadline: Some(timestamp(self.ack_deadline)),
            legal_basis_kind: self.legal_basis_kind as i32,
            outstanding_agency_ids: outstanding.iter().map(Uuid::to_string).collect(),
            order_issued_on: self.rests_on_order().then(|| date(self.legal_basis_date)),
            youngest_child_age: self.youngest_child_age.map(age),
            oldest_child_age: self.oldest_child_age.map(age),
        }
    }
}

/// An age as stored (never negative: written from a `u32` bounded below 200).
fn age(stored: i16) -> u32 {
    u32::try_from(stored).unwrap_or(0)
}

pub async fn parties_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<PartyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT referral_id, agency_id, receiving_provider, foster_care_team, acknowledged_at
         FROM referral_parties WHERE referral_id = ANY($1)
         ORDER BY referral_id, receiving_provider DESC, agency_id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

pub async fn record_history(
    conn: &mut PgConnection,
    row: &ReferralRow,
    action: ReferralAction,
    from: ReferralStatus,
    actor: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO referral_history (referral_id, version, action, from_status, to_status, actor_agency_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id)
    .bind(row.version)
    .bind(action)
    .bind((from != ReferralStatus::Unspecified).then_some(from))
    .bind(row.status)
    .bind(actor)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A party or a history entry of a referral: `assemble` reads both in one query.
#[derive(Debug, FromRow)]
struct PartOfReferral {
    referral_id: Uuid,
    is_party: bool,
    agency_id: Option<Uuid>,
    receiving_provider: bool,
    foster_care_team: bool,
    at: Option<DateTime<Utc>>,
    version: i64,
    action: Option<ReferralAction>,
    from_status: Option<ReferralStatus>,
    to_status: Option<ReferralStatus>,
}

/// Assembles full referrals from rows, loading their parties and history in one query.
pub async fn assemble(
    conn: &mut PgConnection,
    rows: Vec<ReferralRow>,
) -> Result<Vec<Referral>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let parts: Vec<PartOfReferral> = sqlx::query_as(
        "SELECT referral_id, true AS is_party, agency_id, receiving_provider, foster_care_team,
                acknowledged_at AS at, 0::bigint AS version, NULL::text AS action, NULL::text AS from_status,
                NULL::text AS to_status
         FROM referral_parties WHERE referral_id = ANY($1)
         UNION ALL
         SELECT referral_id, false, actor_agency_id, false, false, at, version, action, from_status, to_status
         FROM referral_history WHERE referral_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut parties = Vec::new();
    let mut history = Vec::new();
    for part in parts {
        if part.is_party {
            if let Some(agency_id) = part.agency_id {
                parties.push(PartyRow {
                    referral_id: part.referral_id,
                    agency_id,
                    receiving_provider: part.receiving_provider,
                    foster_care_team: part.foster_care_team,
                    acknowledged_at: part.at,
                });
            }
        } else if let (Some(at), Some(action), Some(to_status)) =
            (part.at, part.action, part.to_status)
        {
            history.push(HistoryRow {
                referral_id: part.referral_id,
                version: part.version,
                action,
                from_status: part.from_status,
                to_status,
                actor_agency_id: part.agency_id,
                at,
            });
        }
    }
    // The order `parties_of` gives: the receiving provider first, then by agency; history by version.
    parties.sort_by_key(|p| (!p.receiving_provider, p.agency_id));
    history.sort_by_key(|h| h.version);
    Ok(rows
        .into_iter()
        .map(|row| {
            let p = parties
                .iter()
                .filter(|p| p.referral_id == row.id)
                .cloned()
                .collect();
            let h = history
                .iter()
                .filter(|h| h.referral_id == row.id)
                .cloned()
                .collect();
            row.into_proto(p, h)
        })
        .collect())
}

/// The referral, locked for a step.
pub async fn lock_referral(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The referral as it is.
pub async fn find_referral(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Writes what `t` records: the status, a new version and the step's own columns, in one statement.
pub async fn apply_transition(
    conn: &mut PgConnection,
    id: Uuid,
    t: &Transition,
    at: Option<DateTime<Utc>>,
) -> Result<ReferralRow, sqlx::Error> {
    // The columns each kind of record sets besides status, version and updated_at.
    let set = match &t.record {
        Record::Status | Record::Acknowledged(_) => "",
        Record::Declined(..) => ", decline_reason = $4, resolution_comment = $5",
        Record::Withdrawn(..) => ", withdraw_reason = $4, resolution_comment = $5",
        Record::Escalated => ", escalated_at = COALESCE($3, now())",
        Record::Reminded => ", reminded_at = COALESCE($3, now())",
        Record::CourtReminded => ", court_reminded_at = COALESCE($3, now())",
        Record::CourtDecision(_) => {
            ", court_decision_number = $4, court_decision_date = $5, court_decision_court = $6"
        }
    };
    let sql = format!(
        "UPDATE referrals SET status = $2, version = version + 1, updated_at = COALESCE($3, now()){set}
         WHERE id = $1 RETURNING {REFERRAL_COLUMNS}"
    );
    let q = sqlx::query_as::<_, ReferralRow>(&sql)
        .bind(id)
        .bind(t.to)
        .bind(at);
    let q = match &t.record {
        Record::Declined(reason, comment) => q.bind(*reason).bind(comment),
        Record::Withdrawn(reason, comment) => q.bind(*reason).bind(comment),
        Record::CourtDecision(d) => q.bind(&d.number).bind(d.date).bind(&d.court),
        Record::Status
        | Record::Acknowledged(_)
        | Record::Escalated
        | Record::Reminded
        | Record::CourtReminded => q,
    };
    q.fetch_one(conn).await
}

pub async fn record_acknowledgement(
    conn: &mut PgConnection,
    referral_id: Uuid,
    agency: Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE referral_parties SET acknowledged_at = COALESCE($3, now())
         WHERE referral_id = $1 AND agency_id = $2",
    )
    .bind(referral_id)
    .bind(agency)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn start_timers(
    conn: &mut PgConnection,
    referral_id: Uuid,
    timers: &[(Timer, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    let steps: Vec<&str> = timers.iter().map(|(t, _)| t.stored()).collect();
    let due: Vec<DateTime<Utc>> = timers.iter().map(|(_, at)| *at).collect();
    sqlx::query(
        "INSERT INTO referral_timers (referral_id, step, due_at)
         SELECT $1, step, due_at FROM UNNEST($2::text[], $3::timestamptz[]) AS t (step, due_at)",
    )
    .bind(referral_id)
    .bind(&steps)
    .bind(&due)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn stop_timers(
    conn: &mut PgConnection,
    referral_id: Uuid,
    timers: &[Timer],
) -> Result<(), sqlx::Error> {
    if timers.is_empty() {
        return Ok(());
    }
    let steps: Vec<&str> = timers.iter().map(|t| t.stored()).collect();
    sqlx::query("DELETE FROM referral_timers WHERE referral_id = $1 AND step = ANY($2)")
        .bind(referral_id)
        .bind(&steps)
        .execute(conn)
        .await?;
    Ok(())
}

/// Up to `limit` timers due by `now` (`None`: the database's `now()`), earliest first, each with its due
/// time, claimed for this transaction (another instance skips them). A timer this release does not know
/// is an error, not a skip.
pub async fn claim_due_timers(
    conn: &mut PgConnection,
    limit: i64,
    now: Option<DateTime<Utc>>,
) -> Result<Vec<(Uuid, Timer, DateTime<Utc>)>, sqlx::Error> {
    let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT referral_id, step, due_at FROM referral_timers WHERE due_at <= COALESCE($2, now())
         ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, step, due)| {
            Timer::from_stored(&step)
                .map(|t| (id, t, due))
                .ok_or_else(|| {
                    sqlx::Error::Decode(Box::new(placement_proto::stored::UnknownStoredName {
                        kind: "referral timer",
                        value: step.clone(),
                    }))
                })
        })
        .collect()
}

/// What this service last heard of a service's free places; only a newer figure replaces it.
pub async fn note_free_places(
    conn: &mut PgConnection,
    service_id: Uuid,
    free_places: i32,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO service_places (service_id, free_places, version) VALUES ($1, $2, $3)
         ON CONFLICT (service_id) DO UPDATE SET free_places = EXCLUDED.free_places,
             version = EXCLUDED.version, updated_at = now()
         WHERE service_places.version < EXCLUDED.version",
    )
    .bind(service_id)
    .bind(free_places)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Free places as the directory last announced them (the row locked), and the places of acceptances the
/// directory has not applied yet.
pub async fn free_places_of(
    conn: &mut PgConnection,
    service_id: Uuid,
) -> Result<Option<(i32, i64)>, sqlx::Error> {
    let announced: Option<i32> = sqlx::query_scalar(
        "SELECT free_places FROM service_places WHERE service_id = $1 FOR UPDATE",
    )
    .bind(service_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(announced) = announced else {
        return Ok(None);
    };
    let pending: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(places), 0) FROM referrals
         WHERE service_id = $1 AND NOT hold_applied AND status IN ($2, $3)",
    )
    .bind(service_id)
    .bind(ReferralStatus::Accepted)
    .bind(ReferralStatus::Placed)
    .fetch_one(conn)
    .await?;
    Ok(Some((announced, pending)))
}

/// A submitted referral, as stored.
pub struct NewReferral<'a> {
    pub id: Uuid,
    pub case_id: Uuid,
    pub sender: Uuid,
    pub sender_region: &'a str,
    pub service_id: Uuid,
    pub provider: Uuid,
    pub region_code: &'a str,
    pub foster_team: Uuid,
    pub rdsa: Option<Uuid>,
    pub places: i32,
    pub legal_basis_kind: LegalBasisKind,
    pub legal_basis_number: &'a str,
    pub legal_basis_date: NaiveDate,
    pub legal_basis_court: &'a str,
    pub reason: &'a str,
    pub ack_deadline: DateTime<Utc>,
    pub idempotency_key: &'a str,
    /// Its submission time; `None` for the database's clock.
    pub at: Option<DateTime<Utc>>,
    pub ages: crate::referral::ChildrenAges,
}

/// Stores a new referral as SUBMITTED; `None` when the sender already used its idempotency key.
pub async fn insert_referral(
    conn: &mut PgConnection,
    r: &NewReferral<'_>,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO referrals (id, case_id, sender_agency_id, sender_region_code, service_id,
             receiving_agency_id, receiving_region_code, foster_team_agency_id, receiving_rdsa_agency_id,
             places, legal_basis_kind, legal_basis_number, legal_basis_date, legal_basis_court, reason,
             status, ack_deadline, idempotency_key, created_at, updated_at, youngest_child_age,
             oldest_child_age)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 COALESCE($19, now()), COALESCE($19, now()), $20, $21)
         ON CONFLICT (sender_agency_id, idempotency_key) DO NOTHING
         RETURNING {REFERRAL_COLUMNS}"
    ))
    .bind(r.id)
    .bind(r.case_id)
    .bind(r.sender)
    .bind(r.sender_region)
    .bind(r.service_id)
    .bind(r.provider)
    .bind(r.region_code)
    .bind(r.foster_team)
    .bind(r.rdsa)
    .bind(r.places)
    .bind(r.legal_basis_kind)
    .bind(r.legal_basis_number)
    .bind(r.legal_basis_date)
    .bind(r.legal_basis_court)
    .bind(r.reason)
    .bind(ReferralStatus::Submitted)
    .bind(r.ack_deadline)
    .bind(r.idempotency_key)
    .bind(r.at)
    .bind(i16::try_from(r.ages.youngest).unwrap_or(i16::MAX))
    .bind(i16::try_from(r.ages.oldest).unwrap_or(i16::MAX))
    .fetch_optional(conn)
    .await
}

/// Stores the agencies that must acknowledge a new referral.
pub async fn insert_parties(
    conn: &mut PgConnection,
    parties: &[PartyRow],
    created_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for p in parties {
        sqlx::query(
            "INSERT INTO referral_parties (referral_id, agency_id, receiving_provider, foster_care_team, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.referral_id)
        .bind(p.agency_id)
        .bind(p.receiving_provider)
        .bind(p.foster_care_team)
        .bind(created_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The district of an agency this service learnt of from the directory's events.
pub async fn region_of_agency(pool: &PgPool, agency: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT region_code FROM agencies WHERE id = $1")
        .bind(agency)
        .fetch_optional(pool)
        .await
}

/// The district of `agency` if it is an RDSA.
pub async fn region_of_rdsa(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT region_code FROM agencies WHERE id = $1 AND kind = $2")
        .bind(agency)
        .bind(AgencyKind::Rdsa)
        .fetch_optional(conn)
        .await
}

/// The earliest registered agency of `kind` in `region`, among those learnt from events.
pub async fn first_agency_of_kind(
    pool: &PgPool,
    region: &str,
    kind: AgencyKind,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM agencies WHERE region_code = $1 AND kind = $2 ORDER BY id LIMIT 1",
    )
    .bind(region)
    .bind(kind)
    .fetch_optional(pool)
    .await
}

/// Remembers an agency registered in the directory (its kind and district).
pub async fn remember_agency(
    conn: &mut PgConnection,
    id: Uuid,
    kind: AgencyKind,
    region_code: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO agencies (id, kind, region_code) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(kind)
    .bind(region_code)
    .execute(conn)
    .await?;
    Ok(())
}

/// Notes that the directory holds the places of `referral_id`.
pub async fn note_hold_applied(
    conn: &mut PgConnection,
    referral_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE referrals SET hold_applied = true WHERE id = $1")
        .bind(referral_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find_by_idempotency_key(
    pool: &PgPool,
    sender: Uuid,
    key: &str,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE sender_agency_id = $1 AND idempotency_key = $2"
    ))
    .bind(sender)
    .bind(key)
    .fetch_optional(pool)
    .await
}

/// Which referrals a list shows: those an agency sent, or those it is a party to.
pub struct ReferralFilter {
    pub agency: Uuid,
    pub incoming: bool,
    pub status: Option<ReferralStatus>,
    /// Only those created before this (time, id), newest first.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Up to `limit` referrals whose last change is after `after` (time, id), oldest change first.
pub async fn referral_changes(
    conn: &mut PgConnection,
    after: (DateTime<Utc>, Uuid),
    limit: i64,
) -> Result<Vec<ReferralRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE (updated_at, id) > ($1, $2)
         ORDER BY updated_at, id LIMIT $3"
    ))
    .bind(after.0)
    .bind(after.1)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn list_referrals(
    conn: &mut PgConnection,
    filter: &ReferralFilter,
) -> Result<Vec<ReferralRow>, sqlx::Error> {
    let columns = REFERRAL_COLUMNS
        .split(", ")
        .map(|c| format!("r.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {columns} FROM referrals r "));
    if filter.incoming {
        q.push("JOIN referral_parties p ON p.referral_id = r.id WHERE p.agency_id = ")
            .push_bind(filter.agency);
    } else {
        q.push("WHERE r.sender_agency_id = ")
            .push_bind(filter.agency);
    }
    if let Some(status) = filter.status {
        q.push(" AND r.status = ").push_bind(status);
    }
    if let Some((at, id)) = filter.before {
        q.push(" AND (r.created_at, r.id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY r.created_at DESC, r.id DESC LIMIT ")
        .push_bind(filter.limit);
    q.build_query_as().fetch_all(conn).await
}

/// Referrals still waiting for an acknowledgement past its deadline (escalated or not), for the metrics.
/// The status is written out, not bound, so that the partial index `referrals_unacknowledged` serves it.
pub async fn count_overdue(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM referrals
          WHERE status = 'REFERRAL_STATUS_SUBMITTED' AND ack_deadline < now()",
    )
    .fetch_one(pool)
    .await
}

#[cfg(test)]
mod tests;
