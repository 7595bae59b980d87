//! A search: one request for a case's children sent to several services at once, each as a referral of
//! its own, in rounds. This module holds what the features share of it (its row and its SQL), how it is
//! shown, and when it runs out; submitting or extending one is `submission`'s, reading one `reading`'s,
//! and the steps that touch several of its referrals `steps'`.
//!
//! A search runs out when no request of it keeps it open (see [`model::keeps_search_open`]): every one was
//! declined, withdrawn, or passed its deadline, and none placed. That is decided after every step and
//! timer of one of its referrals, in the step's transaction, with the search's row locked, so two steps
//! racing decide one after the other and the round is told once ("search.exhausted").

pub mod model;
pub mod store;

use chrono::{DateTime, Utc};
use placement_messaging::{Event, Outbox};
use placement_platform::error::ServiceResult;
use placement_proto::v1::Search;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    EVENTS,
    places::{self, model::FitQuery},
    record::{model::ReferralRow, store::assemble},
};
use model::SearchRow;

/// After a step or timer on a referral of the search `search_id` (whose row the transaction has locked,
/// or locks here): the search runs out when nothing keeps it open any more, and waits again when an offer
/// came after it ran out.
pub async fn settle(
    conn: &mut PgConnection,
    search_id: Uuid,
    correlation: Uuid,
    at: Option<DateTime<Utc>>,
) -> ServiceResult<()> {
    let Some(search) = store::lock_search(conn, search_id).await? else {
        return Ok(());
    };
    let rows = store::referrals_of(conn, search_id).await?;
    let open = rows.iter().any(model::keeps_search_open);
    match (search.exhausted_at.is_some(), open) {
        (false, false) => exhaust(conn, &search, &rows, correlation, at).await,
        (true, true) => Ok(store::reopen(conn, search_id).await?),
        (false, true) | (true, false) => Ok(()),
    }
}

/// Records that the search's round ran out and, the first time, announces it with the services that fit
/// now.
async fn exhaust(
    conn: &mut PgConnection,
    search: &SearchRow,
    rows: &[ReferralRow],
    correlation: Uuid,
    at: Option<DateTime<Utc>>,
) -> ServiceResult<()> {
    let suggested = suggestions(conn, search, rows).await?;
    let (row, first) = store::record_exhausted(conn, search.id, at, &suggested).await?;
    if !first {
        return Ok(());
    }
    let event = crate::at_step(
        EVENTS.build(
            Event::SearchExhausted(row.exhausted_event(&suggested, rows)),
            row.id,
            placement_platform::numbers::serial(row.version),
            correlation,
        ),
        row.exhausted_at.unwrap_or_else(Utc::now),
    );
    Outbox::enqueue(conn, &event).await?;
    tracing::info!(search_id = %row.id, round = row.round, suggested = suggested.len(), "search exhausted");
    Ok(())
}

/// The services that fit the search's children now, in its districts and of its types, not asked yet.
pub async fn suggestions(
    conn: &mut PgConnection,
    search: &SearchRow,
    rows: &[ReferralRow],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let Some(sought) = search.sought(rows) else {
        return Ok(Vec::new());
    };
    let fitting = places::fitting(
        conn,
        &FitQuery {
            types: &search.service_types,
            districts: &sought.districts,
            places: sought.places,
            ages: sought.ages,
            except: &sought.asked,
        },
    )
    .await?;
    Ok(fitting.into_iter().map(|s| s.service_id).collect())
}

/// The search as its sender sees it: every referral, the districts it looks in, and while it is
/// exhausted the services that fit now (worked out on each read, so they are current).
pub async fn view(
    conn: &mut PgConnection,
    search: SearchRow,
    rows: Vec<ReferralRow>,
) -> Result<Search, sqlx::Error> {
    let suggested = match search.exhausted_at {
        Some(_) => suggestions(conn, &search, &rows).await?,
        None => Vec::new(),
    };
    let districts = search
        .sought(&rows)
        .map(|s| s.districts)
        .unwrap_or_else(|| search.region_codes.clone());
    let referrals = assemble(conn, rows).await?;
    Ok(search.into_proto(referrals, districts, suggested))
}
