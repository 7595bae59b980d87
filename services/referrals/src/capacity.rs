//! What this service keeps of the directory, from its events: the services' free places and which
//! acceptances the directory has applied (acceptance checks against these, see `workflow`), and the agencies'
//! kinds and districts (submission finds the parties with them, see `api`).

use placement_messaging::{EventHandler, HandleError, IncomingEvent, envelope::types};
use placement_proto::v1::{AgencyKind, AgencyRegistered, CapacityChange, ServiceCapacityChanged};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

pub const BINDINGS: &[&str] = &[
    types::SERVICE_REGISTERED,
    types::SERVICE_CAPACITY_CHANGED,
    types::AGENCY_REGISTERED,
];

pub struct ServicePlaces;

impl EventHandler for ServicePlaces {
    async fn handle(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        event: &IncomingEvent,
    ) -> Result<(), HandleError> {
        if !BINDINGS.contains(&event.event_type()) {
            return Err(HandleError::permanent(format!(
                "unexpected event type {}",
                event.event_type()
            )));
        }
        if event.event_type() == types::AGENCY_REGISTERED {
            let agency: AgencyRegistered = event.payload()?;
            let id = Uuid::parse_str(&agency.agency_id)
                .map_err(|_| HandleError::permanent("agency_id is not a UUID"))?;
            let kind = AgencyKind::try_from(agency.kind).unwrap_or(AgencyKind::Unspecified);
            sqlx::query(
                "INSERT INTO agencies (id, kind, region_code) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(kind.as_str_name())
            .bind(&agency.region_code)
            .execute(&mut **tx)
            .await?;
            return Ok(());
        }
        let change: ServiceCapacityChanged = event.payload()?;
        let service_id = Uuid::parse_str(&change.service_id)
            .map_err(|_| HandleError::permanent("service_id is not a UUID"))?;
        // Only a newer figure replaces the one we have.
        sqlx::query(
            "INSERT INTO service_places (service_id, free_places, version) VALUES ($1, $2, $3)
             ON CONFLICT (service_id) DO UPDATE SET free_places = EXCLUDED.free_places,
                 version = EXCLUDED.version, updated_at = now()
             WHERE service_places.version < EXCLUDED.version",
        )
        .bind(service_id)
        .bind(change.free_places as i32)
        .bind(event.envelope.aggregate_version as i64)
        .execute(&mut **tx)
        .await?;
        let applied_hold = matches!(
            CapacityChange::try_from(change.change),
            Ok(CapacityChange::Held | CapacityChange::Occupied)
        );
        if applied_hold && let Ok(referral_id) = Uuid::parse_str(&change.referral_id) {
            sqlx::query("UPDATE referrals SET hold_applied = true WHERE id = $1")
                .bind(referral_id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// Fills the agencies table from the directory when it is empty (a new installation, or agencies registered
/// before this service's queue existed); later registrations arrive as events. Retries until the directory
/// answers or shutdown.
pub async fn bootstrap_agencies(
    pool: sqlx::PgPool,
    mut directory: placement_proto::v1::directory_service_client::DirectoryServiceClient<
        tonic::transport::Channel,
    >,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use placement_proto::v1::{ListAgenciesRequest, PageRequest};
    let mut backoff = placement_platform::backoff::Backoff::default();
    loop {
        let attempt = async {
            let known: i64 = sqlx::query_scalar("SELECT count(*) FROM agencies")
                .fetch_one(&pool)
                .await
                .map_err(|e| e.to_string())?;
            if known > 0 {
                return Ok::<usize, String>(0);
            }
            let mut token = String::new();
            let mut copied = 0;
            loop {
                let page = directory
                    .list_agencies(ListAgenciesRequest {
                        page: Some(PageRequest {
                            page_size: 500,
                            page_token: token,
                        }),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                for a in &page.agencies {
                    let kind = AgencyKind::try_from(a.kind).unwrap_or(AgencyKind::Unspecified);
                    sqlx::query(
                        "INSERT INTO agencies (id, kind, region_code) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(Uuid::parse_str(&a.id).map_err(|e| e.to_string())?)
                    .bind(kind.as_str_name())
                    .bind(&a.region_code)
                    .execute(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                    copied += 1;
                }
                if page.next_page_token.is_empty() {
                    return Ok(copied);
                }
                token = page.next_page_token;
            }
        };
        match attempt.await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(agencies = n, "agencies copied from the directory");
                }
                return;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, ?delay, "cannot copy agencies from the directory yet");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}
