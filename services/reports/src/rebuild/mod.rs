//! The read model built from the source: every referral from `ListReferralChanges` (with its history) and
//! the RDSAs, DSAs and national authorities from `ListAgencies` and every service from `SearchServices`, written
//! exactly as the events write them (a step once per version, the newest version of a referral kept). So it
//! may run while events are applied, and whichever brings a change first, the other changes nothing: no
//! gap, no double count (docs/read-models.md). It runs at start when the model is empty, and when an
//! operator asks.

pub mod credential;
pub mod model;

use std::{sync::Arc, time::Duration};

use placement_messaging::service::Traced;
use placement_platform::backoff::Backoff;
use placement_proto::v1::{
    AgencyKind, ListAgenciesRequest, ListReferralChangesRequest, PageRequest,
    SearchServicesRequest, ServiceStatus, directory_service_client::DirectoryServiceClient,
    referral_service_client::ReferralServiceClient,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{agencies, places, steps, steps::store::DayCounts};
use credential::Credential;
pub use model::RebuildError;
use model::{parse, referral_now, service_now, step_of};

const PAGE: u32 = 500;

pub struct Source {
    pub referrals: ReferralServiceClient<Traced>,
    pub directory: DirectoryServiceClient<Traced>,
    pub credential: Credential,
}

impl Source {
    /// Reads every referral and the agencies reports need into the model; returns the referrals read.
    pub async fn rebuild(&self, pool: &PgPool) -> Result<u64, RebuildError> {
        self.agencies(pool).await?;
        self.services(pool).await?;
        let (mut pages, mut read) = (Pages::default(), 0u64);
        while let Some(page) = pages.next() {
            let asked = ListReferralChangesRequest {
                changed_after: None,
                page: Some(page),
            };
            let request = self.authorized(asked).await?;
            let listed = (self.referrals.clone())
                .list_referral_changes(request)
                .await?
                .into_inner();
            let mut tx = placement_platform::db::begin(pool).await?;
            let mut new_steps = vec![];
            for r in &listed.referrals {
                let referral = referral_now(r)?;
                if r.history.is_empty() {
                    steps::store::note(&mut tx, &referral, None, DayCounts::Later).await?;
                }
                // Each entry as an event brings its step, with the referral as it stands now: the
                // first entry keeps the referral (when newer), each new step marks its milestones.
                for entry in &r.history {
                    let step = step_of(r, entry)?;
                    if steps::store::note(&mut tx, &referral, Some(&step), DayCounts::Later).await?
                    {
                        new_steps.push(step);
                    }
                }
            }
            // Counted once for the page, after its referrals: see `steps::store::count_steps`.
            steps::store::count_steps(&mut tx, &new_steps).await?;
            tx.commit().await?;
            read += listed.referrals.len() as u64;
            pages.after(listed.next_page_token);
        }
        Ok(read)
    }

    async fn agencies(&self, pool: &PgPool) -> Result<(), RebuildError> {
        for kind in [
            AgencyKind::Rdsa,
            AgencyKind::Dsa,
            AgencyKind::NationalAuthority,
        ] {
            let mut pages = Pages::default();
            while let Some(page) = pages.next() {
                let asked = ListAgenciesRequest {
                    region_code: String::new(),
                    kind: kind as i32,
                    page: Some(page),
                };
                let request = self.authorized(asked).await?;
                let listed = self
                    .directory
                    .clone()
                    .list_agencies(request)
                    .await?
                    .into_inner();
                let mut tx = placement_platform::db::begin(pool).await?;
                for a in &listed.agencies {
                    agencies::store::note_agency(
                        &mut tx,
                        parse(&a.id, "agency id")?,
                        kind,
                        &a.region_code,
                    )
                    .await?;
                }
                tx.commit().await?;
                pages.after(listed.next_page_token);
            }
        }
        Ok(())
    }

    /// Every service of the directory, in each status, with its places now.
    async fn services(&self, pool: &PgPool) -> Result<(), RebuildError> {
        for status in [
            ServiceStatus::Active,
            ServiceStatus::Suspended,
            ServiceStatus::Closed,
        ] {
            let mut pages = Pages::default();
            while let Some(page) = pages.next() {
                let asked = SearchServicesRequest {
                    status: status as i32,
                    page: Some(page),
                    ..Default::default()
                };
                let request = self.authorized(asked).await?;
                let listed = self
                    .directory
                    .clone()
                    .search_services(request)
                    .await?
                    .into_inner();
                let mut tx = placement_platform::db::begin(pool).await?;
                for s in &listed.services {
                    places::store::note_service(&mut tx, &service_now(s)?).await?;
                }
                tx.commit().await?;
                pages.after(listed.next_page_token);
            }
        }
        Ok(())
    }

    /// `message` with the reports' own credential.
    async fn authorized<T>(&self, message: T) -> Result<tonic::Request<T>, RebuildError> {
        self.credential
            .request(message)
            .await?
            .ok_or(RebuildError::NoCredential)
    }
}

/// Where a listing of the source has got to: the page to ask for next, none after the last.
#[derive(Default)]
struct Pages {
    token: String,
    done: bool,
}

impl Pages {
    fn next(&self) -> Option<PageRequest> {
        (!self.done).then(|| PageRequest {
            page_size: PAGE,
            page_token: self.token.clone(),
        })
    }

    /// The page read said this of the next one (empty: it was the last).
    fn after(&mut self, next_page_token: String) {
        self.done = next_page_token.is_empty();
        self.token = next_page_token;
    }
}

/// At start: when the model holds no referral, builds it, trying again with backoff until it is done or the
/// service stops. Without a credential it says so and relies on the events alone.
pub async fn at_start(source: Arc<Source>, pool: PgPool, shutdown: CancellationToken) {
    if matches!(source.credential, Credential::None) {
        tracing::warn!(
            "no PLACEMENT_REPORTS_TOKEN_URL: the figures are built from the events alone, never rebuilt from the referrals service"
        );
        return;
    }
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        match steps::store::is_empty(&pool).await {
            Ok(false) => return,
            Ok(true) => match source.rebuild(&pool).await {
                Ok(read) => {
                    tracing::info!(
                        referrals = read,
                        "read model built from the referrals service"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "building the read model failed; trying again")
                }
            },
            Err(e) => tracing::warn!(error = %e, "the read model cannot be read; trying again"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
