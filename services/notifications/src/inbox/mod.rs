//! An agency's inbox: the notifications it was sent, listed newest first with their deliveries, marked
//! read by its staff, and watched as they arrive ([`watch`]).

pub mod model;
pub(crate) mod store;
pub mod told;
pub mod watch;

use std::collections::{HashMap, HashSet};

use placement_messaging::{EventType, HandleError, IncomingEvent};
use placement_platform::{error::ServiceResult, page::take_page};
use placement_proto::v1::{
    Delivery, Language, ListNotificationsResponse, Notification, NotificationKind,
};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    deliveries::{
        FanOut,
        model::{Content, NewNotifications, Recipient},
        store::deliveries_of,
    },
    names::model::NameBook,
};

pub use model::{Added, Arrival, Arrivals, InboxError};
use told::Stored;
pub use told::Told;

/// A notice to one agency about no referral's step (a digest, a search that ran out): its facts, worded
/// when it is shown, and what its e-mails and webhooks say.
pub struct OneNotice<'a> {
    pub agency: Uuid,
    pub kind: NotificationKind,
    pub event_type: EventType,
    pub told: &'a Told,
    /// The names its words need.
    pub names: &'a NameBook,
    pub content: Content<'a>,
}

/// Puts `notice` in its agency's inbox and makes its e-mail and webhook deliveries: once per event, as
/// every notice.
pub async fn tell_one(
    fan_out: &FanOut,
    tx: &mut Transaction<'_, Postgres>,
    notice: OneNotice<'_>,
    event: &IncomingEvent,
) -> Result<Added, HandleError> {
    let (notification, agency) = (Uuid::now_v7(), notice.agency);
    let id = event.event_id();
    store::insert_notice(
        tx,
        notification,
        agency,
        notice.kind,
        id,
        &Stored::of(notice.told, notice.kind, notice.names),
    )
    .await?;
    let recipients = [Recipient {
        notification,
        agency,
    }];
    let new = NewNotifications {
        recipients: &recipients,
        event_type: notice.event_type.as_str(),
        event_id: id,
        occurred_at: event.occurred_at(),
        referral_id: None,
    };
    let deliveries = fan_out.create(tx, &new, &notice.content).await?;
    Ok(Added {
        notifications: vec![Arrival {
            agency,
            notification: None,
        }],
        deliveries,
    })
}

/// One page of the agency's notifications, newest first, before sequence `before`, each with its
/// deliveries, worded in `language`.
pub async fn list(
    pool: &PgPool,
    agency: Uuid,
    unread_only: bool,
    before: Option<i64>,
    limit: i64,
    language: Language,
) -> ServiceResult<ListNotificationsResponse> {
    let mut rows = store::list_notifications(pool, agency, unread_only, before, limit + 1).await?;
    let next_page_token = take_page(&mut rows, limit, |r| r.sequence.to_string());
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let deliveries = deliveries_of(pool, &ids).await?;
    let told: Vec<Told> = rows.iter().filter_map(|r| r.told()).collect();
    let names = crate::names::book_of(pool, told.iter().flat_map(Told::named_ids)).await?;
    let mut by_notification: HashMap<Uuid, Vec<Delivery>> = HashMap::new();
    for d in deliveries {
        by_notification
            .entry(d.notification_id)
            .or_default()
            .push(d.into_proto());
    }
    Ok(ListNotificationsResponse {
        notifications: rows
            .into_iter()
            .map(|r| {
                let deliveries = by_notification.remove(&r.id).unwrap_or_default();
                Notification {
                    deliveries,
                    ..r.to_proto(&names, language)
                }
            })
            .collect(),
        next_page_token,
    })
}

/// Marks the agency's notifications `ids` read, all or none; returns how many were unread.
pub async fn mark_read(pool: &PgPool, agency: Uuid, ids: &[Uuid]) -> ServiceResult<u64> {
    let mut tx = placement_platform::db::begin(pool).await?;
    let mine = store::count_received(&mut tx, ids, agency).await?;
    let distinct = placement_platform::numbers::len_i64(ids.iter().collect::<HashSet<_>>().len());
    if mine != distinct {
        // Another agency's notifications and unknown ids look alike.
        return Err(InboxError::NotificationNotFound.into());
    }
    let marked = store::mark_read(&mut tx, ids, agency).await?;
    tx.commit().await?;
    Ok(marked)
}
