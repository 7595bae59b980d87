//! Referral rows, their parties and history, and their wire and event forms.

use chrono::{DateTime, NaiveDate, Utc};
use placement_platform::time::{court_application_due, date, opt_timestamp, timestamp};
use placement_proto::v1::{
    Acknowledgement, DeclineReason, LegalBasis, LegalBasisKind, Referral, ReferralAction,
    ReferralEvent, ReferralHistoryEntry, ReferralStatus, WithdrawReason,
};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::referral::ReferralState;

pub const REFERRAL_COLUMNS: &str = "id, case_id, sender_agency_id, sender_region_code, service_id, \
     receiving_agency_id, receiving_region_code, foster_team_agency_id, receiving_rdsa_agency_id, places, \
     legal_basis_kind, legal_basis_number, legal_basis_date, legal_basis_court, reason, status, ack_deadline, \
     escalated_at, decline_reason, withdraw_reason, resolution_comment, idempotency_key, created_at, \
     updated_at, version, reminded_at, court_reminded_at, court_decision_number, court_decision_date, \
     court_decision_court";

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
    pub legal_basis_kind: String,
    pub legal_basis_number: String,
    pub legal_basis_date: NaiveDate,
    pub legal_basis_court: String,
    pub reason: String,
    pub status: String,
    pub ack_deadline: DateTime<Utc>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub decline_reason: Option<String>,
    pub withdraw_reason: Option<String>,
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
    pub action: String,
    pub from_status: String,
    pub to_status: String,
    pub actor_agency_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

fn status_of(s: &str) -> ReferralStatus {
    ReferralStatus::from_str_name(s).unwrap_or(ReferralStatus::Unspecified)
}

impl ReferralRow {
    pub fn status(&self) -> ReferralStatus {
        status_of(&self.status)
    }

    /// Whether `agency` may see this referral: the sender, a required acknowledger, or the receiving
    /// district's RDSA.
    pub fn visible_to(&self, agency: Uuid, parties: &[PartyRow]) -> bool {
        agency == self.sender_agency_id
            || self.receiving_rdsa_agency_id == Some(agency)
            || parties.iter().any(|p| p.agency_id == agency)
    }

    pub fn state(&self, parties: &[PartyRow]) -> ReferralState {
        ReferralState {
            status: self.status(),
            sender: self.sender_agency_id,
            receiving_agency: self.receiving_agency_id,
            parties: parties
                .iter()
                .map(|p| (p.agency_id, p.acknowledged_at.is_some()))
                .collect(),
            escalated: self.escalated_at.is_some(),
            reminded: self.reminded_at.is_some(),
            awaiting_court: self.rests_on_order() && self.court_decision_date.is_none(),
            court_reminded: self.court_reminded_at.is_some(),
        }
    }

    pub fn rests_on_order(&self) -> bool {
        self.legal_basis_kind == LegalBasisKind::DsaDirectorOrder.as_str_name()
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
                kind: LegalBasisKind::from_str_name(&self.legal_basis_kind)
                    .unwrap_or(LegalBasisKind::Unspecified) as i32,
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
            decline_reason: self
                .decline_reason
                .as_deref()
                .and_then(DeclineReason::from_str_name)
                .unwrap_or(DeclineReason::Unspecified) as i32,
            withdraw_reason: self
                .withdraw_reason
                .as_deref()
                .and_then(WithdrawReason::from_str_name)
                .unwrap_or(WithdrawReason::Unspecified) as i32,
            resolution_comment: self.resolution_comment.clone(),
            history: history
                .into_iter()
                .map(|h| ReferralHistoryEntry {
                    action: ReferralAction::from_str_name(&h.action)
                        .unwrap_or(ReferralAction::Unspecified) as i32,
                    from_status: status_of(&h.from_status) as i32,
                    to_status: status_of(&h.to_status) as i32,
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
            legal_basis_kind: LegalBasisKind::from_str_name(&self.legal_basis_kind)
                .unwrap_or(LegalBasisKind::Unspecified) as i32,
            outstanding_agency_ids: outstanding.iter().map(Uuid::to_string).collect(),
            order_issued_on: self.rests_on_order().then(|| date(self.legal_basis_date)),
        }
    }
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
    .bind(action.as_str_name())
    .bind(from.as_str_name())
    .bind(row.status().as_str_name())
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
    action: String,
    from_status: String,
    to_status: String,
}

/// Assembles full referrals from rows, loading their parties and history in one query.
pub async fn assemble(
    conn: &mut PgConnection,
    rows: Vec<ReferralRow>,
) -> Result<Vec<Referral>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let parts: Vec<PartOfReferral> = sqlx::query_as(
        "SELECT referral_id, true AS is_party, agency_id, receiving_provider, foster_care_team,
                acknowledged_at AS at, 0::bigint AS version, '' AS action, '' AS from_status, '' AS to_status
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
        } else if let Some(at) = part.at {
            history.push(HistoryRow {
                referral_id: part.referral_id,
                version: part.version,
                action: part.action,
                from_status: part.from_status,
                to_status: part.to_status,
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
