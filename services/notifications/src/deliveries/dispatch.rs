//! The dispatcher: claims due deliveries, sends each by e-mail or webhook outside any transaction, records
//! the attempt, and disables an endpoint whose deliveries kept failing (see [`super`]).

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
use placement_proto::v1::{EndpointDisabled, EndpointDisabledFacts, NotificationKind};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    FanOut,
    egress::{Failure, GuardedResolver},
    model::{Claimed, Content, NewNotifications, Recipient},
    store,
};
use crate::{
    channel::Channel,
    endpoints::store::disable_endpoint,
    inbox::{
        model::{Arrival, Arrivals},
        store::insert_notice,
        told::{Stored, Told},
    },
    names::model::NameBook,
};

const EVENTS: EventBuilder =
    <crate::Notifications as placement_messaging::service::Service>::DEFINITION.events();

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
        let Some((agency, address)) = disable_endpoint(conn, endpoint).await? else {
            return Ok(None);
        };
        store::fail_pending(
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
        // The notice keeps what it tells, worded when it is shown or sent, in its reader's language (its
        // address is the agency's own; no other name).
        let facts = EndpointDisabledFacts {
            endpoint_id: endpoint.to_string(),
            address,
            reason: reason.to_string(),
        };
        let notification = Uuid::now_v7();
        insert_notice(
            conn,
            notification,
            agency,
            NotificationKind::EndpointDisabled,
            event_id,
            &Stored::of(
                &Told::EndpointDisabled(facts.clone()),
                NotificationKind::EndpointDisabled,
                &NameBook::default(),
            ),
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
                &Content::EndpointDisabled(&facts),
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
