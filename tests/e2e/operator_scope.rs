//! Operators are the national authority's staff: the `operator` role on any other agency's token grants
//! nothing. Each operator and audit RPC is tried with a token of an ordinary DSA that carries every role,
//! `operator` included, and is refused (PERMISSION_DENIED, or NOT_FOUND where an agency may look at its own
//! records), changing nothing and telling nothing of other agencies' records; the national authority's operator
//! token still does each.
//!
//! The tests share one stack while any of them runs (each reads, or adds records of its own that no other
//! asserts on), so the file starts the service binaries as seldom as its tests' overlap allows, not once per
//! test.

use std::sync::{Arc, Weak};

use chrono::{Datelike, Utc};
use placement_cli::{
    clients::{Clients, as_agency, as_agency_with},
    demo::{self, DemoDirectory, NATIONAL_AUTHORITY},
    scenario::eventually,
};
use placement_e2e::{Stack, StackOptions, webhook::WebhookReceiver};
use placement_platform::caller::{ALL_ROLES, Role};
use placement_platform::services::{self, CASES, REFERRALS, REPORTS};
use placement_proto::v1::{
    Case, Child, ChildNeed, EventEnvelope, GetStatusRequest, Language, ListAuditTrailRequest,
    ListDeadLettersRequest, ListDeliveriesRequest, ListNotificationEndpointsRequest,
    ListNotificationsRequest, ListReferralChangesRequest, NotificationChannel, OpenCaseRequest,
    RebuildReadModelRequest, ReplayDeadLettersRequest, RetryDeliveryRequest, Sex,
    VerifyAuditTrailRequest, audit_service_client::AuditServiceClient,
    operator_service_client::OperatorServiceClient, report_service_client::ReportServiceClient,
};
use tonic::{Code, transport::Channel};
use uuid::Uuid;

use crate::support::{WAIT, submission};

/// Every role there is: the refusals come from the agency, not from a missing role.
const EVERY_ROLE: &[Role] = &ALL_ROLES;

struct Shared {
    stack: Stack,
    demo: DemoDirectory,
}

/// The stack of this file's tests, started by the first that needs it and stopped (its processes, database
/// and queues gone) when the last one holding it ends. Only the stack is shared: gRPC channels belong to the
/// runtime of the test that made them.
static SHARED: tokio::sync::Mutex<Weak<Shared>> = tokio::sync::Mutex::const_new(Weak::new());

/// The shared stack and clients of this test's own.
async fn scene() -> (Arc<Shared>, Clients) {
    let mut slot = SHARED.lock().await;
    let shared = match slot.upgrade() {
        Some(shared) => shared,
        None => {
            let stack = Stack::start(StackOptions::default()).await;
            let demo = demo::seed(&stack.clients()).await.expect("demo data loads");
            let shared = Arc::new(Shared { stack, demo });
            *slot = Arc::downgrade(&shared);
            shared
        }
    };
    let clients = shared.stack.clients();
    (shared, clients)
}

fn operator_client(s: &Shared, service: services::Listed) -> OperatorServiceClient<Channel> {
    OperatorServiceClient::new(
        placement_cli::clients::channel(s.stack.endpoints.url(service)).unwrap(),
    )
}

fn audit_client(s: &Shared, service: services::Listed) -> AuditServiceClient<Channel> {
    AuditServiceClient::new(
        placement_cli::clients::channel(s.stack.endpoints.url(service)).unwrap(),
    )
}

/// A request of the national authority's operator (no other role).
fn national<T>(message: T) -> tonic::Request<T> {
    as_agency_with(NATIONAL_AUTHORITY, &[Role::Operator], message)
}

/// The refusal of an operator call to anyone but the national authority's operators.
fn assert_not_an_operator<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    what: &str,
) {
    let e = result.expect_err(what);
    assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
    assert!(
        e.message().contains("national authority"),
        "{what}: the refusal says who operators are: {}",
        e.message()
    );
}

/// A case of `dsa`, which the audit trail records.
async fn open_case(clients: &Clients, dsa: Uuid) -> Case {
    clients
        .cases
        .clone()
        .open_case(as_agency(
            dsa,
            OpenCaseRequest {
                children: vec![Child {
                    pseudonym: "Child A".into(),
                    birth_year: Utc::now().year() - 6,
                    sex: Sex::Male as i32,
                    needs: vec![ChildNeed::Medical as i32],
                    ..Default::default()
                }],
                current_setting: "Family of a relative, Pirdop".into(),
            },
        ))
        .await
        .expect("OpenCase")
        .into_inner()
}

/// A delivery of another agency's notification: DSA Pirdop refers a child to the Vratsa centre, whose agency
/// is told by a webhook of its own (`receiver`). Returns the notification's id and the delivery's.
async fn provider_delivery(
    s: &Shared,
    clients: &Clients,
    receiver: &WebhookReceiver,
) -> (String, String) {
    let provider = s.demo.agency("provider-vratsa");
    add_the_providers_webhook(s, clients, receiver, provider).await;
    let pirdop = s.demo.agency("dsa-pirdop");
    let case = open_case(clients, pirdop).await;
    let referral = clients
        .referrals
        .clone()
        .submit_referral(as_agency(
            pirdop,
            submission(
                &case,
                s.demo.service("ftpc-vratsa"),
                &Uuid::new_v4().to_string(),
            ),
        ))
        .await
        .expect("SubmitReferral")
        .into_inner();
    let address = receiver.url();
    eventually(
        "the provider's notification with its delivery",
        WAIT,
        || async {
            let inbox = clients
                .notifications
                .clone()
                .list_notifications(as_agency(
                    provider,
                    ListNotificationsRequest {
                        unread_only: false,
                        page_size: 500,
                        page_token: String::new(),
                        ..Default::default()
                    },
                ))
                .await
                .ok()?
                .into_inner()
                .notifications;
            inbox
                .into_iter()
                .filter(|n| n.referral_id == referral.id)
                .find_map(|n| {
                    let d = n.deliveries.iter().find(|d| d.address == address)?;
                    Some((n.id.clone(), d.id.clone()))
                })
        },
    )
    .await
    .expect("the provider is told, with a delivery to its webhook")
}

/// The provider's webhook for every event at `receiver`, once the notifications service knows it.
async fn add_the_providers_webhook(
    s: &Shared,
    clients: &Clients,
    receiver: &WebhookReceiver,
    provider: Uuid,
) {
    let endpoint = clients
        .directory
        .clone()
        .add_notification_endpoint(as_agency(
            provider,
            placement_proto::v1::AddNotificationEndpointRequest {
                agency_id: provider.to_string(),
                channel: NotificationChannel::Webhook as i32,
                address: receiver.url(),
                event_types: vec![],
                language: Language::En as i32,
            },
        ))
        .await
        .expect("a webhook for the provider")
        .into_inner();
    receiver.set_secret(&endpoint.secret);
    let endpoint_id = Uuid::parse_str(&endpoint.id).expect("endpoint id");
    let known = eventually(
        "the notifications service to know the endpoint",
        WAIT,
        || async {
            let mut db = s.stack.db().await;
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM notifications.endpoints WHERE id = $1")
                    .bind(endpoint_id)
                    .fetch_one(&mut db)
                    .await
                    .ok()?;
            (n == 1).then_some(())
        },
    )
    .await;
    known.expect("the endpoint reached the notifications service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_agency_s_operator_reads_no_audit_trail() {
    let (s, clients) = scene().await;
    let pirdop = s.demo.agency("dsa-pirdop");
    let pravets = s.demo.agency("dsa-pravets");
    let case = open_case(&clients, pirdop).await;
    for service in [CASES, REFERRALS] {
        for (agency, whose) in [(pravets, "another agency's"), (pirdop, "its own")] {
            let listed = audit_client(&s, service)
                .list_audit_trail(as_agency_with(
                    agency,
                    EVERY_ROLE,
                    ListAuditTrailRequest {
                        record_id: case.id.clone(),
                        ..Default::default()
                    },
                ))
                .await;
            assert_not_an_operator(listed, &format!("{}: {whose} case", service.name));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_agency_s_operator_verifies_no_audit_trail() {
    let (s, _clients) = scene().await;
    let pirdop = s.demo.agency("dsa-pirdop");
    for service in [CASES, REFERRALS] {
        let verified = audit_client(&s, service)
            .verify_audit_trail(as_agency_with(
                pirdop,
                EVERY_ROLE,
                VerifyAuditTrailRequest {},
            ))
            .await;
        assert_not_an_operator(verified, service.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_agency_s_operator_gets_no_service_status() {
    let (s, _clients) = scene().await;
    let pirdop = s.demo.agency("dsa-pirdop");
    for service in services::ALL {
        let status = operator_client(&s, *service)
            .get_status(as_agency_with(pirdop, EVERY_ROLE, GetStatusRequest {}))
            .await;
        assert_not_an_operator(status, service.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_agency_s_operator_lists_no_dead_letters() {
    let (s, _clients) = scene().await;
    let pirdop = s.demo.agency("dsa-pirdop");
    for service in services::ALL {
        let listed = operator_client(&s, *service)
            .list_dead_letters(as_agency_with(
                pirdop,
                EVERY_ROLE,
                ListDeadLettersRequest { limit: 10 },
            ))
            .await;
        assert_not_an_operator(listed, service.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_agency_s_operator_replays_no_dead_letters() {
    let (s, _clients) = scene().await;
    let pirdop = s.demo.agency("dsa-pirdop");
    // A dead letter of the reports service, put there directly: it has no death record, so a copy replayed and
    // dead-lettered again would not look like it.
    let event_id = Uuid::now_v7().to_string();
    let dlq = placement_messaging::topology::dead_letter_queue(&s.stack.queue(REPORTS.name));
    let envelope = EventEnvelope {
        event_id: event_id.clone(),
        event_type: "operator-scope.test".into(),
        ..Default::default()
    };
    s.stack.put_event_in_queue(&dlq, &envelope).await;
    let untouched = || {
        let operator = operator_client(&s, REPORTS);
        let event_id = event_id.clone();
        eventually(
            "the dead letter where it was, never replayed",
            WAIT,
            move || {
                let mut operator = operator.clone();
                let event_id = event_id.clone();
                async move {
                    let listed = operator
                        .list_dead_letters(as_agency(
                            NATIONAL_AUTHORITY,
                            ListDeadLettersRequest { limit: 1000 },
                        ))
                        .await
                        .ok()?
                        .into_inner();
                    listed
                        .dead_letters
                        .into_iter()
                        .any(|d| d.event_id == event_id && d.deaths == 0)
                        .then_some(())
                }
            },
        )
    };
    untouched().await.expect("the dead letter is listed");
    for service in services::ALL {
        let mut operator = operator_client(&s, *service);
        for request in [
            ReplayDeadLettersRequest {
                event_ids: vec![],
                all: true,
            },
            ReplayDeadLettersRequest {
                event_ids: vec![event_id.clone()],
                all: false,
            },
        ] {
            let replayed = operator
                .replay_dead_letters(as_agency_with(pirdop, EVERY_ROLE, request))
                .await;
            assert_not_an_operator(replayed, service.name);
        }
    }
    untouched()
        .await
        .expect("the refused replays left the dead letter alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_agency_lists_only_its_own_notifications_deliveries() {
    let (s, clients) = scene().await;
    let receiver = WebhookReceiver::start().await;
    let (notification, delivery) = provider_delivery(&s, &clients, &receiver).await;
    let pravets = s.demo.agency("dsa-pravets");
    let list = |agency: Uuid, notification_id: String| {
        let mut notifications = clients.notifications.clone();
        async move {
            notifications
                .list_deliveries(as_agency_with(
                    agency,
                    EVERY_ROLE,
                    ListDeliveriesRequest {
                        notification_id,
                        ..Default::default()
                    },
                ))
                .await
        }
    };
    // Every delivery: the national authority's operators only.
    let every = list(pravets, String::new()).await;
    assert_not_an_operator(every, "every delivery");
    // Another agency's notification is answered exactly as one that does not exist.
    let theirs = list(pravets, notification.clone())
        .await
        .expect_err("another agency's notification");
    let missing = list(pravets, Uuid::now_v7().to_string())
        .await
        .expect_err("no such notification");
    assert_eq!(theirs.code(), Code::NotFound, "{theirs:?}");
    assert_eq!(
        (theirs.code(), theirs.message()),
        (missing.code(), missing.message())
    );
    // Its own recipient still lists them.
    let own = list(s.demo.agency("provider-vratsa"), notification)
        .await
        .expect("the recipient lists its notification's deliveries")
        .into_inner()
        .deliveries;
    assert!(own.iter().any(|d| d.id == delivery), "{own:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_agency_s_operator_retries_no_delivery() {
    let (s, clients) = scene().await;
    let receiver = WebhookReceiver::start().await;
    let (_, delivery) = provider_delivery(&s, &clients, &receiver).await;
    let retry = |agency: Uuid, delivery_id: String| {
        let mut notifications = clients.notifications.clone();
        async move {
            notifications
                .retry_delivery(as_agency_with(
                    agency,
                    EVERY_ROLE,
                    RetryDeliveryRequest { delivery_id },
                ))
                .await
        }
    };
    let pravets = s.demo.agency("dsa-pravets");
    let provider = s.demo.agency("provider-vratsa");
    for (agency, delivery_id, what) in [
        (pravets, delivery.clone(), "another agency's delivery"),
        (pravets, Uuid::now_v7().to_string(), "no such delivery"),
        (provider, delivery.clone(), "the agency's own delivery"),
    ] {
        assert_not_an_operator(retry(agency, delivery_id).await, what);
    }
    let theirs = retry(pravets, delivery).await.expect_err("refused");
    let missing = retry(pravets, Uuid::now_v7().to_string())
        .await
        .expect_err("refused");
    assert_eq!(
        theirs.message(),
        missing.message(),
        "nothing told of existence"
    );
}

/// The `operator` role's other uses: reading every referral's changes, rebuilding the reports' figures, and
/// reading notification endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_agency_s_operator_role_grants_nothing_elsewhere() {
    let (s, clients) = scene().await;
    let pirdop = s.demo.agency("dsa-pirdop");
    let operator_only: &[Role] = &[Role::Operator];
    let changes = clients
        .referrals
        .clone()
        .list_referral_changes(as_agency_with(
            pirdop,
            EVERY_ROLE,
            ListReferralChangesRequest::default(),
        ))
        .await;
    assert_not_an_operator(changes, "ListReferralChanges");
    let rebuilt = ReportServiceClient::new(
        placement_cli::clients::channel(s.stack.endpoints.url(REPORTS)).unwrap(),
    )
    .rebuild_read_model(as_agency_with(
        pirdop,
        EVERY_ROLE,
        RebuildReadModelRequest {},
    ))
    .await;
    assert_not_an_operator(rebuilt, "RebuildReadModel");
    let endpoints = clients
        .directory
        .clone()
        .list_notification_endpoints(as_agency_with(
            pirdop,
            operator_only,
            ListNotificationEndpointsRequest {
                agency_id: pirdop.to_string(),
            },
        ))
        .await;
    assert_not_an_operator(
        endpoints,
        "ListNotificationEndpoints with the operator role only",
    );
    // The national authority's operator reads any agency's endpoints.
    clients
        .directory
        .clone()
        .list_notification_endpoints(national(ListNotificationEndpointsRequest {
            agency_id: pirdop.to_string(),
        }))
        .await
        .expect("the national authority's operator reads endpoints");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_national_authority_s_operator_does_each() {
    let (s, clients) = scene().await;
    // The audit trail of a DSA's case, and the chain of both services.
    let case = open_case(&clients, s.demo.agency("dsa-pirdop")).await;
    let trail = audit_client(&s, CASES)
        .list_audit_trail(national(ListAuditTrailRequest {
            record_id: case.id.clone(),
            ..Default::default()
        }))
        .await
        .expect("ListAuditTrail")
        .into_inner()
        .entries;
    assert!(
        trail.iter().any(|e| e.rpc.ends_with("/OpenCase")),
        "{trail:?}"
    );
    for service in [CASES, REFERRALS] {
        let verified = audit_client(&s, service)
            .verify_audit_trail(national(VerifyAuditTrailRequest {}))
            .await
            .expect("VerifyAuditTrail")
            .into_inner();
        assert!(verified.intact, "{}: {verified:?}", service.name);
    }
    // Every service's status and dead letters; a replay of an event that is not there replays nothing.
    for service in services::ALL {
        let mut operator = operator_client(&s, *service);
        let status = operator
            .get_status(national(GetStatusRequest {}))
            .await
            .expect("GetStatus")
            .into_inner();
        assert_eq!(status.service, format!("placement-{}", service.name));
        operator
            .list_dead_letters(national(ListDeadLettersRequest { limit: 10 }))
            .await
            .expect("ListDeadLetters");
        let replayed = operator
            .replay_dead_letters(national(ReplayDeadLettersRequest {
                event_ids: vec![Uuid::now_v7().to_string()],
                all: false,
            }))
            .await
            .expect("ReplayDeadLetters")
            .into_inner();
        assert_eq!(replayed.replayed, 0, "{}", service.name);
    }
    // Every delivery, and a retry: past the authorization to the delivery itself.
    let receiver = WebhookReceiver::start().await;
    let (notification, delivery) = provider_delivery(&s, &clients, &receiver).await;
    let listed = clients
        .notifications
        .clone()
        .list_deliveries(national(ListDeliveriesRequest {
            notification_id: notification,
            ..Default::default()
        }))
        .await
        .expect("ListDeliveries of any notification")
        .into_inner()
        .deliveries;
    assert!(listed.iter().any(|d| d.id == delivery), "{listed:?}");
    clients
        .notifications
        .clone()
        .list_deliveries(national(ListDeliveriesRequest::default()))
        .await
        .expect("ListDeliveries of every notification");
    let missing = clients
        .notifications
        .clone()
        .retry_delivery(national(RetryDeliveryRequest {
            delivery_id: Uuid::now_v7().to_string(),
        }))
        .await
        .expect_err("no such delivery");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
}
