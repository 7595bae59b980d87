//! Authentication and authorization, from outside: every call needs a valid token; every rule is tried with a
//! valid token of the wrong agency or the wrong role (OWASP API1 "broken object level authorization" and
//! API5 "broken function level authorization"), and each attempt is refused with PERMISSION_DENIED or
//! NOT_FOUND and changes nothing. Each rule is a test of its own, on a stack of its own with the services
//! in-process.

use placement_cli::{
    clients::{as_agency, as_agency_with},
    demo::NATIONAL_AUTHORITY,
    devkeys,
    scenario::eventually,
};
use placement_e2e::InProcessStack;
use placement_platform::caller::{Claims, Role};
use placement_platform::services::{CASES, DIRECTORY, NOTIFICATIONS, REFERRALS};
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, AgencyKind, Case, CaseCloseReason,
    CloseCaseRequest, ConfirmPlacementRequest, CreateAgencyRequest, DeclineReason,
    DeclineReferralRequest, ExportReferralFhirRequest, GetCaseRequest, GetReferralRequest,
    GetStatusRequest, ListCasesRequest, ListDeadLettersRequest, ListNotificationsRequest,
    ListReferralsRequest, ListRegionsRequest, MarkReadRequest, NotificationKind, OpenCaseRequest,
    Referral, ReferralDirection, ReplayDeadLettersRequest, UpdateCapacityRequest, WithdrawReason,
    WithdrawReferralRequest, operator_service_client::OperatorServiceClient,
};
use tonic::{Code, Request, Response, Status, metadata::MetadataValue};
use uuid::Uuid;

use crate::support::{Fixture, WAIT, bearer};

/// A stack of the test's own, the services in-process, with the demo data.
type Kit = Fixture<InProcessStack>;

type Answer<T> = Result<Response<T>, Status>;

const READER: &[Role] = &[Role::Caseworker];

fn code<T: std::fmt::Debug>(r: Answer<T>) -> Code {
    r.expect_err("the call should be refused").code()
}

// Tokens and transport.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_refused_and_opens_no_case() {
    let f = Kit::in_process().await;
    let pirdop = f.agency("dsa-pirdop");
    let foreign = ForeignKeys::new();
    let (good, bad_tokens) = tokens(pirdop, &foreign.0);
    let mut cases = f.clients.cases.clone();
    let listed = || {
        let mut cases = f.clients.cases.clone();
        let request = bearer(&good, ListCasesRequest::default());
        async move { (cases.list_cases(request).await).map(|r| r.into_inner().cases.len()) }
    };
    let before = listed().await.expect("a good token works");
    for (what, token) in &bad_tokens {
        let opening = OpenCaseRequest {
            children: f.open_twins_case(pirdop).await.children,
            current_setting: "x".into(),
        };
        let err = (cases.open_case(bearer(token, opening)).await).expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
    }
    assert_eq!(
        listed().await.unwrap(),
        before + bad_tokens.len(),
        "one case per good open_twins_case, none from bad tokens"
    );
}

/// A token minted with openssl alone, by docs/integrating.md's own lines, works like ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_minted_by_the_docs_openssl_lines_works() {
    let f = Kit::in_process().await;
    let minted = readme_openssl_token();
    let regions = f
        .clients
        .directory
        .clone()
        .list_regions(bearer(&minted, ListRegionsRequest {}))
        .await
        .expect("a token minted by docs/integrating.md's openssl lines is accepted");
    assert_eq!(regions.into_inner().regions.len(), 28);
}

/// Every service verifies tokens the same way: the time claims are honoured by all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_honours_the_time_claims() {
    const TIME_CLAIMS: [&str; 4] = [
        "expired",
        "not valid yet",
        "issued in the future",
        "without exp",
    ];
    let f = Kit::in_process().await;
    let foreign = ForeignKeys::new();
    let (_, bad_tokens) = tokens(f.agency("dsa-pirdop"), &foreign.0);
    for (what, token) in bad_tokens.iter().filter(|(w, _)| TIME_CLAIMS.contains(w)) {
        let mut directory = f.clients.directory.clone();
        let refused = directory.list_regions(bearer(token, ListRegionsRequest {}));
        assert_eq!(
            code(refused.await),
            Code::Unauthenticated,
            "directory, {what}"
        );
        let mut referrals = f.clients.referrals.clone();
        let refused = referrals.list_referrals(bearer(token, ListReferralsRequest::default()));
        assert_eq!(
            code(refused.await),
            Code::Unauthenticated,
            "referrals, {what}"
        );
        let mut notifications = f.clients.notifications.clone();
        let refused =
            notifications.list_notifications(bearer(token, ListNotificationsRequest::default()));
        assert_eq!(
            code(refused.await),
            Code::Unauthenticated,
            "notifications, {what}"
        );
    }
}

/// No token at all, on every service and on the operator's API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_no_call() {
    let f = Kit::in_process().await;
    let c = &f.clients;
    let mut cases = c.cases.clone();
    let cases = cases.list_cases(Request::new(ListCasesRequest::default()));
    assert_eq!(code(cases.await), Code::Unauthenticated);
    let mut referrals = c.referrals.clone();
    let referrals = referrals.list_referrals(Request::new(ListReferralsRequest::default()));
    assert_eq!(code(referrals.await), Code::Unauthenticated);
    let mut notifications = c.notifications.clone();
    let notifications =
        notifications.list_notifications(Request::new(ListNotificationsRequest::default()));
    assert_eq!(code(notifications.await), Code::Unauthenticated);
    let mut operator = operator_of(&f, REFERRALS.name);
    assert_eq!(
        code(operator.get_status(Request::new(GetStatusRequest {})).await),
        Code::Unauthenticated
    );
}

/// The development header names an agency unverified: outside development mode it is not honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_header_is_not_honoured() {
    let f = Kit::in_process().await;
    let mut header_only = Request::new(ListRegionsRequest {});
    header_only.metadata_mut().insert(
        "x-agency-id",
        MetadataValue::try_from(f.agency("dsa-pirdop").to_string()).unwrap(),
    );
    assert_eq!(
        code(f.clients.directory.clone().list_regions(header_only).await),
        Code::Unauthenticated
    );
}

/// Mutual TLS: a plain TCP client, a TLS client without a certificate, and one whose certificate comes
/// from another CA do not get a call through (not even the health check); ours does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_is_required() {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let f = Kit::in_process().await;
    let url = f.stack.endpoints.url(CASES).to_string();
    let https = url.replacen("http://", "https://", 1);
    let keys = placement_e2e::dev_keys();
    let foreign = ForeignKeys::new();
    let read = |dir: &std::path::Path, file: &str| std::fs::read(dir.join(file)).unwrap();
    let ca = Certificate::from_pem(read(keys, devkeys::CA_FILE));
    let plain = Endpoint::from_shared(url.clone()).unwrap();
    assert!(health_via(plain).await.is_err(), "plain TCP");
    let no_cert = ClientTlsConfig::new().ca_certificate(ca.clone());
    let no_cert = Endpoint::from_shared(https.clone())
        .unwrap()
        .tls_config(no_cert);
    assert!(
        health_via(no_cert.unwrap()).await.is_err(),
        "TLS without a client certificate"
    );
    devkeys::ensure_pki(&foreign.0).unwrap();
    let other_ca = ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(Identity::from_pem(
            read(&foreign.0, devkeys::CLIENT_CERT_FILE),
            read(&foreign.0, devkeys::CLIENT_KEY_FILE),
        ));
    let other_ca = Endpoint::from_shared(https).unwrap().tls_config(other_ca);
    assert!(
        health_via(other_ca.unwrap()).await.is_err(),
        "a client certificate from another CA"
    );
    let ours = placement_cli::clients::channel(&url).unwrap();
    assert!(
        tonic_health::pb::health_client::HealthClient::new(ours)
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new()
            })
            .await
            .is_ok()
    );
}

/// Health stays open: it answers a caller with our certificate and no token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_open() {
    let f = Kit::in_process().await;
    assert_eq!(
        f.stack.health("cases").await,
        Some(tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
    );
}

/// Reflection is off outside development mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_is_off_outside_development_mode() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    };
    let f = Kit::in_process().await;
    let mut reflection = ServerReflectionClient::new(
        placement_cli::clients::channel(f.stack.endpoints.url(CASES)).unwrap(),
    );
    let asked = reflection
        .server_reflection_info(tokio_stream::iter(Vec::<ServerReflectionRequest>::new()))
        .await;
    let refused = match asked {
        Err(status) => status.code(),
        Ok(response) => match response.into_inner().message().await {
            Err(status) => status.code(),
            Ok(_) => Code::Ok,
        },
    };
    assert_eq!(refused, Code::Unimplemented);
}

// Cases.

/// Cases: a DSA reads and changes only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_belong_to_their_dsa() {
    let p = Parties::start().await;
    let refusals = [
        (p.pravets, "another DSA reads a case"),
        (p.provider_other, "a stranger provider"),
        (p.rdsa_other, "a stranger RDSA"),
    ];
    for (agency, who) in refusals {
        assert_eq!(
            code(p.get_case(agency, READER).await),
            Code::NotFound,
            "{who}"
        );
    }
    let roles = devkeys::default_roles(p.pravets);
    assert_eq!(
        code(p.close_case(p.pravets, roles).await),
        Code::NotFound,
        "another DSA closes a case"
    );
    let listed = (p.f.clients.cases.clone())
        .list_cases(as_agency(p.pravets, ListCasesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert!(
        listed.iter().all(|c| c.id != p.case.id),
        "another DSA lists a case"
    );
}

/// Roles: opening needs caseworker or supervisor; closing needs supervisor; integration only reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_steps_need_their_roles() {
    let p = Parties::start().await;
    let opening = OpenCaseRequest {
        children: p.case.children.clone(),
        current_setting: "x".into(),
    };
    let opened = (p.f.clients.cases.clone())
        .open_case(as_agency_with(p.pirdop, &[Role::Integration], opening))
        .await;
    assert_eq!(
        code(opened),
        Code::PermissionDenied,
        "integration opens a case"
    );
    assert_eq!(
        code(p.close_case(p.pirdop, &[Role::Caseworker]).await),
        Code::PermissionDenied,
        "a caseworker closes a case"
    );
    assert!(
        p.get_case(p.pirdop, &[Role::Integration]).await.is_ok(),
        "integration reads its own"
    );
}

/// The receiving side reads what the referral needs, while it is open: not where the children are now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiving_side_reads_what_it_needs() {
    let p = Parties::start().await;
    let seen = p
        .get_case(p.provider, READER)
        .await
        .expect("the provider reads the case")
        .into_inner();
    assert!(
        seen.current_setting.is_empty(),
        "the current setting is not for the receiving side"
    );
    assert_eq!(seen.children.len(), 2);
    assert!(
        p.get_case(p.foster, READER).await.is_ok(),
        "the foster-care team reads the case"
    );
}

/// Once declined, the receiving side no longer reads the case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_case_closes_to_the_receiving_side() {
    let p = Parties::start().await;
    p.f.acknowledge(&p.r.id, &["provider-vratsa", "foster-vratsa"])
        .await;
    p.decline(
        p.provider,
        devkeys::default_roles(p.provider),
        DeclineReason::AtCapacity,
    )
    .await
    .expect("the provider's supervisor declines");
    eventually(
        "the cases service to learn of the decline",
        WAIT,
        || async {
            (p.get_case(p.provider, READER).await.err()?.code() == Code::NotFound).then_some(())
        },
    )
    .await
    .expect("the case is closed to the provider after the decline");
    assert_eq!(code(p.get_case(p.foster, READER).await), Code::NotFound);
}

// Referrals.

/// Referrals: only the parties, the sender and the RDSAs of both districts see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_parties_see_the_referral() {
    let p = Parties::start().await;
    for (who, agency) in [
        ("sender", p.pirdop),
        ("provider", p.provider),
        ("foster team", p.foster),
        ("receiving RDSA", p.rdsa_receiving),
        ("sending RDSA", p.rdsa_sending),
    ] {
        assert!(
            p.get_referral(agency, READER).await.is_ok(),
            "{who} reads the referral"
        );
    }
    for (who, agency) in [
        ("another DSA", p.pravets),
        ("another RDSA", p.rdsa_other),
        ("another provider", p.provider_other),
    ] {
        let read = p.get_referral(agency, READER).await;
        assert_eq!(code(read), Code::NotFound, "{who} reads the referral");
        let exported = (p.f.clients.referrals.clone())
            .export_referral_fhir(as_agency(
                agency,
                ExportReferralFhirRequest {
                    referral_id: p.r.id.clone(),
                },
            ))
            .await;
        assert_eq!(code(exported), Code::NotFound, "{who} exports the referral");
        let roles = devkeys::default_roles(agency);
        let acknowledged = p.acknowledge(agency, roles).await;
        assert_eq!(code(acknowledged), Code::NotFound, "{who} acknowledges");
    }
}

/// Who may read a referral is one answer for reads and steps: both districts' RDSAs see it, so a step
/// they may not take is PERMISSION_DENIED for each, never NOT_FOUND for one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdsas_are_denied_steps_not_hidden_from() {
    let p = Parties::start().await;
    for (who, agency) in [
        ("receiving RDSA", p.rdsa_receiving),
        ("sending RDSA", p.rdsa_sending),
    ] {
        let acknowledged = p.acknowledge(agency, devkeys::default_roles(agency)).await;
        assert_eq!(
            code(acknowledged),
            Code::PermissionDenied,
            "{who} acknowledges"
        );
    }
    let incoming = ListReferralsRequest {
        direction: ReferralDirection::Incoming as i32,
        ..Default::default()
    };
    let listed = (p.f.clients.referrals.clone())
        .list_referrals(as_agency(p.provider_other, incoming))
        .await
        .unwrap()
        .into_inner()
        .referrals;
    assert!(
        listed.iter().all(|x| x.id != p.r.id),
        "another provider lists it"
    );
}

/// Integration changes nothing: it reads the referral and does not acknowledge it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_reads_but_does_not_acknowledge() {
    let p = Parties::start().await;
    assert_eq!(
        code(p.acknowledge(p.provider, &[Role::Integration]).await),
        Code::PermissionDenied,
        "integration acknowledges"
    );
    assert!(
        p.get_referral(p.provider, &[Role::Integration])
            .await
            .is_ok(),
        "integration reads"
    );
}

/// Accepting is a decision of the provider's supervisor alone; the refusals change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_providers_supervisor_accepts() {
    let p = Parties::acknowledged().await;
    let before = p.version().await;
    let refusals = [
        (p.provider, &[Role::Caseworker], "a caseworker accepts"),
        (p.foster, &[Role::Supervisor], "the foster team accepts"),
        (p.pirdop, &[Role::Supervisor], "the sender accepts"),
    ];
    for (agency, roles, who) in refusals {
        assert_eq!(
            code(p.accept(agency, roles).await),
            Code::PermissionDenied,
            "{who}"
        );
    }
    assert_eq!(p.version().await, before, "refusals changed nothing");
}

/// Caseworkers neither decline nor withdraw, and the provider does not confirm the placement; the
/// refusals change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caseworkers_neither_decline_nor_withdraw_and_providers_do_not_confirm() {
    let p = Parties::acknowledged().await;
    let before = p.version().await;
    let caseworker = &[Role::Caseworker, Role::Integration];
    let declined = p
        .decline(p.provider, caseworker, DeclineReason::Other)
        .await;
    assert_eq!(
        code(declined),
        Code::PermissionDenied,
        "a caseworker declines"
    );
    assert_eq!(
        code(p.withdraw(p.pirdop, &[Role::Caseworker]).await),
        Code::PermissionDenied,
        "a caseworker withdraws"
    );
    let confirmed = (p.f.clients.referrals.clone())
        .confirm_placement(as_agency(
            p.provider,
            ConfirmPlacementRequest {
                referral_id: p.r.id.clone(),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(
        code(confirmed),
        Code::PermissionDenied,
        "the provider confirms the placement"
    );
    assert_eq!(p.version().await, before, "refusals changed nothing");
}

// The directory, the operator's API, notifications.

/// Registering an agency needs directory_admin, even for the national authority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_an_agency_needs_directory_admin() {
    let f = Kit::in_process().await;
    let created = (f.clients.directory.clone())
        .create_agency(as_agency_with(
            NATIONAL_AUTHORITY,
            &[Role::Operator, Role::Supervisor],
            CreateAgencyRequest {
                kind: AgencyKind::Dsa as i32,
                name: "DSA Y".into(),
                region_code: "SFO".into(),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(
        code(created),
        Code::PermissionDenied,
        "the national authority without directory_admin"
    );
}

/// Capacity changes need directory_admin, of the provider itself; the refusals change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_needs_the_providers_own_directory_admin() {
    let f = Kit::in_process().await;
    let ftpc = f.demo.service("ftpc-vratsa");
    let capacity = f.service(ftpc).await.capacity;
    let update = |agency: Uuid, roles: &[Role]| {
        let request = UpdateCapacityRequest {
            service_id: ftpc.to_string(),
            capacity: 50,
            ..Default::default()
        };
        let mut directory = f.clients.directory.clone();
        let request = as_agency_with(agency, roles, request);
        async move { directory.update_capacity(request).await }
    };
    let provider = f.agency("provider-vratsa");
    assert_eq!(
        code(update(provider, &[Role::Caseworker, Role::Supervisor]).await),
        Code::PermissionDenied,
        "the provider without directory_admin"
    );
    let other = f.agency("provider-haskovo");
    assert_eq!(
        code(update(other, devkeys::default_roles(other)).await),
        Code::PermissionDenied,
        "another provider's directory_admin"
    );
    assert_eq!(
        f.service(ftpc).await.capacity,
        capacity,
        "capacity unchanged"
    );
}

/// Operators only: system state and dead letters, on every service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_calls_need_an_operator() {
    const NOT_OPERATOR: &[Role] = &[
        Role::Caseworker,
        Role::Supervisor,
        Role::DirectoryAdmin,
        Role::Integration,
    ];
    let f = Kit::in_process().await;
    let pirdop = f.agency("dsa-pirdop");
    for service in [DIRECTORY.name, NOTIFICATIONS.name] {
        let mut operator = operator_of(&f, service);
        let status = as_agency_with(NATIONAL_AUTHORITY, NOT_OPERATOR, GetStatusRequest {});
        assert_eq!(
            code(operator.get_status(status).await),
            Code::PermissionDenied
        );
        let listing = as_agency_with(pirdop, NOT_OPERATOR, ListDeadLettersRequest { limit: 10 });
        let listed = operator.list_dead_letters(listing).await;
        assert_eq!(code(listed), Code::PermissionDenied);
        let replay = ReplayDeadLettersRequest {
            event_ids: vec![],
            all: true,
        };
        let replayed =
            (operator.replay_dead_letters(as_agency_with(pirdop, NOT_OPERATOR, replay))).await;
        assert_eq!(code(replayed), Code::PermissionDenied);
        let status = as_agency(NATIONAL_AUTHORITY, GetStatusRequest {});
        assert!(operator.get_status(status).await.is_ok());
    }
}

/// Notifications: an agency reads and marks only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_their_agency_s_own() {
    let p = Parties::start().await;
    let f = &p.f;
    let (provider, r) = (p.provider, &p.r);
    let mine = eventually("the provider's notification", WAIT, || async {
        (f.notifications(provider, &r.id).await.into_iter())
            .find(|n| n.kind == NotificationKind::ReferralSubmitted as i32)
    })
    .await
    .unwrap();
    let marking = |agency: Uuid, roles: &[Role]| {
        let ids = vec![mine.id.clone()];
        let request = as_agency_with(
            agency,
            roles,
            MarkReadRequest {
                notification_ids: ids,
            },
        );
        let mut notifications = f.clients.notifications.clone();
        async move { notifications.mark_read(request).await }
    };
    let other = p.provider_other;
    assert_eq!(
        code(marking(other, devkeys::default_roles(other)).await),
        Code::NotFound,
        "another agency marks a notification read"
    );
    assert_eq!(
        code(marking(provider, &[Role::Integration]).await),
        Code::PermissionDenied,
        "the agency's own system (integration) marks a notification read"
    );
    let inbox = ListNotificationsRequest::default();
    let inbox = as_agency_with(provider, &[Role::Integration], inbox);
    let mut notifications = f.clients.notifications.clone();
    let read = notifications.list_notifications(inbox).await;
    assert!(read.is_ok(), "integration reads the inbox");
    assert!(f.notifications(other, &r.id).await.is_empty());
    assert!(
        (f.notifications(provider, &r.id).await.iter()).all(|n| n.read_at.is_none()),
        "nothing was marked"
    );
}

/// The agencies of one referral from DSA Pirdop to FTPC Vratsa, and strangers to it, on a stack of the
/// test's own.
struct Parties {
    f: Kit,
    pirdop: Uuid,
    pravets: Uuid,
    provider: Uuid,
    foster: Uuid,
    rdsa_receiving: Uuid,
    rdsa_sending: Uuid,
    rdsa_other: Uuid,
    provider_other: Uuid,
    case: Case,
    r: Referral,
}

impl Parties {
    /// The referral submitted, and known to the cases service (the provider reads its case), so that a
    /// stranger's NOT_FOUND is the rule's and not the event's delay.
    async fn start() -> Parties {
        let f = Kit::in_process().await;
        let pirdop = f.agency("dsa-pirdop");
        let case = f.open_twins_case(pirdop).await;
        let r = f.submit(pirdop, &case, f.demo.service("ftpc-vratsa")).await;
        let p = Parties {
            pirdop,
            pravets: f.agency("dsa-pravets"),
            provider: f.agency("provider-vratsa"),
            foster: f.agency("foster-vratsa"),
            rdsa_receiving: f.agency("rdsa-vratsa"),
            rdsa_sending: f.agency("rdsa-sofia-province"),
            rdsa_other: f.agency("rdsa-haskovo"),
            provider_other: f.agency("provider-haskovo"),
            case,
            r,
            f,
        };
        eventually(
            "the cases service to learn of the referral",
            WAIT,
            || async { p.get_case(p.provider, READER).await.ok() },
        )
        .await
        .expect("the provider reads the referral's case");
        p
    }

    /// As [`start`](Self::start), the referral acknowledged by the provider and the foster-care team.
    async fn acknowledged() -> Parties {
        let p = Self::start().await;
        p.f.acknowledge(&p.r.id, &["provider-vratsa", "foster-vratsa"])
            .await;
        p
    }

    async fn version(&self) -> u64 {
        self.f.referral(self.pirdop, &self.r.id).await.version
    }

    async fn get_case(&self, agency: Uuid, roles: &[Role]) -> Answer<Case> {
        let case_id = self.case.id.clone();
        let request = as_agency_with(agency, roles, GetCaseRequest { case_id });
        self.f.clients.cases.clone().get_case(request).await
    }

    async fn close_case(&self, agency: Uuid, roles: &[Role]) -> Answer<Case> {
        let request = CloseCaseRequest {
            case_id: self.case.id.clone(),
            reason: CaseCloseReason::Other as i32,
        };
        let request = as_agency_with(agency, roles, request);
        self.f.clients.cases.clone().close_case(request).await
    }

    async fn get_referral(&self, agency: Uuid, roles: &[Role]) -> Answer<Referral> {
        let referral_id = self.r.id.clone();
        let request = as_agency_with(agency, roles, GetReferralRequest { referral_id });
        self.f.clients.referrals.clone().get_referral(request).await
    }

    async fn acknowledge(&self, agency: Uuid, roles: &[Role]) -> Answer<Referral> {
        let referral_id = self.r.id.clone();
        let request = as_agency_with(agency, roles, AcknowledgeReferralRequest { referral_id });
        self.f
            .clients
            .referrals
            .clone()
            .acknowledge_referral(request)
            .await
    }

    async fn accept(&self, agency: Uuid, roles: &[Role]) -> Answer<Referral> {
        let referral_id = self.r.id.clone();
        let request = as_agency_with(agency, roles, AcceptReferralRequest { referral_id });
        self.f
            .clients
            .referrals
            .clone()
            .accept_referral(request)
            .await
    }

    async fn decline(
        &self,
        agency: Uuid,
        roles: &[Role],
        reason: DeclineReason,
    ) -> Answer<Referral> {
        let request = DeclineReferralRequest {
            referral_id: self.r.id.clone(),
            reason: reason as i32,
            comment: String::new(),
        };
        let request = as_agency_with(agency, roles, request);
        self.f
            .clients
            .referrals
            .clone()
            .decline_referral(request)
            .await
    }

    async fn withdraw(&self, agency: Uuid, roles: &[Role]) -> Answer<Referral> {
        let request = WithdrawReferralRequest {
            referral_id: self.r.id.clone(),
            reason: WithdrawReason::Other as i32,
            comment: String::new(),
        };
        let request = as_agency_with(agency, roles, request);
        self.f
            .clients
            .referrals
            .clone()
            .withdraw_referral(request)
            .await
    }
}

/// The operator's API of `service` of the stack.
fn operator_of(f: &Kit, service: &str) -> OperatorServiceClient<tonic::transport::Channel> {
    let listed = placement_platform::services::Listed::named(service).expect("a service");
    let channel = placement_cli::clients::channel(f.stack.endpoints.url(listed)).unwrap();
    OperatorServiceClient::new(channel)
}

async fn health_via(
    endpoint: tonic::transport::Endpoint,
) -> Answer<tonic_health::pb::HealthCheckResponse> {
    tonic_health::pb::health_client::HealthClient::new(endpoint.connect_lazy())
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
}

/// A folder of the test's own for keys the services do not trust; removed with it.
struct ForeignKeys(std::path::PathBuf);

impl ForeignKeys {
    fn new() -> Self {
        let name = format!(
            "placement-foreign-{}-{}",
            std::process::id(),
            Uuid::new_v4().simple()
        );
        Self(std::env::temp_dir().join(name))
    }
}

impl Drop for ForeignKeys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A good token of DSA Pirdop, and bad ones, each named for what is wrong with it; the bad signature's
/// key is made in `foreign_dir`.
fn tokens(pirdop: Uuid, foreign_dir: &std::path::Path) -> (String, Vec<(&'static str, String)>) {
    let signer = devkeys::signer(placement_e2e::dev_keys()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = |iss: &str, aud: &str, exp: i64| Claims {
        iss: iss.into(),
        aud: aud.into(),
        sub: "someone".into(),
        exp,
        iat: Some(now - 10),
        nbf: None,
        agency_id: pirdop.to_string(),
        roles: vec!["caseworker".into(), "supervisor".into()],
    };
    let valid = |iss: &str, aud: &str| claims(iss, aud, now + 600);
    // Another key the services do not trust, with the same key id.
    devkeys::ensure(foreign_dir).unwrap();
    std::fs::copy(
        placement_e2e::dev_keys().join("kid"),
        foreign_dir.join("kid"),
    )
    .unwrap();
    let foreign = devkeys::signer(foreign_dir).unwrap();
    let (iss, aud) = (devkeys::ISSUER, devkeys::AUDIENCE);
    let good = signer.sign(&valid(iss, aud));
    let bad_tokens = vec![
        ("expired", signer.sign(&claims(iss, aud, now - 120))),
        ("wrong audience", signer.sign(&valid(iss, "another-system"))),
        ("wrong issuer", signer.sign(&valid("someone-else", aud))),
        ("bad signature", foreign.sign(&valid(iss, aud))),
        ("not a JWT", "not-a-token".to_string()),
        (
            "not valid yet",
            signer.sign(&Claims {
                nbf: Some(now + 3600),
                ..claims(iss, aud, now + 7200)
            }),
        ),
        (
            "issued in the future",
            signer.sign(&Claims {
                iat: Some(now + 3600),
                ..claims(iss, aud, now + 7200)
            }),
        ),
        ("without exp", {
            let mut json = serde_json::to_value(claims(iss, aud, 0)).unwrap();
            json.as_object_mut().unwrap().remove("exp");
            signer.sign(&json)
        }),
    ];
    (good, bad_tokens)
}

/// Runs docs/integrating.md's "mint a token without the project's code" lines (openssl only) on the
/// test keys.
fn readme_openssl_token() -> String {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/integrating.md"
    ))
    .expect("docs/integrating.md");
    let snippet = page
        .split("<!-- mint-with-openssl -->\n```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("docs/integrating.md shows the openssl lines after <!-- mint-with-openssl -->");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail\n{snippet}\nprintf '%s' \"$TOKEN\""
        ))
        .env("K", placement_e2e::dev_keys())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "docs/integrating.md's openssl lines fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("a token is ASCII")
}
