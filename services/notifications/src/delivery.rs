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
//! webhook whose target is not allowed (see [`crate::egress`]) is not called and goes that way at once.

use std::{sync::Arc, time::Duration};
use tracing::Instrument;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};
use placement_messaging::{Event, EventBuilder, EventType, Outbox};
use placement_platform::{
    error::ServiceError,
    webhook::{AllowedTargets, derive_secret},
};
use placement_proto::v1::{EndpointDisabled, NotificationKind, ReferralEvent};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    arrivals::{Arrival, Arrivals},
    channel::Channel,
    egress::{Failure, GuardedResolver},
    render,
    store::{self, Claimed},
};

pub use crate::store::{DeliveryTarget, fail_pending};

pub const EMAIL: &str = Channel::Email.name();
pub const WEBHOOK: &str = Channel::Webhook.name();

const EVENTS: EventBuilder =
    <crate::Notifications as placement_messaging::service::Service>::DEFINITION.events();

/// When failed attempts are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
    /// How long after its creation a delivery is still tried.
    pub window: Duration,
}

impl RetryPolicy {
    /// The delay after the `attempt`-th failed attempt (1-based): doubling from `initial` up to `max`, then
    /// "equal jitter" (half fixed, half random, `jitter` in 0..1) so receivers that come back are not hit
    /// by every sender at once.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
        let capped = doubled.min(self.max);
        capped / 2 + capped.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// What a new notification's deliveries say.
pub enum Content<'a> {
    Referral {
        kind: NotificationKind,
        event: &'a ReferralEvent,
    },
    EndpointDisabled {
        address: &'a str,
        reason: &'a str,
    },
    Digest(&'a placement_proto::v1::DistrictDigestReady),
}

/// What creating deliveries needs to know.
#[derive(Debug, Clone)]
pub struct FanOut {
    /// Where links in e-mails point.
    pub public_url: String,
    pub retry: RetryPolicy,
}

/// One agency's notification of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    pub notification: Uuid,
    pub agency: Uuid,
}

/// The notifications deliveries are for: those of one event, one per recipient agency.
pub struct NewNotifications<'a> {
    pub recipients: &'a [Recipient],
    pub event_type: &'a str,
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub referral_id: Option<Uuid>,
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
        let endpoints = store::endpoints_wanting(conn, &agencies, n.event_type).await?;
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
                    render::webhook_body(
                        n.event_type,
                        n.occurred_at,
                        n.event_id,
                        n.referral_id,
                        notification,
                        agency,
                    ),
                )
            } else {
                match content {
                    Content::Referral { kind, event } => {
                        render::referral_email(*kind, event, language, &self.public_url)
                    }
                    Content::EndpointDisabled { address, reason } => {
                        render::endpoint_disabled_email(address, reason, language)
                    }
                    Content::Digest(digest) => {
                        crate::digest::digest_email(digest, language, &self.public_url)
                    }
                }
            };
            store::insert_delivery(
                conn,
                &store::NewDelivery {
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

/// How deliveries are sent.
pub struct DispatchSettings {
    /// SMTP server URL (lettre's form: `smtp://host:25`, `smtp://host:587?tls=required` for STARTTLS,
    /// `smtps://host:465`); None leaves e-mails PENDING.
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    pub webhook_timeout: Duration,
    pub poll_interval: Duration,
    pub concurrency: usize,
    pub webhook_key: String,
    /// `PLACEMENT_WEBHOOK_ALLOWED_HOSTS`: the internal hosts webhooks may reach (see [`AllowedTargets`]).
    pub webhook_allowed_hosts: String,
}

pub struct Dispatcher {
    pool: PgPool,
    outbox: Outbox,
    fan_out: FanOut,
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
    http: reqwest::Client,
    targets: Arc<AllowedTargets>,
    webhook_key: String,
    webhook_timeout: Duration,
    poll_interval: Duration,
    concurrency: usize,
    /// Woken when a notification with deliveries commits, or an operator retries one.
    pub wake: Arc<Notify>,
    arrivals: Arrivals,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("SMTP settings: {0}")]
    Smtp(String),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    AllowList(#[from] placement_platform::webhook::AllowListError),
}

impl Dispatcher {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        fan_out: FanOut,
        settings: DispatchSettings,
        wake: Arc<Notify>,
        arrivals: Arrivals,
    ) -> Result<Self, DispatchError> {
        let smtp = match &settings.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| DispatchError::Smtp(format!("PLACEMENT_SMTP_URL: {e}")))?
                    .timeout(Some(settings.webhook_timeout))
                    .build();
                let from: Mailbox = settings
                    .smtp_from
                    .parse()
                    .map_err(|e| DispatchError::Smtp(format!("PLACEMENT_SMTP_FROM: {e}")))?;
                Some((transport, from))
            }
            None => {
                tracing::warn!(
                    "PLACEMENT_SMTP_URL is not set: e-mail deliveries stay PENDING until it is"
                );
                None
            }
        };
        let targets = Arc::new(AllowedTargets::parse(&settings.webhook_allowed_hosts)?);
        let http = reqwest::Client::builder()
            .timeout(settings.webhook_timeout)
            .connect_timeout(settings.webhook_timeout)
            // A receiver answers for itself; following it elsewhere would let an endpoint aim our signed
            // calls at another host.
            .redirect(reqwest::redirect::Policy::none())
            // Calls go to the addresses the resolver judged: a proxy would connect wherever it resolved.
            .no_proxy()
            .dns_resolver(GuardedResolver {
                targets: targets.clone(),
            })
            .user_agent(concat!(
                "placement-exchange-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self {
            pool,
            outbox,
            fan_out,
            smtp,
            http,
            targets,
            webhook_key: settings.webhook_key,
            webhook_timeout: settings.webhook_timeout,
            poll_interval: settings.poll_interval,
            concurrency: settings.concurrency.max(1),
            wake,
            arrivals,
        })
    }

    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let mut more = false;
            if !shutdown.is_cancelled() {
                match self.claim().await {
                    Ok(batch) => {
                        more = batch.len() == self.concurrency;
                        // In-flight attempts finish (bounded by the timeouts) even during shutdown, so none
                        // is left to be repeated after its lease.
                        futures::stream::iter(batch)
                            .for_each_concurrent(self.concurrency, |d| self.attempt(d))
                            .await;
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming deliveries failed; will retry"),
                }
            }
            if more {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        tracing::info!("delivery dispatcher stopped");
    }

    async fn claim(&self) -> Result<Vec<Claimed>, sqlx::Error> {
        // Longer than any attempt can take, so a live sender records before anyone else may retry.
        let lease =
            chrono::Duration::from_std(self.lease()).unwrap_or(chrono::Duration::minutes(1));
        store::claim_deliveries(
            &self.pool,
            placement_platform::numbers::len_i64(self.concurrency),
            self.smtp.is_some(),
            lease,
        )
        .await
    }

    /// How long a claimed delivery is left to its sender before another may try it: long enough to send
    /// and then to record through a short database outage.
    fn lease(&self) -> Duration {
        (self.webhook_timeout * 3).max(Duration::from_secs(30))
    }

    async fn attempt(&self, d: Claimed) {
        let span = delivery_span(&d);
        self.attempt_in_span(d).instrument(span).await;
    }

    async fn attempt_in_span(&self, d: Claimed) {
        let claimed = tokio::time::Instant::now();
        let started = Utc::now();
        let outcome = if d.channel == Channel::Webhook {
            self.send_webhook(&d).await
        } else {
            self.send_email(&d).await.map_err(Failure::retry)
        };
        match &outcome {
            Ok(detail) => {
                tracing::info!(delivery_id = %d.id, channel = %d.channel, attempt = d.attempts, %detail, "delivered")
            }
            Err(failure) => {
                tracing::warn!(delivery_id = %d.id, channel = %d.channel, attempt = d.attempts, error = %failure.detail, permanent = failure.permanent, "delivery attempt failed")
            }
        }
        // A sent delivery not recorded as sent is sent again when its lease ends, so recording is retried
        // (through a database restart, say) for as long as the lease leaves time.
        let budget = claimed + self.lease() - self.webhook_timeout / 2;
        let mut backoff = placement_platform::backoff::Backoff::new(
            Duration::from_millis(50),
            Duration::from_secs(2),
        );
        loop {
            let Err(e) = self.record(&d, started, outcome.clone()).await else {
                break;
            };
            let delay = backoff.next_delay();
            if tokio::time::Instant::now() + delay >= budget {
                tracing::warn!(delivery_id = %d.id, error = %e, "recording a delivery attempt failed; it will be tried again after its lease");
                break;
            }
            tracing::warn!(delivery_id = %d.id, error = %e, "recording a delivery attempt failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_webhook(&self, d: &Claimed) -> Result<String, Failure> {
        // Registered addresses are URLs; one that no longer is cannot be called whatever happens next.
        let url = reqwest::Url::parse(&d.address).map_err(|_| Failure::refused())?;
        if let Err(refused) = self.targets.check_literal(&url) {
            tracing::warn!(delivery_id = %d.id, endpoint_id = %d.endpoint_id, %refused, "webhook target not allowed; not called");
            return Err(Failure::refused());
        }
        let secret = derive_secret(
            &self.webhook_key,
            d.endpoint_id,
            placement_platform::numbers::count(d.secret_version),
        );
        let signer = standardwebhooks::Webhook::new(&secret)
            .map_err(|e| Failure::retry(format!("signing: {e}")))?;
        let timestamp = Utc::now().timestamp();
        let id = d.id.to_string();
        let signature = signer
            .sign(&id, timestamp, d.body.as_bytes())
            .map_err(|e| Failure::retry(format!("signing: {e}")))?;
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &id)
            .header(
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                timestamp.to_string(),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .headers(trace_header())
            .body(d.body.clone())
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => Ok(format!("HTTP {}", r.status().as_u16())),
            Ok(r) => Err(Failure::retry(format!("HTTP {}", r.status().as_u16()))),
            Err(e) => Err(Failure::of_call(&e, self.webhook_timeout)),
        }
    }

    async fn send_email(&self, d: &Claimed) -> Result<String, String> {
        let (transport, from) = self.smtp.as_ref().ok_or("no SMTP server configured")?;
        let to: Mailbox = d.address.parse().map_err(|e| format!("bad address: {e}"))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&d.subject)
            .message_id(Some(format!("<{}@placement-exchange>", d.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(d.body.clone())
            .map_err(|e| format!("building the message: {e}"))?;
        transport
            .send(message)
            .await
            .map(|r| format!("SMTP {}", r.code()))
            .map_err(|e| format!("SMTP: {e}"))
    }

    async fn record(
        &self,
        d: &Claimed,
        started: DateTime<Utc>,
        outcome: Result<String, Failure>,
    ) -> Result<(), ServiceError> {
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let (detail, permanent) = match &outcome {
            Ok(detail) => (detail, false),
            Err(failure) => (&failure.detail, failure.permanent),
        };
        let detail = detail.chars().take(500).collect::<String>();
        store::record_attempt(&mut tx, d, started, outcome.is_ok(), &detail).await?;
        // The agency told that its endpoint was disabled, if this attempt disabled it.
        let mut told = None;
        let status = if outcome.is_ok() {
            store::mark_sent(&mut tx, d).await?;
            "sent"
        } else {
            let delay = self.fan_out.retry.delay(
                placement_platform::numbers::count(d.attempts),
                rand::random::<f64>(),
            );
            let next =
                Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            // Retrying a target that is not allowed could only succeed if it moved inside the allowed.
            if permanent || next > d.give_up_at {
                store::mark_failed(&mut tx, d, &detail).await?;
                told = self
                    .disable_endpoint(&mut tx, d.endpoint_id, &detail)
                    .await?;
                "failed"
            } else {
                store::retry_later(&mut tx, d, next, &detail).await?;
                "retry"
            }
        };
        self.outbox.commit(tx).await?;
        metrics::counter!(
            placement_platform::prometheus::DELIVERIES,
            "channel" => d.channel.name(),
            "status" => status
        )
        .increment(1);
        if let Some(agency) = told {
            let _ = self.arrivals.send(Arc::from([Arrival {
                agency,
                notification: None,
            }]));
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Stops using an endpoint after a delivery to it exhausted its retries: its other pending deliveries
    /// fail, the directory is told, and so is the agency (inbox and its other endpoints). Returns the agency
    /// when this call disabled it (it may have been already).
    async fn disable_endpoint(
        &self,
        conn: &mut PgConnection,
        endpoint: Uuid,
        reason: &str,
    ) -> Result<Option<Uuid>, ServiceError> {
        let Some((agency, address)) = store::disable_endpoint(conn, endpoint).await? else {
            return Ok(None);
        };
        fail_pending(
            &mut *conn,
            &[endpoint],
            "endpoint disabled after repeated failures",
        )
        .await?;
        let event = EVENTS.build(
            Event::NotificationEndpointDisabled(EndpointDisabled {
                endpoint_id: endpoint.to_string(),
                agency_id: agency.to_string(),
                reason: reason.to_string(),
            }),
            endpoint,
            1,
            Uuid::now_v7(),
        );
        Outbox::enqueue(&mut *conn, &event).await?;
        let event_id = Uuid::parse_str(&event.event_id).expect("the builder makes UUIDs");
        let (title, body) = render::endpoint_disabled_notice(&address, reason);
        let notification = Uuid::now_v7();
        store::insert_notice(
            conn,
            notification,
            agency,
            NotificationKind::EndpointDisabled,
            event_id,
            &title,
            &body,
        )
        .await?;
        self.fan_out
            .create(
                conn,
                &NewNotifications {
                    recipients: &[Recipient {
                        notification,
                        agency,
                    }],
                    event_type: EventType::NotificationEndpointDisabled.as_str(),
                    event_id,
                    occurred_at: Utc::now(),
                    referral_id: None,
                },
                &Content::EndpointDisabled {
                    address: &address,
                    reason,
                },
            )
            .await?;
        tracing::warn!(endpoint_id = %endpoint, %agency, reason, "notification endpoint disabled");
        Ok(Some(agency))
    }
}

/// One attempt's span, a child of the application of the event that created the delivery. Deliveries
/// made with tracing off have none.
fn delivery_span(d: &Claimed) -> tracing::Span {
    if d.trace_context.is_none() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "deliver",
        otel.name = format!("deliver {}", d.channel),
        otel.kind = "client",
        delivery.id = %d.id,
        delivery.channel = %d.channel,
        delivery.attempt = d.attempts,
        trace_id = tracing::field::Empty,
    );
    placement_platform::trace_context::adopt(&span, d.trace_context.as_deref());
    span
}

/// The `traceparent` of the attempt, for the receiving system to join the trace.
fn trace_header() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(traceparent) = placement_platform::trace_context::current()
        && let Ok(value) = reqwest::header::HeaderValue::from_str(&traceparent)
    {
        headers.insert(placement_platform::trace_context::TRACEPARENT, value);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A label never takes a stored string as it is: a channel is one of those this release sends on, and
    /// a stored name that is none of them is refused when read (see `crate::channel`).
    #[test]
    fn channel_labels_are_the_known_channels() {
        assert_eq!(Channel::Email.name(), EMAIL);
        assert_eq!(Channel::Webhook.name(), WEBHOOK);
        use placement_proto::stored::StoredName;
        assert_eq!(Channel::from_stored("sms"), None);
        assert_eq!(Channel::from_stored("Email"), None);
    }

    #[test]
    fn delays_double_up_to_the_cap_with_bounded_jitter() {
        let p = RetryPolicy {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            window: Duration::from_secs(26 * 3600),
        };
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(30));
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(15));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(60));
        assert_eq!(p.delay(8, 1.0), Duration::from_secs(3600));
        assert_eq!(p.delay(500, 0.5), Duration::from_secs(2700));
        for attempt in 1..40 {
            let d = p.delay(attempt, rand::random());
            assert!(d >= p.delay(attempt, 0.0) && d <= p.delay(attempt, 1.0));
        }
    }

    #[test]
    fn the_default_schedule_keeps_trying_for_more_than_a_day() {
        let p = crate::Config::default_retry();
        assert!(p.window >= Duration::from_secs(24 * 3600));
        // Even with the shortest delays, attempts keep coming through the window: about 30 with the defaults.
        let (mut elapsed, mut attempts) = (Duration::ZERO, 0u32);
        while elapsed < p.window {
            attempts += 1;
            elapsed += p.delay(attempts, 0.0);
        }
        assert!((20..100).contains(&attempts), "{attempts}");
    }
}
