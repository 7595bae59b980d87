//! The copy of the directory's notification endpoints, kept from "agency.endpoints_changed": each event is
//! an agency's whole set under a version, applied only when newer than the one held.

pub mod model;
pub(crate) mod store;

use placement_messaging::HandleError;
use placement_proto::v1::{AgencyEndpointsChanged, Language, NotificationChannel};
use sqlx::{Postgres, Transaction};

use crate::{channel::Channel, deliveries::store::fail_pending};

/// Applies an agency's endpoint set when it is newer than the one held: endpoints kept are written,
/// and the pending deliveries to endpoints removed or disabled fail.
pub async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    set: &AgencyEndpointsChanged,
) -> Result<(), HandleError> {
    let agency = placement_messaging::payload_id("agency_id", &set.agency_id)?;
    let version = i64::try_from(set.endpoints_version).unwrap_or(i64::MAX);
    if !store::note_endpoint_set(tx, agency, version).await? {
        tracing::debug!(%agency, version = set.endpoints_version, "older endpoint set ignored");
        return Ok(());
    }
    let mut kept = Vec::with_capacity(set.endpoints.len());
    let mut off = Vec::new();
    for e in &set.endpoints {
        let id = placement_messaging::payload_id("endpoint_id", &e.endpoint_id)?;
        let channel = NotificationChannel::try_from(e.channel)
            .ok()
            .and_then(Channel::of_announced)
            .ok_or_else(|| HandleError::permanent("unknown notification channel"))?;
        let language = Language::try_from(e.language)
            .ok()
            .filter(|l| *l != Language::Unspecified)
            .unwrap_or(Language::Bg);
        store::upsert_endpoint(
            tx,
            &model::KnownEndpoint {
                id,
                agency,
                channel,
                address: &e.address,
                event_types: &e.event_types,
                language,
                enabled: e.enabled,
                secret_version: i32::try_from(e.secret_version).unwrap_or(i32::MAX),
            },
        )
        .await?;
        kept.push(id);
        if !e.enabled {
            off.push(id);
        }
    }
    let removed = store::remove_endpoints_except(tx, agency, &kept).await?;
    fail_pending(tx, &removed, "endpoint removed").await?;
    fail_pending(tx, &off, "endpoint disabled").await?;
    tracing::info!(%agency, version = set.endpoints_version, endpoints = kept.len(), "endpoint set applied");
    Ok(())
}
