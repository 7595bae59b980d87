//! What the end-to-end tests share: a stack with the demo data loaded, and helpers that wait on conditions
//! with deadlines (never on sleeps).

use std::time::Duration;

use chrono::{Datelike, Utc};
use placement_cli::{
    clients::{Clients, as_agency},
    demo::{self, DemoDirectory},
    scenario::eventually,
};
use placement_e2e::{InProcessStack, Stack, StackOptions};
use placement_proto::v1::{
    AcknowledgeReferralRequest, AddNotificationEndpointRequest, Case, Child, ChildNeed, Date,
    GetReferralRequest, GetServiceRequest, Language, LegalBasis, LegalBasisKind,
    ListNotificationEndpointsRequest, ListNotificationsRequest, Notification, NotificationChannel,
    NotificationEndpoint, NotificationKind, OpenCaseRequest, Referral, Sex, SocialService,
    SubmitReferralRequest, WatchNotificationsRequest,
};
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(20);

/// A request carrying `token` as its bearer token.
pub fn bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        tonic::metadata::MetadataValue::try_from(format!("Bearer {token}"))
            .expect("a token is valid metadata"),
    );
    request
}

/// A referral of `case` to `service` on a DSA director's order of yesterday, with idempotency key `key`.
pub fn submission(case: &Case, service: Uuid, key: &str) -> SubmitReferralRequest {
    let d = Utc::now().date_naive() - chrono::Days::new(1);
    SubmitReferralRequest {
        case_id: case.id.clone(),
        service_id: service.to_string(),
        legal_basis: Some(LegalBasis {
            kind: LegalBasisKind::DsaDirectorOrder as i32,
            number: "ZD-101/2026".into(),
            issued_on: Some(Date {
                year: d.year(),
                month: d.month() as i32,
                day: d.day() as i32,
            }),
            court: String::new(),
        }),
        reason: "No free places in the district.".into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

/// A stack with the demo data loaded: of service processes ([`Stack`]), or of services in-process
/// ([`InProcessStack`]) for a test that needs gRPC alone.
pub struct Fixture<S = Stack> {
    pub stack: S,
    pub clients: Clients,
    pub demo: DemoDirectory,
}

impl Fixture {
    pub async fn start() -> Self {
        Self::with(StackOptions::default()).await
    }

    pub async fn with(options: StackOptions) -> Self {
        let stack = Stack::start(options).await;
        let clients = stack.clients();
        Self::seeded(stack, clients).await
    }
}

impl Fixture<InProcessStack> {
    /// Every service in the test's process, on a stack of the test's own.
    pub async fn in_process() -> Self {
        Self::in_process_with(StackOptions::default()).await
    }

    /// The same with `options` (e.g. `env` for an SMTP server).
    pub async fn in_process_with(options: StackOptions) -> Self {
        let stack = InProcessStack::start(options).await;
        let clients = stack.clients();
        Self::seeded(stack, clients).await
    }
}

impl<S> Fixture<S> {
    async fn seeded(stack: S, clients: Clients) -> Self {
        let demo = demo::seed(&clients).await.expect("demo data loads");
        Self {
            stack,
            clients,
            demo,
        }
    }

    pub fn agency(&self, key: &str) -> Uuid {
        self.demo.agency(key)
    }

    /// A case for twins, opened by `dsa`.
    pub async fn open_twins_case(&self, dsa: Uuid) -> Case {
        let year = Utc::now().year();
        self.clients
            .cases
            .clone()
            .open_case(as_agency(
                dsa,
                OpenCaseRequest {
                    children: ["Twin A", "Twin B"]
                        .into_iter()
                        .map(|p| Child {
                            pseudonym: p.into(),
                            birth_year: year - 5,
                            sex: Sex::Female as i32,
                            needs: vec![ChildNeed::Medical as i32],
                            ..Default::default()
                        })
                        .collect(),
                    current_setting: "Home for medical and social care for children, Zlatitsa"
                        .into(),
                },
            ))
            .await
            .expect("OpenCase")
            .into_inner()
    }

    pub fn submission(&self, case: &Case, service: Uuid, key: &str) -> SubmitReferralRequest {
        submission(case, service, key)
    }

    pub async fn submit(&self, dsa: Uuid, case: &Case, service: Uuid) -> Referral {
        let request = self.submission(case, service, &Uuid::new_v4().to_string());
        self.clients
            .referrals
            .clone()
            .submit_referral(as_agency(dsa, request))
            .await
            .expect("SubmitReferral")
            .into_inner()
    }

    /// Each of `parties` (demo keys) acknowledges the referral.
    pub async fn acknowledge(&self, referral_id: &str, parties: &[&str]) {
        for party in parties {
            self.clients
                .referrals
                .clone()
                .acknowledge_referral(as_agency(
                    self.agency(party),
                    AcknowledgeReferralRequest {
                        referral_id: referral_id.to_string(),
                    },
                ))
                .await
                .expect("AcknowledgeReferral");
        }
    }

    pub async fn service(&self, id: Uuid) -> SocialService {
        self.clients
            .directory
            .clone()
            .get_service(as_agency(
                self.agency("dsa-pirdop"),
                GetServiceRequest {
                    service_id: id.to_string(),
                },
            ))
            .await
            .expect("GetService")
            .into_inner()
    }

    pub async fn referral(&self, agency: Uuid, id: &str) -> Referral {
        self.clients
            .referrals
            .clone()
            .get_referral(as_agency(
                agency,
                GetReferralRequest {
                    referral_id: id.to_string(),
                },
            ))
            .await
            .expect("GetReferral")
            .into_inner()
    }

    /// Every notification of `agency` about `referral_id`, in the order of the events that caused them.
    /// The agency's `WatchNotifications` stream, after the notification with `after_sequence` (0: from now).
    pub async fn watch(&self, agency: Uuid, after_sequence: u64) -> tonic::Streaming<Notification> {
        self.clients
            .notifications
            .clone()
            .watch_notifications(as_agency(
                agency,
                WatchNotificationsRequest {
                    after_sequence,
                    ..Default::default()
                },
            ))
            .await
            .expect("WatchNotifications")
            .into_inner()
    }

    /// Every notification in `agency`'s inbox, as the notifications service lists them.
    pub async fn inbox(&self, agency: Uuid) -> Vec<Notification> {
        self.inbox_in(agency, Language::Unspecified).await
    }

    /// Every notification in `agency`'s inbox, worded in `language`.
    pub async fn inbox_in(&self, agency: Uuid, language: Language) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .clients
                .notifications
                .clone()
                .list_notifications(as_agency(
                    agency,
                    ListNotificationsRequest {
                        unread_only: false,
                        page_size: 500,
                        page_token: token,
                        language: language as i32,
                    },
                ))
                .await
                .expect("ListNotifications")
                .into_inner();
            out.extend(page.notifications);
            if page.next_page_token.is_empty() {
                return out;
            }
            token = page.next_page_token;
        }
    }

    /// Adds an endpoint for `agency`, as that agency: told of `events` (every event when empty).
    pub async fn add_endpoint(
        &self,
        agency: Uuid,
        channel: NotificationChannel,
        address: &str,
        events: &[&str],
        language: Language,
    ) -> Result<NotificationEndpoint, tonic::Status> {
        self.clients
            .directory
            .clone()
            .add_notification_endpoint(as_agency(
                agency,
                AddNotificationEndpointRequest {
                    agency_id: agency.to_string(),
                    channel: channel as i32,
                    address: address.into(),
                    event_types: events.iter().map(|e| e.to_string()).collect(),
                    language: language as i32,
                },
            ))
            .await
            .map(|r| r.into_inner())
    }

    /// The endpoints of `agency`, as that agency lists them.
    pub async fn endpoints(
        &self,
        agency: Uuid,
    ) -> Result<Vec<NotificationEndpoint>, tonic::Status> {
        self.clients
            .directory
            .clone()
            .list_notification_endpoints(as_agency(
                agency,
                ListNotificationEndpointsRequest {
                    agency_id: agency.to_string(),
                },
            ))
            .await
            .map(|r| r.into_inner().endpoints)
    }

    /// The endpoint `id` of `agency` once the directory shows it disabled (panics past [`WAIT`]).
    pub async fn disabled_endpoint(&self, agency: Uuid, id: &str) -> NotificationEndpoint {
        eventually(
            "the directory to show the endpoint disabled",
            WAIT,
            || async {
                (self.endpoints(agency).await.ok()?)
                    .into_iter()
                    .find(|e| e.id == id && !e.enabled)
            },
        )
        .await
        .expect("the endpoint disabled")
    }

    /// Gives `agency` an e-mail address told of one event type, in Bulgarian.
    pub async fn email_endpoint(&self, agency: Uuid, address: &str, event_type: &str) {
        self.add_endpoint(
            agency,
            NotificationChannel::Email,
            address,
            &[event_type],
            Language::Bg,
        )
        .await
        .expect("an e-mail endpoint");
    }

    pub async fn notifications(&self, agency: Uuid, referral_id: &str) -> Vec<Notification> {
        let mut out: Vec<Notification> = (self.inbox(agency).await.into_iter())
            .filter(|n| n.referral_id == referral_id)
            .collect();
        // In the order the events happened (their ids are UUIDv7, made in order by the referrals service):
        // the inbox itself is in the order notifications were written, and events about one referral may
        // be applied side by side.
        out.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        out
    }
}

impl Fixture {
    pub fn kinds(notifications: &[Notification]) -> Vec<NotificationKind> {
        notifications
            .iter()
            .map(|n| NotificationKind::try_from(n.kind).unwrap_or(NotificationKind::Unspecified))
            .collect()
    }

    /// Waits until the services have applied every event published about `referral_id` (`expected`
    /// of them), so that what they show is final.
    pub async fn settle(
        &self,
        recorder: &mut placement_e2e::EventRecorder,
        referral_id: &str,
        expected: usize,
    ) {
        assert!(
            recorder
                .wait_until(WAIT, |events| events
                    .iter()
                    .filter(|(e, _)| e.aggregate_id == referral_id)
                    .count()
                    >= expected)
                .await,
            "expected {expected} events about referral {referral_id}, saw {:?}",
            recorder
                .about(referral_id)
                .iter()
                .map(|e| e.event_type.clone())
                .collect::<Vec<_>>()
        );
        let ids: Vec<Uuid> = recorder
            .about(referral_id)
            .iter()
            .map(|e| Uuid::parse_str(&e.event_id).expect("event id"))
            .collect();
        assert_eq!(
            ids.len(),
            expected,
            "more events than expected about {referral_id}"
        );
        let mut ids = ids;
        ids.sort();
        ids.dedup();
        let stack = &self.stack;
        eventually("notifications to apply every referral event", WAIT, || {
            let ids = ids.clone();
            async move {
                stack
                    .has_processed("notifications", &ids)
                    .await
                    .then_some(())
            }
        })
        .await
        .expect("notifications caught up");
    }

    pub async fn assert_no_dead_letters(&self) {
        for (queue, count) in self.stack.dead_letters().await {
            assert_eq!(
                count, 0,
                "dead-letter queue {queue} holds {count} message(s)"
            );
        }
    }
}
