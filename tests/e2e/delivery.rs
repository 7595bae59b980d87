//! Notifications that leave the system: endpoints managed in the directory, e-mails through a real SMTP
//! server (aiosmtpd), Standard Webhooks calls to a real HTTP receiver that verifies them and fails on
//! purpose, delivery status, disabling a failing endpoint and an operator's retry.

use std::collections::BTreeMap;

use placement_cli::{clients::as_agency, demo::NATIONAL_AUTHORITY, scenario::eventually};
use placement_e2e::{StackOptions, mail::SmtpSink, webhook::WebhookReceiver};
use placement_proto::v1::{
    AcceptReferralRequest, AddNotificationEndpointRequest, ConfirmPlacementRequest, Delivery,
    DeliveryStatus, EventTypeFilter, Language, ListDeliveriesRequest,
    ListNotificationEndpointsRequest, ListNotificationsRequest, Notification, NotificationChannel,
    NotificationEndpoint, NotificationKind, RetryDeliveryRequest,
    UpdateNotificationEndpointRequest,
};
use tonic::Code;
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

/// Every notification of `agency`, oldest first, with its deliveries.
async fn inbox(f: &Fixture, agency: Uuid) -> Vec<Notification> {
    let mut all = f
        .clients
        .notifications
        .clone()
        .list_notifications(as_agency(
            agency,
            ListNotificationsRequest {
                page_size: 500,
                ..Default::default()
            },
        ))
        .await
        .expect("ListNotifications")
        .into_inner()
        .notifications;
    all.reverse();
    all
}

/// Accepts (as the Vratsa provider) and confirms (as `sender`) an acknowledged referral.
async fn accept_and_place(f: &Fixture, sender: Uuid, referral_id: &str) {
    f.clients
        .referrals
        .clone()
        .accept_referral(as_agency(
            f.agency("provider-vratsa"),
            AcceptReferralRequest {
                referral_id: referral_id.into(),
            },
        ))
        .await
        .expect("AcceptReferral");
    f.clients
        .referrals
        .clone()
        .confirm_placement(as_agency(
            sender,
            ConfirmPlacementRequest {
                referral_id: referral_id.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("ConfirmPlacement");
}

/// Waits until every delivery of `agency`'s notifications is in a final state (SENT or FAILED).
async fn settled_deliveries(
    f: &Fixture,
    agency: Uuid,
    expected: usize,
) -> Vec<(Notification, Delivery)> {
    eventually("deliveries to settle", WAIT, || async {
        let all: Vec<(Notification, Delivery)> = inbox(f, agency)
            .await
            .into_iter()
            .flat_map(|n| {
                n.deliveries
                    .clone()
                    .into_iter()
                    .map(move |d| (n.clone(), d))
            })
            .collect();
        (all.len() >= expected
            && all
                .iter()
                .all(|(_, d)| d.status != DeliveryStatus::Pending as i32))
        .then_some(all)
    })
    .await
    .expect("deliveries settled")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_managed_by_their_agency_in_the_directory() {
    let f = Fixture::start().await;
    let pirdop = f.agency("dsa-pirdop");
    let vratsa = f.agency("dsa-vratsa");
    let (email, hook) = add_an_email_and_a_webhook(&f, pirdop).await;
    assert_listing_never_shows_secrets(&f, pirdop, &email, &hook).await;
    assert_rotation_gives_a_new_secret(&f, pirdop, &hook).await;
    assert_bad_endpoints_name_the_field(&f, pirdop).await;
    assert_duplicates_and_other_agencies_are_refused(&f, pirdop, vratsa, &hook).await;
    assert_nothing_changed_and_the_operator_sees_them(&f, pirdop).await;
    f.assert_no_dead_letters().await;
}

/// An e-mail address (no secret) and a webhook (a secret, Bulgarian by default) for `pirdop`.
async fn add_an_email_and_a_webhook(
    f: &Fixture,
    pirdop: Uuid,
) -> (NotificationEndpoint, NotificationEndpoint) {
    use NotificationChannel::*;
    let email = f
        .add_endpoint(
            pirdop,
            Email,
            "dsp.pirdop@example.bg",
            &["referral.accepted"],
            Language::En,
        )
        .await
        .expect("add an e-mail endpoint");
    assert!(email.secret.is_empty(), "e-mails have no secret");
    assert_eq!(email.event_types, vec!["referral.accepted"]);
    let hook = f
        .add_endpoint(
            pirdop,
            Webhook,
            "https://cms.pirdop.example/hooks",
            &[],
            Language::Unspecified,
        )
        .await
        .expect("add a webhook");
    assert!(hook.secret.starts_with("whsec_"), "{}", hook.secret);
    assert_eq!(hook.language, Language::Bg as i32, "Bulgarian by default");

    (email, hook)
}

/// Secrets are shown once; listing never shows them.
async fn assert_listing_never_shows_secrets(
    f: &Fixture,
    pirdop: Uuid,
    email: &NotificationEndpoint,
    hook: &NotificationEndpoint,
) {
    let listed = f
        .clients
        .directory
        .clone()
        .list_notification_endpoints(as_agency(
            pirdop,
            ListNotificationEndpointsRequest {
                agency_id: pirdop.to_string(),
            },
        ))
        .await
        .expect("list")
        .into_inner()
        .endpoints;
    assert_eq!(
        listed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        vec![email.id.clone(), hook.id.clone()]
    );
    assert!(listed.iter().all(|e| e.secret.is_empty()));
}

/// Rotation gives a new secret.
async fn assert_rotation_gives_a_new_secret(
    f: &Fixture,
    pirdop: Uuid,
    hook: &NotificationEndpoint,
) {
    let rotated = f
        .clients
        .directory
        .clone()
        .update_notification_endpoint(as_agency(
            pirdop,
            UpdateNotificationEndpointRequest {
                endpoint_id: hook.id.clone(),
                rotate_secret: true,
                events: Some(EventTypeFilter {
                    event_types: vec!["referral.declined".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("rotate")
        .into_inner();
    assert_ne!(rotated.secret, hook.secret);
    assert_eq!(rotated.secret_version, 2);
    assert_eq!(rotated.event_types, vec!["referral.declined"]);
}

/// Bad input names the field and changes nothing.
async fn assert_bad_endpoints_name_the_field(f: &Fixture, pirdop: Uuid) {
    use NotificationChannel::*;
    let field = |s: tonic::Status| {
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        s.message()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    for (channel, address, events, expected) in [
        (Email, "not-an-address", vec![], "address"),
        (Webhook, "ftp://cms.example/hook", vec![], "address"),
        (
            Webhook,
            "https://user:pw@cms.example/hook",
            vec![],
            "address",
        ),
        (
            Email,
            "a@b.bg",
            vec!["service.registered"],
            "event_types[0]",
        ),
        (Unspecified, "a@b.bg", vec![], "channel"),
    ] {
        let err = f
            .add_endpoint(pirdop, channel, address, &events, Language::Bg)
            .await
            .expect_err("refused");
        assert_eq!(field(err), expected, "{address}");
    }
}

/// The same endpoint twice; another agency's endpoints do not exist for the caller.
async fn assert_duplicates_and_other_agencies_are_refused(
    f: &Fixture,
    pirdop: Uuid,
    vratsa: Uuid,
    hook: &NotificationEndpoint,
) {
    use NotificationChannel::*;
    let err = f
        .add_endpoint(pirdop, Email, "dsp.pirdop@example.bg", &[], Language::Bg)
        .await
        .expect_err("duplicate");
    assert_eq!(err.code(), Code::AlreadyExists);
    // Another agency's endpoints do not exist for the caller.
    let err = f
        .add_endpoint(vratsa, Email, "x@example.bg", &[], Language::Bg)
        .await;
    assert!(err.is_ok(), "an agency manages its own");
    let err = f
        .clients
        .directory
        .clone()
        .add_notification_endpoint(as_agency(
            vratsa,
            AddNotificationEndpointRequest {
                agency_id: pirdop.to_string(),
                channel: Email as i32,
                address: "intruder@example.bg".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("not its agency");
    assert_eq!(err.code(), Code::NotFound);
    let err = f
        .clients
        .directory
        .clone()
        .update_notification_endpoint(as_agency(
            vratsa,
            UpdateNotificationEndpointRequest {
                endpoint_id: hook.id.clone(),
                enabled: Some(false),
                ..Default::default()
            },
        ))
        .await
        .expect_err("not its endpoint");
    assert_eq!(err.code(), Code::NotFound);
}

/// Nothing the refused requests asked changed; the national authority (operator) may see the endpoints.
async fn assert_nothing_changed_and_the_operator_sees_them(f: &Fixture, pirdop: Uuid) {
    let after = f
        .clients
        .directory
        .clone()
        .list_notification_endpoints(as_agency(
            pirdop,
            ListNotificationEndpointsRequest {
                agency_id: pirdop.to_string(),
            },
        ))
        .await
        .expect("list")
        .into_inner()
        .endpoints;
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|e| e.enabled));
    // The national authority (operator) may see them.
    assert!(
        f.clients
            .directory
            .clone()
            .list_notification_endpoints(as_agency(
                NATIONAL_AUTHORITY,
                ListNotificationEndpointsRequest {
                    agency_id: pirdop.to_string(),
                },
            ))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_reach_each_agency_in_its_language_and_only_for_the_events_it_chose() {
    let smtp = SmtpSink::start();
    let f = Fixture::with(StackOptions {
        env: vec![("PLACEMENT_SMTP_URL".into(), smtp.url())],
        ..Default::default()
    })
    .await;
    let sender = f.agency("dsa-pirdop");
    let provider = f.agency("provider-vratsa");
    add_the_mailboxes(&f, sender, provider).await;
    let r = place_the_twins(&f, sender).await;
    let sender_mails = assert_each_agency_mailed_in_its_language(&smtp, &r.id, &r.reference).await;
    assert_each_email_delivery_sent_once(&f, sender, &sender_mails).await;
    // The placed notification of the provider has no e-mail (it chose only requests); its inbox has it.
    let provider_inbox = inbox(&f, provider).await;
    let placed = provider_inbox
        .iter()
        .find(|n| n.kind == NotificationKind::ReferralPlaced as i32)
        .expect("placed notice in the inbox");
    assert!(placed.deliveries.is_empty());
    f.assert_no_dead_letters().await;
}

/// The sender's mailbox for every event, in English; the provider's for new requests only, in Bulgarian.
async fn add_the_mailboxes(f: &Fixture, sender: Uuid, provider: Uuid) {
    use NotificationChannel::Email;
    f.add_endpoint(sender, Email, "dsp.pirdop@example.bg", &[], Language::En)
        .await
        .expect("sender's mailbox");
    // The provider wants e-mail only for new requests.
    f.add_endpoint(
        provider,
        Email,
        "ftpc.vratsa@example.bg",
        &["referral.submitted"],
        Language::Bg,
    )
    .await
    .expect("provider's mailbox");
    // The endpoints reach the notifications service by event; wait until it has them.
    assert!(
        f.stack.wait_for_endpoints(2, WAIT).await,
        "endpoints to reach the notifications service"
    );
}

/// A referral of a twins case by `sender` to the Vratsa FTPC, acknowledged by both parties, accepted and
/// placed.
async fn place_the_twins(f: &Fixture, sender: Uuid) -> placement_proto::v1::Referral {
    let case = f.open_twins_case(sender).await;
    let r = f.submit(sender, &case, f.demo.service("ftpc-vratsa")).await;
    f.acknowledge(&r.id, &["provider-vratsa", "foster-vratsa"])
        .await;
    accept_and_place(f, sender, &r.id).await;
    r
}

/// Sender: two acknowledgements and the acceptance, in English. Provider: the request only, in Bulgarian.
/// Returns the sender's e-mails.
async fn assert_each_agency_mailed_in_its_language(
    smtp: &SmtpSink,
    referral_id: &str,
    reference: &str,
) -> Vec<placement_e2e::mail::Mail> {
    let mails = smtp.wait_for(WAIT, |m| m.len() >= 4).await;
    let to = |addr: &str| -> Vec<_> {
        mails
            .iter()
            .filter(|m| m.rcpt_tos == vec![addr.to_string()])
            .cloned()
            .collect()
    };
    let sender_mails = to("dsp.pirdop@example.bg");
    let provider_mails = to("ftpc.vratsa@example.bg");
    assert_eq!(sender_mails.len(), 3, "{sender_mails:#?}");
    assert_eq!(provider_mails.len(), 1, "{provider_mails:#?}");
    // Notices name a referral by its reference (by its id's last digits before references).
    let short = if reference.is_empty() {
        &referral_id[referral_id.len() - 8..]
    } else {
        reference
    };
    let link = format!("/referrals/{referral_id}");
    for m in sender_mails.iter().chain(&provider_mails) {
        assert!(m.subject.contains(short), "{}", m.subject);
        assert!(m.text.contains(&link), "{}", m.text);
        assert_eq!(m.content_type, "text/plain");
        assert!(m.from.contains("no-reply@"), "{}", m.from);
        // Never a child: the pseudonyms and the setting of the case appear nowhere.
        for secret in ["Twin A", "Twin B", "Zlatitsa"] {
            assert!(
                !m.text.contains(secret) && !m.subject.contains(secret),
                "{secret} in {m:?}"
            );
        }
    }
    let subjects: Vec<&str> = sender_mails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.contains("acknowledged"))
            .count(),
        2,
        "{subjects:?}"
    );
    assert_eq!(
        subjects.iter().filter(|s| s.contains("accepted")).count(),
        1,
        "{subjects:?}"
    );
    let request = &provider_mails[0];
    assert!(
        request.subject.starts_with("Ново направление №"),
        "{}",
        request.subject
    );
    assert!(request.text.contains("потвърдете"), "{}", request.text);
    // The deadline is named, in Sofia's time as people write it («6 декември 2026 г., 12:52»).
    assert!(
        request.subject.contains(" г., ") && !request.subject.contains("UTC"),
        "{}",
        request.subject
    );
    sender_mails
}

/// Every delivery is SENT after one attempt, and the Message-ID is the delivery's id.
async fn assert_each_email_delivery_sent_once(
    f: &Fixture,
    sender: Uuid,
    sender_mails: &[placement_e2e::mail::Mail],
) {
    let sender_deliveries = settled_deliveries(f, sender, 3).await;
    assert_eq!(sender_deliveries.len(), 3);
    for (_, d) in &sender_deliveries {
        assert_eq!(d.status, DeliveryStatus::Sent as i32, "{d:?}");
        assert_eq!(d.attempts, 1);
        assert_eq!(d.channel, "email");
        assert!(d.sent_at.is_some());
        assert!(
            sender_mails
                .iter()
                .any(|m| m.message_id == format!("<{}@placement-exchange>", d.id)),
            "no e-mail with the id of delivery {}",
            d.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_and_arrive_once() {
    let receiver = WebhookReceiver::start().await;
    let f = Fixture::start().await;
    let sender = f.agency("dsa-stara-zagora");
    let foster = f.agency("foster-vratsa");
    add_a_flaky_webhook(&f, &receiver, foster).await;
    let r = place_the_twins(&f, sender).await;
    // The foster-care team is told of the request and of the placement: two events.
    let deliveries = settled_deliveries(&f, foster, 2).await;
    assert_eq!(deliveries.len(), 2, "{deliveries:#?}");
    let accepted = assert_signed_and_each_event_accepted_once(&receiver).await;
    let total_attempts = assert_each_call_names_its_event(&receiver, &deliveries, &accepted, &r.id);
    // Every attempt counted: 3 failed + 2 accepted.
    assert_eq!(total_attempts, 5);
    let failed_first = deliveries
        .iter()
        .find(|(_, d)| d.attempts > 1)
        .expect("a retried delivery");
    // Which failure each delivery met depends on how the two interleaved; the last one is kept.
    assert!(
        ["HTTP 503", "timed out after 2s"].contains(&failed_first.1.last_error.as_str()),
        "{}",
        failed_first.1.last_error
    );
    assert_every_attempt_recorded(&f).await;
    f.assert_no_dead_letters().await;
}

/// `foster`'s webhook at `receiver`, which first hangs past the sender's 2 s timeout, then fails its next
/// two calls.
async fn add_a_flaky_webhook(f: &Fixture, receiver: &WebhookReceiver, foster: Uuid) {
    let hook = f
        .add_endpoint(
            foster,
            NotificationChannel::Webhook,
            &receiver.url(),
            &[],
            Language::En,
        )
        .await
        .expect("add the webhook");
    receiver.set_secret(&hook.secret);
    receiver.slow_next(1, std::time::Duration::from_secs(3));
    receiver.fail_next(2);
    // The endpoints reach the notifications service by event; wait until it has them.
    assert!(
        f.stack.wait_for_endpoints(1, WAIT).await,
        "the endpoint to reach the notifications service"
    );
}

/// Every call was signed with the endpoint's secret; three failures (a timeout, two errors), then each
/// event accepted exactly once. Returns how many times each webhook-id was accepted.
async fn assert_signed_and_each_event_accepted_once(
    receiver: &WebhookReceiver,
) -> BTreeMap<String, usize> {
    // The hung call is answered (too late) only after its delay.
    let calls = receiver.wait_for(WAIT, |c| c.len() >= 5).await;
    // Every call was signed with the endpoint's secret.
    assert!(calls.iter().all(|c| c.verified), "{calls:#?}");
    // Three failures (a timeout, two errors), then each event accepted exactly once.
    assert_eq!(calls.iter().filter(|c| c.status == 503).count(), 3);
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    for c in receiver.accepted() {
        *accepted.entry(c.id.clone()).or_default() += 1;
    }
    assert_eq!(accepted.len(), 2, "{accepted:?}");
    assert!(
        accepted.values().all(|n| *n == 1),
        "an event accepted twice: {accepted:?}"
    );
    accepted
}

/// Notify, then fetch: each accepted call's body names the event, the referral, the time and the event
/// id. Returns the attempts the deliveries counted.
fn assert_each_call_names_its_event(
    receiver: &WebhookReceiver,
    deliveries: &[(Notification, Delivery)],
    accepted: &BTreeMap<String, usize>,
    referral_id: &str,
) -> u32 {
    let mut total_attempts = 0;
    for (n, d) in deliveries {
        assert_eq!(d.status, DeliveryStatus::Sent as i32, "{d:?}");
        assert!(
            accepted.contains_key(&d.id),
            "webhook-id is the delivery id"
        );
        total_attempts += d.attempts;
        // Notify, then fetch: the body names the event, the referral, the time and the event id.
        let call = receiver
            .accepted()
            .into_iter()
            .find(|c| c.id == d.id)
            .expect("its call");
        let kind = NotificationKind::try_from(n.kind).unwrap();
        let expected_type = match kind {
            NotificationKind::ReferralSubmitted => "referral.submitted",
            NotificationKind::ReferralPlaced => "referral.placed",
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(call.body["type"], expected_type);
        assert_eq!(call.body["data"]["referral_id"], referral_id);
        // A referral sent alone is of no search; the key is there for those that are.
        assert!(call.body["data"]["search_id"].is_null(), "{}", call.body);
        assert_eq!(call.body["data"]["event_id"], n.event_id);
        assert!(
            call.body["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        assert!(call.body.to_string().len() < 400);
    }
    total_attempts
}

/// Every attempt is recorded, the hung call as a timed-out one.
async fn assert_every_attempt_recorded(f: &Fixture) {
    let mut db = f.stack.db().await;
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications.delivery_attempts")
        .fetch_one(&mut db)
        .await
        .expect("attempts");
    assert_eq!(recorded, 5, "every attempt is recorded");
    let timeouts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications.delivery_attempts WHERE NOT succeeded AND detail LIKE 'timed out%'",
    )
    .fetch_one(&mut db)
    .await
    .expect("attempts");
    assert_eq!(timeouts, 1, "the hung call counts as a timed-out attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_disabled_its_agency_told_and_an_operator_retries() {
    let smtp = SmtpSink::start();
    let receiver = WebhookReceiver::start().await;
    let f = Fixture::with(StackOptions {
        env: vec![
            ("PLACEMENT_SMTP_URL".into(), smtp.url()),
            // Give up quickly.
            ("PLACEMENT_DELIVERY_RETRY_WINDOW".into(), "1500ms".into()),
        ],
        ..Default::default()
    })
    .await;
    let sender = f.agency("dsa-haskovo");
    let provider = f.agency("provider-vratsa");
    let hook = add_a_failing_webhook_and_a_mailbox(&f, &receiver, provider).await;
    let case = f.open_twins_case(sender).await;
    let r = f.submit(sender, &case, f.demo.service("ftpc-vratsa")).await;

    // The delivery fails for the whole window, then the endpoint is disabled in the directory too.
    let endpoint = f.disabled_endpoint(provider, &hook.id).await;
    assert!(
        endpoint.disabled_reason.contains("HTTP 500"),
        "{}",
        endpoint.disabled_reason
    );
    assert!(receiver.calls().len() >= 2, "retried before giving up");

    let notices = assert_the_agency_is_told(&f, &smtp, &receiver, provider).await;
    let (submitted, failed) = assert_the_failed_delivery_is_seen(&f, &notices, &r.id).await;
    assert_only_operators_list_and_retry(&f, sender, provider, &submitted.id, &failed.id).await;
    assert_an_operators_retry_sends_it(
        &f,
        &receiver,
        provider,
        &hook.id,
        &submitted.id,
        &failed.id,
    )
    .await;
    f.assert_no_dead_letters().await;
}

/// The provider's webhook for new requests at `receiver`, failing every call, and its operators' mailbox
/// told when an endpoint is disabled.
async fn add_a_failing_webhook_and_a_mailbox(
    f: &Fixture,
    receiver: &WebhookReceiver,
    provider: Uuid,
) -> NotificationEndpoint {
    let hook = f
        .add_endpoint(
            provider,
            NotificationChannel::Webhook,
            &receiver.url(),
            &["referral.submitted"],
            Language::En,
        )
        .await
        .expect("webhook");
    f.add_endpoint(
        provider,
        NotificationChannel::Email,
        "it.ftpc.vratsa@example.bg",
        &["notification.endpoint_disabled"],
        Language::En,
    )
    .await
    .expect("mailbox for operators");
    receiver.set_secret(&hook.secret);
    receiver.fail_always(true);
    // The endpoints reach the notifications service by event; wait until it has them.
    assert!(
        f.stack.wait_for_endpoints(2, WAIT).await,
        "endpoints to reach the notifications service"
    );
    hook
}

/// The agency is told in its inbox and by its other endpoint; returns its inbox once the notice is in.
async fn assert_the_agency_is_told(
    f: &Fixture,
    smtp: &SmtpSink,
    receiver: &WebhookReceiver,
    provider: Uuid,
) -> Vec<Notification> {
    let notices = eventually("the disabled-endpoint notice", WAIT, || async {
        let all = inbox(f, provider).await;
        all.iter()
            .any(|n| n.kind == NotificationKind::EndpointDisabled as i32)
            .then_some(all)
    })
    .await
    .expect("notice");
    let notice = notices
        .iter()
        .find(|n| n.kind == NotificationKind::EndpointDisabled as i32)
        .unwrap();
    assert!(notice.referral_id.is_empty());
    assert!(notice.body.contains(&receiver.url()), "{}", notice.body);
    let mails = smtp.wait_for(WAIT, |m| !m.is_empty()).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(
        mails[0].subject.contains("disabled"),
        "{}",
        mails[0].subject
    );
    notices
}

/// The failed delivery as the recipient and the operator see it; returns the request's notification and
/// its delivery.
async fn assert_the_failed_delivery_is_seen(
    f: &Fixture,
    notices: &[Notification],
    referral_id: &str,
) -> (Notification, Delivery) {
    let submitted = notices
        .iter()
        .find(|n| {
            n.referral_id == referral_id && n.kind == NotificationKind::ReferralSubmitted as i32
        })
        .expect("the request");
    let failed = submitted.deliveries.first().expect("its delivery").clone();
    assert_eq!(failed.status, DeliveryStatus::Failed as i32);
    assert_eq!(failed.last_error, "HTTP 500");
    assert!(failed.attempts >= 2);
    let operator_view = f
        .clients
        .notifications
        .clone()
        .list_deliveries(as_agency(
            NATIONAL_AUTHORITY,
            ListDeliveriesRequest {
                status: DeliveryStatus::Failed as i32,
                ..Default::default()
            },
        ))
        .await
        .expect("operators list failed deliveries")
        .into_inner()
        .deliveries;
    assert_eq!(
        operator_view
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>(),
        vec![failed.id.clone()]
    );
    (submitted.clone(), failed)
}

/// The operator's retry of delivery `id`, as `agency`.
async fn retry(f: &Fixture, agency: Uuid, id: &str) -> Result<Delivery, tonic::Status> {
    f.clients
        .notifications
        .clone()
        .retry_delivery(as_agency(
            agency,
            RetryDeliveryRequest {
                delivery_id: id.to_string(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Others may not list everything, nor retry; while the endpoint is disabled, retrying is refused.
async fn assert_only_operators_list_and_retry(
    f: &Fixture,
    sender: Uuid,
    provider: Uuid,
    submitted: &str,
    failed: &str,
) {
    let err = f
        .clients
        .notifications
        .clone()
        .list_deliveries(as_agency(sender, ListDeliveriesRequest::default()))
        .await
        .expect_err("not an operator");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = f
        .clients
        .notifications
        .clone()
        .list_deliveries(as_agency(
            sender,
            ListDeliveriesRequest {
                notification_id: submitted.to_string(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("another agency's notification");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        retry(f, provider, failed)
            .await
            .expect_err("not an operator")
            .code(),
        Code::PermissionDenied
    );
    // While the endpoint is disabled, retrying is refused.
    assert_eq!(
        retry(f, NATIONAL_AUTHORITY, failed)
            .await
            .expect_err("disabled")
            .code(),
        Code::FailedPrecondition
    );
}

/// The receiver is fixed and the agency enables the endpoint again; the operator retries, and the
/// delivery is sent once.
async fn assert_an_operators_retry_sends_it(
    f: &Fixture,
    receiver: &WebhookReceiver,
    provider: Uuid,
    hook: &str,
    submitted: &str,
    failed: &str,
) {
    receiver.fail_always(false);
    f.clients
        .directory
        .clone()
        .update_notification_endpoint(as_agency(
            provider,
            UpdateNotificationEndpointRequest {
                endpoint_id: hook.to_string(),
                enabled: Some(true),
                ..Default::default()
            },
        ))
        .await
        .expect("enable");
    let retried = eventually("the operator's retry to be taken", WAIT, || async {
        retry(f, NATIONAL_AUTHORITY, failed).await.ok()
    })
    .await
    .expect("retry accepted once the endpoint is enabled again");
    assert_eq!(retried.status, DeliveryStatus::Pending as i32);
    eventually("the retried delivery to be sent", WAIT, || async {
        let d = f
            .clients
            .notifications
            .clone()
            .list_deliveries(as_agency(
                provider,
                ListDeliveriesRequest {
                    notification_id: submitted.to_string(),
                    ..Default::default()
                },
            ))
            .await
            .ok()?
            .into_inner()
            .deliveries;
        d.into_iter()
            .find(|d| d.status == DeliveryStatus::Sent as i32)
    })
    .await
    .expect("sent after the retry");
    assert_eq!(receiver.accepted().len(), 1);
    assert_eq!(
        retry(f, NATIONAL_AUTHORITY, failed)
            .await
            .expect_err("already sent")
            .code(),
        Code::FailedPrecondition
    );
}
