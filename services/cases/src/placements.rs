//! What the case learns from referral events: which referrals are in progress (so the case is not closed
//! under them) and, when one is placed, where the children live now.

use placement_messaging::{EventHandler, EventType, HandleError, IncomingEvent, Outbox};
use placement_proto::v1::{CaseStatus, ReferralEvent};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    EVENTS,
    store::{CASE_COLUMNS, CaseRow, child_count},
};

pub const BINDINGS: &[&str] = &[
    EventType::ReferralSubmitted.as_str(),
    EventType::ReferralDeclined.as_str(),
    EventType::ReferralWithdrawn.as_str(),
    EventType::ReferralPlaced.as_str(),
];

pub struct CasePlacements;

impl EventHandler for CasePlacements {
    type Applied = ();

    async fn handle(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        let event_type = event.event_type();
        let active = match event_type {
            EventType::ReferralSubmitted => true,
            EventType::ReferralDeclined
            | EventType::ReferralWithdrawn
            | EventType::ReferralPlaced => false,
            other => {
                return Err(HandleError::permanent(format!(
                    "unexpected event type {other}"
                )));
            }
        };
        let referral: ReferralEvent = event.payload()?;
        let referral_id = parse(&referral.referral_id, "referral_id")?;
        let case_id = parse(&referral.case_id, "case_id")?;
        let version = i64::try_from(event.envelope.aggregate_version)
            .map_err(|_| HandleError::permanent("aggregate_version beyond BIGINT"))?;

        let exists: Option<i64> =
            sqlx::query_scalar("SELECT version FROM cases WHERE id = $1 FOR UPDATE")
                .bind(case_id)
                .fetch_optional(&mut **tx)
                .await?;
        if exists.is_none() {
            return Err(HandleError::missing(format!("unknown case {case_id}")));
        }
        // Newer knowledge of the referral wins; an older event arriving late changes nothing.
        let applied = sqlx::query(
            "INSERT INTO case_referrals (referral_id, case_id, active, version, receiving_agency_id,
                                         foster_team_agency_id, open_or_placed)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (referral_id) DO UPDATE SET active = EXCLUDED.active, version = EXCLUDED.version,
                 receiving_agency_id = EXCLUDED.receiving_agency_id,
                 foster_team_agency_id = EXCLUDED.foster_team_agency_id,
                 open_or_placed = EXCLUDED.open_or_placed
             WHERE case_referrals.version < EXCLUDED.version",
        )
        .bind(referral_id)
        .bind(case_id)
        .bind(active)
        .bind(version)
        .bind(Uuid::parse_str(&referral.receiving_agency_id).ok())
        .bind(Uuid::parse_str(&referral.foster_care_team_agency_id).ok())
        // Open from submission; placed stays readable; declined or withdrawn is closed to the receiving side.
        .bind(matches!(event_type, EventType::ReferralSubmitted | EventType::ReferralPlaced))
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if applied == 0 || event_type != EventType::ReferralPlaced {
            return Ok(());
        }

        let row: CaseRow = sqlx::query_as(&format!(
            "UPDATE cases SET status = $2, placement_referral_id = $3, placement_service_id = $4,
                 placement_provider_agency_id = $5, placement_region_code = $6, placed_at = $7,
                 version = version + 1
             WHERE id = $1 RETURNING {CASE_COLUMNS}"
        ))
        .bind(case_id)
        .bind(CaseStatus::Placed)
        .bind(referral_id)
        .bind(parse(&referral.service_id, "service_id")?)
        .bind(parse(&referral.receiving_agency_id, "receiving_agency_id")?)
        .bind(&referral.receiving_region_code)
        .bind(
            event
                .envelope
                .occurred_at
                .as_ref()
                .and_then(placement_platform::time::from_timestamp)
                .unwrap_or_else(chrono::Utc::now),
        )
        .fetch_one(&mut **tx)
        .await?;
        let children = child_count(tx, case_id).await?;
        let announcement = EVENTS.build(
            EventType::CasePlaced,
            "case",
            case_id,
            placement_platform::numbers::serial(row.version),
            event.correlation_id(),
            &row.event(children),
        );
        Outbox::enqueue(tx, &announcement).await?;
        tracing::info!(%case_id, %referral_id, "case placed");
        Ok(())
    }
}

fn parse(value: &str, field: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(value).map_err(|_| HandleError::permanent(format!("{field} is not a UUID")))
}
