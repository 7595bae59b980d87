//! Deliveries by e-mail and webhook.
//!
//! A delivery is created with its notification, in the same transaction, for each enabled endpoint of the
//! recipient that wants the event; it is rendered then, so what is sent is fixed and every retry sends the
//! same. The dispatcher claims due deliveries with `FOR UPDATE SKIP LOCKED` (any number of instances), pushes
//! each a lease ahead, commits, sends outside any transaction, then records the attempt. A sender that dies
//! mid-attempt leaves the delivery due again when the lease ends; the webhook's `webhook-id` and the e-mail's
//! `Message-ID` stay the same on every attempt, so receivers can drop the rare duplicate.
//!
//! Failures are retried with exponential backoff and jitter until the delivery's retry window ends (26 hours
//! by default); then the delivery is FAILED, its endpoint disabled, the directory told
//! ("notification.endpoint_disabled"), and the agency told in its inbox and by its other endpoints. A
//! webhook whose target is not allowed (see [`egress`]) is not called and goes that way at once.

pub mod dispatch;
pub mod egress;
pub mod model;
pub(crate) mod store;

use std::time::Duration;

use placement_platform::error::ServiceResult;
use placement_proto::v1::DeliveryStatus;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    channel::Channel,
    digest::model::digest_email,
    endpoints::{model::DeliveryTarget, store::endpoints_wanting},
    inbox::store::is_recipient,
    policy::DeliveryScope,
    referrals::email::referral_email,
    searches::model::exhausted_email,
};
use model::{
    Content, DeliveryError, DeliveryRow, NewDelivery, NewNotifications, Recipient, RetryPolicy,
};

/// What creating deliveries needs to know.
#[derive(Debug, Clone)]
pub struct FanOut {
    /// Where links in e-mails point.
    pub public_url: String,
    pub retry: RetryPolicy,
}

impl FanOut {
    /// Creates the deliveries of new notifications, in the caller's transaction; returns how many. One
    /// query finds the endpoints of every recipient.
    pub async fn create(
        &self,
        conn: &mut PgConnection,
        n: &NewNotifications<'_>,
        content: &Content<'_>,
    ) -> Result<usize, sqlx::Error> {
        let agencies: Vec<Uuid> = n.recipients.iter().map(|r| r.agency).collect();
        let endpoints = endpoints_wanting(conn, &agencies, n.event_type).await?;
        self.deliver(conn, n, &endpoints, content).await
    }

    /// Creates the deliveries of new notifications to `endpoints` (those of their recipients that want
    /// the event), in the caller's transaction; returns how many.
    pub async fn deliver(
        &self,
        conn: &mut PgConnection,
        n: &NewNotifications<'_>,
        endpoints: &[DeliveryTarget],
        content: &Content<'_>,
    ) -> Result<usize, sqlx::Error> {
        let window = chrono::Duration::from_std(self.retry.window).unwrap_or(chrono::Duration::MAX);
        for endpoint in endpoints {
            let Some(&Recipient {
                notification,
                agency,
            }) = n.recipients.iter().find(|r| r.agency == endpoint.agency_id)
            else {
                continue;
            };
            let language = endpoint.language;
            let (subject, body) = if endpoint.channel == Channel::Webhook {
                (
                    String::new(),
                    model::webhook_body(
                        n.event_type,
                        n.occurred_at,
                        n.event_id,
                        model::WebhookRecord {
                            referral_id: n.referral_id,
                            search_id: content.search_id(),
                            reference: content.reference(),
                        },
                        notification,
                        agency,
                    ),
                )
            } else {
                match content {
                    Content::Referral {
                        kind, facts, names, ..
                    } => referral_email(*kind, facts, names, language, &self.public_url),
                    Content::EndpointDisabled(facts) => {
                        model::endpoint_disabled_email(facts, language)
                    }
                    Content::Digest { digest, names } => {
                        digest_email(digest, names, language, &self.public_url)
                    }
                    Content::SearchExhausted(e) => exhausted_email(e, language, &self.public_url),
                }
            };
            store::insert_delivery(
                conn,
                &NewDelivery {
                    notification,
                    endpoint,
                    subject: &subject,
                    body: &body,
                    window,
                },
            )
            .await?;
        }
        Ok(endpoints.len())
    }
}

/// The deliveries to list: of one notification or of all, in one status or any, before `after`.
pub struct DeliveryQuery {
    pub notification: Option<Uuid>,
    pub status: DeliveryStatus,
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// Deliveries, newest first, as far as the caller's scope reaches: the operators' every delivery, an
/// agency's those of one of its own notifications.
pub async fn list(
    pool: &PgPool,
    scope: DeliveryScope,
    agency: Uuid,
    q: &DeliveryQuery,
) -> ServiceResult<Vec<DeliveryRow>> {
    if scope == DeliveryScope::OwnNotifications {
        let id = q.notification.ok_or(DeliveryError::NotificationUnnamed)?;
        if !is_recipient(pool, id, agency).await? {
            return Err(DeliveryError::NotificationNotFound.into());
        }
    }
    Ok(store::list_deliveries(pool, q.notification, q.status, q.after, q.limit).await?)
}

/// Makes a FAILED delivery to an enabled endpoint due again at once, tried for `window` more, and wakes
/// the dispatcher.
pub async fn retry(
    pool: &PgPool,
    id: Uuid,
    window: Duration,
    dispatcher: &Notify,
) -> ServiceResult<DeliveryRow> {
    let mut tx = placement_platform::db::begin(pool).await?;
    let current = store::lock_delivery(&mut tx, id).await?;
    match current {
        None => return Err(DeliveryError::DeliveryNotFound.into()),
        Some((status, _)) if status != "FAILED" => {
            return Err(DeliveryError::NotFailed { status }.into());
        }
        Some((_, None)) => return Err(DeliveryError::EndpointRemoved.into()),
        Some((_, Some(false))) => return Err(DeliveryError::EndpointDisabled.into()),
        Some((_, Some(true))) => {}
    }
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let row = store::retry_delivery(&mut tx, id, window).await?;
    tx.commit().await?;
    dispatcher.notify_one();
    tracing::info!(delivery_id = %id, "delivery retried by an operator");
    Ok(row)
}

/// Sets the gauge of deliveries waiting, by channel (a channel with none waiting shows 0).
pub async fn sample_pending(pool: PgPool) {
    let Ok(pending) = store::count_pending_deliveries(&pool).await else {
        return;
    };
    for channel in [model::WEBHOOK, model::EMAIL] {
        let n = pending
            .iter()
            .find(|(c, _)| c == channel)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!(placement_platform::prometheus::DELIVERIES_PENDING, "channel" => channel)
            .set(placement_messaging::gauges::as_f64(
                u64::try_from(n).unwrap_or(0),
            ));
    }
}
