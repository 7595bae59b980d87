//! The copy of the directory's notification endpoints, kept from "agency.endpoints_changed": each event is
//! an agency's whole set under a version, applied only when newer than the one held.

use placement_messaging::{HandleError, IncomingEvent};
use placement_proto::v1::{AgencyEndpointsChanged, Language, NotificationChannel};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::delivery::{EMAIL, WEBHOOK, fail_pending};

pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    event: &IncomingEvent,
) -> Result<(), HandleError> {
    let set: AgencyEndpointsChanged = event.payload()?;
    let agency = Uuid::parse_str(&set.agency_id)
        .map_err(|_| HandleError::permanent("agency_id is not a UUID"))?;
    let newer: Option<i64> = sqlx::query_scalar(
        "INSERT INTO endpoint_sets (agency_id, version) VALUES ($1, $2)
         ON CONFLICT (agency_id) DO UPDATE SET version = EXCLUDED.version
         WHERE endpoint_sets.version < EXCLUDED.version
         RETURNING version",
    )
    .bind(agency)
    .bind(i64::try_from(set.endpoints_version).unwrap_or(i64::MAX))
    .fetch_optional(&mut **tx)
    .await?;
    if newer.is_none() {
        tracing::debug!(%agency, version = set.endpoints_version, "older endpoint set ignored");
        return Ok(());
    }
    let mut kept = Vec::with_capacity(set.endpoints.len());
    let mut off = Vec::new();
    for e in &set.endpoints {
        let id = Uuid::parse_str(&e.endpoint_id)
            .map_err(|_| HandleError::permanent("endpoint_id is not a UUID"))?;
        let channel = match NotificationChannel::try_from(e.channel) {
            Ok(NotificationChannel::Email) => EMAIL,
            Ok(NotificationChannel::Webhook) => WEBHOOK,
            _ => return Err(HandleError::permanent("unknown notification channel")),
        };
        let language = Language::try_from(e.language)
            .ok()
            .filter(|l| *l != Language::Unspecified)
            .unwrap_or(Language::Bg);
        sqlx::query(
            "INSERT INTO endpoints (id, agency_id, channel, address, event_types, language, enabled, secret_version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET channel = EXCLUDED.channel, address = EXCLUDED.address,
                 event_types = EXCLUDED.event_types, language = EXCLUDED.language,
                 enabled = EXCLUDED.enabled, secret_version = EXCLUDED.secret_version, updated_at = now()",
        )
        .bind(id)
        .bind(agency)
        .bind(channel)
        .bind(&e.address)
        .bind(&e.event_types)
        .bind(language)
        .bind(e.enabled)
        .bind(i32::try_from(e.secret_version).unwrap_or(i32::MAX))
        .execute(&mut **tx)
        .await?;
        kept.push(id);
        if !e.enabled {
            off.push(id);
        }
    }
    let removed: Vec<Uuid> = sqlx::query_scalar(
        "DELETE FROM endpoints WHERE agency_id = $1 AND NOT (id = ANY ($2)) RETURNING id",
    )
    .bind(agency)
    .bind(&kept)
    .fetch_all(&mut **tx)
    .await?;
    fail_pending(tx, &removed, "endpoint removed").await?;
    fail_pending(tx, &off, "endpoint disabled").await?;
    tracing::info!(%agency, version = set.endpoints_version, endpoints = kept.len(), "endpoint set applied");
    Ok(())
}
