//! Authentication and authorization, from outside: every call needs a valid token; every rule is tried with a
//! valid token of the wrong agency or the wrong role (OWASP API1 "broken object level authorization" and
//! API5 "broken function level authorization"), and each attempt is refused with PERMISSION_DENIED or
//! NOT_FOUND and changes nothing.

use placement_cli::{
    clients::{as_agency, as_agency_with},
    demo::NATIONAL_AUTHORITY,
    devkeys,
    scenario::eventually,
};
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
use tonic::{Code, Request, metadata::MetadataValue};
use uuid::Uuid;

use crate::support::{Fixture, WAIT, bearer};

fn code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
    r.expect_err("the call should be refused").code()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_needs_a_valid_token() {
    let f = Fixture::start().await;
    let pirdop = f.agency("dsa-pirdop");
    let foreign_dir =
        std::env::temp_dir().join(format!("placement-foreign-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&foreign_dir);
    let (good, bad_tokens) = tokens(pirdop, &foreign_dir);
    bad_tokens_open_no_case(&f, &good, &bad_tokens).await;
    a_token_minted_by_the_readme_works(&f).await;
    every_service_honours_the_time_claims(&f, &bad_tokens).await;
    no_token_no_call(&f, pirdop).await;
    mutual_tls_is_required(&f, &foreign_dir).await;
    health_is_open_and_reflection_off(&f).await;
}

/// A good token of DSA Pirdop, and bad ones, each named for what is wrong with it.
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
    // Another key the services do not trust, with the same key id.
    devkeys::ensure(foreign_dir).unwrap();
    std::fs::copy(
        placement_e2e::dev_keys().join("kid"),
        foreign_dir.join("kid"),
    )
    .unwrap();
    let foreign = devkeys::signer(foreign_dir).unwrap();

    let good = signer.sign(&claims(devkeys::ISSUER, devkeys::AUDIENCE, now + 600));
    let bad_tokens = vec![
        (
            "expired",
            signer.sign(&claims(devkeys::ISSUER, devkeys::AUDIENCE, now - 120)),
        ),
        (
            "wrong audience",
            signer.sign(&claims(devkeys::ISSUER, "another-system", now + 600)),
        ),
        (
            "wrong issuer",
            signer.sign(&claims("someone-else", devkeys::AUDIENCE, now + 600)),
        ),
        (
            "bad signature",
            foreign.sign(&claims(devkeys::ISSUER, devkeys::AUDIENCE, now + 600)),
        ),
        ("not a JWT", "not-a-token".to_string()),
        (
            "not valid yet",
            signer.sign(&Claims {
                nbf: Some(now + 3600),
                ..claims(devkeys::ISSUER, devkeys::AUDIENCE, now + 7200)
            }),
        ),
        (
            "issued in the future",
            signer.sign(&Claims {
                iat: Some(now + 3600),
                ..claims(devkeys::ISSUER, devkeys::AUDIENCE, now + 7200)
            }),
        ),
        ("without exp", {
            let mut json =
                serde_json::to_value(claims(devkeys::ISSUER, devkeys::AUDIENCE, 0)).unwrap();
            json.as_object_mut().unwrap().remove("exp");
            signer.sign(&json)
        }),
    ];
    (good, bad_tokens)
}

/// Every bad token is refused, and the refused calls changed nothing: only the cases opened with the
/// good token exist.
async fn bad_tokens_open_no_case(f: &Fixture, good: &str, bad_tokens: &[(&'static str, String)]) {
    let pirdop = f.agency("dsa-pirdop");
    let mut cases = f.clients.cases.clone();
    let cases_before = cases
        .list_cases(bearer(good, ListCasesRequest::default()))
        .await
        .expect("a good token works")
        .into_inner()
        .cases
        .len();
    for (what, token) in bad_tokens {
        let err = cases
            .open_case(bearer(
                token,
                OpenCaseRequest {
                    children: f.open_twins_case(pirdop).await.children,
                    current_setting: "x".into(),
                },
            ))
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
    }
    let after = cases
        .list_cases(bearer(good, ListCasesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .cases
        .len();
    assert_eq!(
        after,
        cases_before + bad_tokens.len(),
        "one case per good open_twins_case, none from bad tokens"
    );
}

/// A token minted with openssl alone, by docs/integrating.md's own lines, works like ours.
async fn a_token_minted_by_the_readme_works(f: &Fixture) {
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
async fn every_service_honours_the_time_claims(f: &Fixture, bad_tokens: &[(&'static str, String)]) {
    const TIME_CLAIMS: [&str; 4] = [
        "expired",
        "not valid yet",
        "issued in the future",
        "without exp",
    ];
    for (what, token) in bad_tokens.iter().filter(|(w, _)| TIME_CLAIMS.contains(w)) {
        let directory = f
            .clients
            .directory
            .clone()
            .list_regions(bearer(token, ListRegionsRequest {}))
            .await;
        assert_eq!(code(directory), Code::Unauthenticated, "directory, {what}");
        let referrals = f
            .clients
            .referrals
            .clone()
            .list_referrals(bearer(token, ListReferralsRequest::default()))
            .await;
        assert_eq!(code(referrals), Code::Unauthenticated, "referrals, {what}");
        let notifications = f
            .clients
            .notifications
            .clone()
            .list_notifications(bearer(token, ListNotificationsRequest::default()))
            .await;
        assert_eq!(
            code(notifications),
            Code::Unauthenticated,
            "notifications, {what}"
        );
    }
}

/// No token at all, on every service, and the development header is not honoured.
async fn no_token_no_call(f: &Fixture, pirdop: Uuid) {
    let mut header_only = Request::new(ListRegionsRequest {});
    header_only.metadata_mut().insert(
        "x-agency-id",
        MetadataValue::try_from(pirdop.to_string()).unwrap(),
    );
    assert_eq!(
        code(f.clients.directory.clone().list_regions(header_only).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            f.clients
                .cases
                .clone()
                .list_cases(Request::new(ListCasesRequest::default()))
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            f.clients
                .referrals
                .clone()
                .list_referrals(Request::new(ListReferralsRequest::default()))
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            f.clients
                .notifications
                .clone()
                .list_notifications(Request::new(ListNotificationsRequest::default()))
                .await
        ),
        Code::Unauthenticated
    );
    let mut operator = OperatorServiceClient::new(
        placement_cli::clients::channel(f.stack.endpoints.url(REFERRALS)).unwrap(),
    );
    assert_eq!(
        code(operator.get_status(Request::new(GetStatusRequest {})).await),
        Code::Unauthenticated
    );
}

/// Mutual TLS: a plain TCP client, a TLS client without a certificate, and one whose certificate comes
/// from another CA do not get a call through (not even the health check); ours does.
async fn mutual_tls_is_required(f: &Fixture, foreign_dir: &std::path::Path) {
    let health_via = |endpoint: tonic::transport::Endpoint| async move {
        tonic_health::pb::health_client::HealthClient::new(endpoint.connect_lazy())
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
    };
    let url = f.stack.endpoints.url(CASES).to_string();
    let https = url.replacen("http://", "https://", 1);
    let keys = placement_e2e::dev_keys();
    let read = |dir: &std::path::Path, file: &str| std::fs::read(dir.join(file)).unwrap();
    let ca = tonic::transport::Certificate::from_pem(read(keys, devkeys::CA_FILE));
    assert!(
        health_via(tonic::transport::Endpoint::from_shared(url.clone()).unwrap())
            .await
            .is_err(),
        "plain TCP"
    );
    let no_cert = tonic::transport::ClientTlsConfig::new().ca_certificate(ca.clone());
    assert!(
        health_via(
            tonic::transport::Endpoint::from_shared(https.clone())
                .unwrap()
                .tls_config(no_cert)
                .unwrap()
        )
        .await
        .is_err(),
        "TLS without a client certificate"
    );
    devkeys::ensure_pki(foreign_dir).unwrap();
    let other_ca = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(tonic::transport::Identity::from_pem(
            read(foreign_dir, devkeys::CLIENT_CERT_FILE),
            read(foreign_dir, devkeys::CLIENT_KEY_FILE),
        ));
    assert!(
        health_via(
            tonic::transport::Endpoint::from_shared(https)
                .unwrap()
                .tls_config(other_ca)
                .unwrap()
        )
        .await
        .is_err(),
        "a client certificate from another CA"
    );
    assert!(
        tonic_health::pb::health_client::HealthClient::new(
            placement_cli::clients::channel(&url).unwrap()
        )
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new()
        })
        .await
        .is_ok()
    );
}

/// Health stays open; reflection is off outside development mode.
async fn health_is_open_and_reflection_off(f: &Fixture) {
    assert_eq!(
        f.stack.health("cases").await,
        Some(tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
    );
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            placement_cli::clients::channel(f.stack.endpoints.url(CASES)).unwrap(),
        );
    let refused = reflection
        .server_reflection_info(tokio_stream::iter(Vec::<
            tonic_reflection::pb::v1::ServerReflectionRequest,
        >::new()))
        .await;
    let refused = match refused {
        Err(status) => status.code(),
        Ok(response) => {
            let mut stream = response.into_inner();
            match stream.message().await {
                Err(status) => status.code(),
                Ok(_) => Code::Ok,
            }
        }
    };
    assert_eq!(refused, Code::Unimplemented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_refuses_the_wrong_agency_and_the_wrong_role() {
    let f = Fixture::start().await;
    let p = Parties::of(&f).await;
    cases_belong_to_their_dsa(&p).await;
    case_steps_need_their_roles(&p).await;
    the_receiving_side_reads_what_it_needs(&p).await;
    only_the_parties_see_the_referral(&p).await;
    rdsas_are_denied_steps_not_hidden_from(&p).await;
    referral_steps_need_their_roles(&p).await;
    a_declined_case_closes_to_the_receiving_side(&p).await;
    the_directory_needs_directory_admin(&p).await;
    operator_calls_need_an_operator(&p).await;
    notifications_are_their_agency_s_own(&p).await;
}

const READER: &[Role] = &[Role::Caseworker];

/// The agencies of one referral from DSA Pirdop to FTPC Vratsa, and strangers to it.
struct Parties<'a> {
    f: &'a Fixture,
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

impl<'a> Parties<'a> {
    async fn of(f: &'a Fixture) -> Parties<'a> {
        let pirdop = f.agency("dsa-pirdop");
        let case = f.open_twins_case(pirdop).await;
        let r = f.submit(pirdop, &case, f.demo.service("ftpc-vratsa")).await;
        Parties {
            f,
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
        }
    }

    async fn get_case(
        &self,
        agency: Uuid,
        roles: &'static [Role],
    ) -> Result<tonic::Response<Case>, tonic::Status> {
        self.f
            .clients
            .cases
            .clone()
            .get_case(as_agency_with(
                agency,
                roles,
                GetCaseRequest {
                    case_id: self.case.id.clone(),
                },
            ))
            .await
    }

    async fn get_referral(
        &self,
        agency: Uuid,
        roles: &'static [Role],
    ) -> Result<tonic::Response<Referral>, tonic::Status> {
        self.f
            .clients
            .referrals
            .clone()
            .get_referral(as_agency_with(
                agency,
                roles,
                GetReferralRequest {
                    referral_id: self.r.id.clone(),
                },
            ))
            .await
    }
}

/// Cases: a DSA reads and changes only its own.
async fn cases_belong_to_their_dsa(p: &Parties<'_>) {
    let &Parties {
        pravets,
        rdsa_other,
        provider_other,
        ref case,
        ..
    } = p;
    let mut cases = p.f.clients.cases.clone();
    assert_eq!(
        code(p.get_case(pravets, READER).await),
        Code::NotFound,
        "another DSA reads a case"
    );
    assert_eq!(
        code(p.get_case(provider_other, READER).await),
        Code::NotFound,
        "a stranger provider"
    );
    assert_eq!(
        code(p.get_case(rdsa_other, READER).await),
        Code::NotFound,
        "a stranger RDSA"
    );
    assert_eq!(
        code(
            cases
                .close_case(as_agency(
                    pravets,
                    CloseCaseRequest {
                        case_id: case.id.clone(),
                        reason: CaseCloseReason::Other as i32,
                    },
                ))
                .await
        ),
        Code::NotFound,
        "another DSA closes a case"
    );
    let listed = cases
        .list_cases(as_agency(pravets, ListCasesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert!(
        listed.iter().all(|c| c.id != case.id),
        "another DSA lists a case"
    );
}

/// Roles: opening needs caseworker or supervisor; closing needs supervisor; integration only reads.
async fn case_steps_need_their_roles(p: &Parties<'_>) {
    let &Parties {
        pirdop, ref case, ..
    } = p;
    let mut cases = p.f.clients.cases.clone();
    assert_eq!(
        code(
            cases
                .open_case(as_agency_with(
                    pirdop,
                    &[Role::Integration],
                    OpenCaseRequest {
                        children: case.children.clone(),
                        current_setting: "x".into(),
                    },
                ))
                .await
        ),
        Code::PermissionDenied,
        "integration opens a case"
    );
    assert_eq!(
        code(
            cases
                .close_case(as_agency_with(
                    pirdop,
                    &[Role::Caseworker],
                    CloseCaseRequest {
                        case_id: case.id.clone(),
                        reason: CaseCloseReason::Other as i32,
                    },
                ))
                .await
        ),
        Code::PermissionDenied,
        "a caseworker closes a case"
    );
    assert!(
        p.get_case(pirdop, &[Role::Integration]).await.is_ok(),
        "integration reads its own"
    );
}

/// The receiving side reads what the referral needs, while it is open: not where the children are now.
async fn the_receiving_side_reads_what_it_needs(p: &Parties<'_>) {
    let &Parties {
        provider, foster, ..
    } = p;
    let seen = p
        .get_case(provider, READER)
        .await
        .expect("the provider reads the case")
        .into_inner();
    assert!(
        seen.current_setting.is_empty(),
        "the current setting is not for the receiving side"
    );
    assert_eq!(seen.children.len(), 2);
    assert!(
        p.get_case(foster, READER).await.is_ok(),
        "the foster-care team reads the case"
    );
}

/// Referrals: only the parties, the sender and the RDSAs of both districts see it.
async fn only_the_parties_see_the_referral(p: &Parties<'_>) {
    let &Parties {
        pirdop,
        pravets,
        provider,
        foster,
        rdsa_receiving,
        rdsa_sending,
        rdsa_other,
        provider_other,
        ref r,
        ..
    } = p;
    let mut referrals = p.f.clients.referrals.clone();
    for (who, agency) in [
        ("sender", pirdop),
        ("provider", provider),
        ("foster team", foster),
        ("receiving RDSA", rdsa_receiving),
        ("sending RDSA", rdsa_sending),
    ] {
        assert!(
            p.get_referral(agency, READER).await.is_ok(),
            "{who} reads the referral"
        );
    }
    for (who, agency) in [
        ("another DSA", pravets),
        ("another RDSA", rdsa_other),
        ("another provider", provider_other),
    ] {
        assert_eq!(
            code(p.get_referral(agency, READER).await),
            Code::NotFound,
            "{who} reads the referral"
        );
        assert_eq!(
            code(
                referrals
                    .export_referral_fhir(as_agency(
                        agency,
                        ExportReferralFhirRequest {
                            referral_id: r.id.clone()
                        },
                    ))
                    .await
            ),
            Code::NotFound,
            "{who} exports the referral"
        );
        assert_eq!(
            code(
                referrals
                    .acknowledge_referral(as_agency(
                        agency,
                        AcknowledgeReferralRequest {
                            referral_id: r.id.clone()
                        },
                    ))
                    .await
            ),
            Code::NotFound,
            "{who} acknowledges"
        );
    }
}

/// Who may read a referral is one answer for reads and steps: both districts' RDSAs see it, so a step
/// they may not take is PERMISSION_DENIED for each, never NOT_FOUND for one of them.
async fn rdsas_are_denied_steps_not_hidden_from(p: &Parties<'_>) {
    let &Parties {
        rdsa_receiving,
        rdsa_sending,
        provider_other,
        ref r,
        ..
    } = p;
    let mut referrals = p.f.clients.referrals.clone();
    for (who, agency) in [
        ("receiving RDSA", rdsa_receiving),
        ("sending RDSA", rdsa_sending),
    ] {
        assert_eq!(
            code(
                referrals
                    .acknowledge_referral(as_agency(
                        agency,
                        AcknowledgeReferralRequest {
                            referral_id: r.id.clone()
                        },
                    ))
                    .await
            ),
            Code::PermissionDenied,
            "{who} acknowledges"
        );
    }
    let incoming = referrals
        .list_referrals(as_agency(
            provider_other,
            ListReferralsRequest {
                direction: ReferralDirection::Incoming as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .referrals;
    assert!(
        incoming.iter().all(|x| x.id != r.id),
        "another provider lists it"
    );
}

/// Roles on steps: integration changes nothing; decisions need a supervisor.
async fn referral_steps_need_their_roles(p: &Parties<'_>) {
    let f = p.f;
    let &Parties { pirdop, ref r, .. } = p;
    integration_reads_but_does_not_acknowledge(p).await;
    f.acknowledge(&r.id, &["provider-vratsa", "foster-vratsa"])
        .await;
    let before = f.referral(pirdop, &r.id).await.version;
    only_the_providers_supervisor_accepts(p).await;
    caseworkers_neither_decline_nor_withdraw_and_providers_do_not_confirm(p).await;
    assert_eq!(
        f.referral(pirdop, &r.id).await.version,
        before,
        "refusals changed nothing"
    );
}

async fn integration_reads_but_does_not_acknowledge(p: &Parties<'_>) {
    let &Parties {
        provider, ref r, ..
    } = p;
    let mut referrals = p.f.clients.referrals.clone();
    assert_eq!(
        code(
            referrals
                .acknowledge_referral(as_agency_with(
                    provider,
                    &[Role::Integration],
                    AcknowledgeReferralRequest {
                        referral_id: r.id.clone()
                    },
                ))
                .await
        ),
        Code::PermissionDenied,
        "integration acknowledges"
    );
    assert!(
        p.get_referral(provider, &[Role::Integration]).await.is_ok(),
        "integration reads"
    );
}

async fn only_the_providers_supervisor_accepts(p: &Parties<'_>) {
    let f = p.f;
    let &Parties {
        pirdop,
        provider,
        foster,
        ref r,
        ..
    } = p;
    let accept = |agency: Uuid, roles: &'static [Role]| {
        let mut referrals = f.clients.referrals.clone();
        let id = r.id.clone();
        async move {
            referrals
                .accept_referral(as_agency_with(
                    agency,
                    roles,
                    AcceptReferralRequest { referral_id: id },
                ))
                .await
        }
    };
    assert_eq!(
        code(accept(provider, &[Role::Caseworker]).await),
        Code::PermissionDenied,
        "a caseworker accepts"
    );
    assert_eq!(
        code(accept(foster, &[Role::Supervisor]).await),
        Code::PermissionDenied,
        "the foster team accepts"
    );
    assert_eq!(
        code(accept(pirdop, &[Role::Supervisor]).await),
        Code::PermissionDenied,
        "the sender accepts"
    );
}

async fn caseworkers_neither_decline_nor_withdraw_and_providers_do_not_confirm(p: &Parties<'_>) {
    let &Parties {
        pirdop,
        provider,
        ref r,
        ..
    } = p;
    let mut referrals = p.f.clients.referrals.clone();
    assert_eq!(
        code(
            referrals
                .decline_referral(as_agency_with(
                    provider,
                    &[Role::Caseworker, Role::Integration],
                    DeclineReferralRequest {
                        referral_id: r.id.clone(),
                        reason: DeclineReason::Other as i32,
                        comment: String::new(),
                    },
                ))
                .await
        ),
        Code::PermissionDenied,
        "a caseworker declines"
    );
    assert_eq!(
        code(
            referrals
                .withdraw_referral(as_agency_with(
                    pirdop,
                    &[Role::Caseworker],
                    WithdrawReferralRequest {
                        referral_id: r.id.clone(),
                        reason: WithdrawReason::Other as i32,
                        comment: String::new(),
                    },
                ))
                .await
        ),
        Code::PermissionDenied,
        "a caseworker withdraws"
    );
    assert_eq!(
        code(
            referrals
                .confirm_placement(as_agency(
                    provider,
                    ConfirmPlacementRequest {
                        referral_id: r.id.clone()
                    }
                ))
                .await
        ),
        Code::PermissionDenied,
        "the provider confirms the placement"
    );
}

/// Once declined, the receiving side no longer reads the case.
async fn a_declined_case_closes_to_the_receiving_side(p: &Parties<'_>) {
    let &Parties {
        provider,
        foster,
        ref r,
        ..
    } = p;
    let mut referrals = p.f.clients.referrals.clone();
    referrals
        .decline_referral(as_agency(
            provider,
            DeclineReferralRequest {
                referral_id: r.id.clone(),
                reason: DeclineReason::AtCapacity as i32,
                comment: String::new(),
            },
        ))
        .await
        .expect("the provider's supervisor declines");
    eventually(
        "the cases service to learn of the decline",
        WAIT,
        || async {
            (p.get_case(provider, READER).await.err()?.code() == Code::NotFound).then_some(())
        },
    )
    .await
    .expect("the case is closed to the provider after the decline");
    assert_eq!(code(p.get_case(foster, READER).await), Code::NotFound);
}

/// The directory: only directory_admin changes it, and only within the agency's standing.
async fn the_directory_needs_directory_admin(p: &Parties<'_>) {
    let f = p.f;
    let &Parties {
        provider,
        provider_other,
        ..
    } = p;
    let mut directory = f.clients.directory.clone();
    let capacity = f.service(f.demo.service("ftpc-vratsa")).await.capacity;
    assert_eq!(
        code(
            directory
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
                .await
        ),
        Code::PermissionDenied,
        "the national authority without directory_admin"
    );
    assert_eq!(
        code(
            directory
                .update_capacity(as_agency_with(
                    provider,
                    &[Role::Caseworker, Role::Supervisor],
                    UpdateCapacityRequest {
                        service_id: f.demo.service("ftpc-vratsa").to_string(),
                        capacity: 50,
                        ..Default::default()
                    },
                ))
                .await
        ),
        Code::PermissionDenied,
        "the provider without directory_admin"
    );
    assert_eq!(
        code(
            directory
                .update_capacity(as_agency(
                    provider_other,
                    UpdateCapacityRequest {
                        service_id: f.demo.service("ftpc-vratsa").to_string(),
                        capacity: 50,
                        ..Default::default()
                    },
                ))
                .await
        ),
        Code::PermissionDenied,
        "another provider's directory_admin"
    );
    assert_eq!(
        f.service(f.demo.service("ftpc-vratsa")).await.capacity,
        capacity,
        "capacity unchanged"
    );
}

/// Operators only: system state and dead letters, on every service.
async fn operator_calls_need_an_operator(p: &Parties<'_>) {
    let f = p.f;
    let &Parties { pirdop, .. } = p;
    for url in [
        f.stack.endpoints.url(DIRECTORY),
        f.stack.endpoints.url(NOTIFICATIONS),
    ] {
        let mut operator =
            OperatorServiceClient::new(placement_cli::clients::channel(url).unwrap());
        let not_operator = &[
            Role::Caseworker,
            Role::Supervisor,
            Role::DirectoryAdmin,
            Role::Integration,
        ];
        assert_eq!(
            code(
                operator
                    .get_status(as_agency_with(
                        NATIONAL_AUTHORITY,
                        not_operator,
                        GetStatusRequest {}
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            code(
                operator
                    .list_dead_letters(as_agency_with(
                        pirdop,
                        not_operator,
                        ListDeadLettersRequest { limit: 10 }
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            code(
                operator
                    .replay_dead_letters(as_agency_with(
                        pirdop,
                        not_operator,
                        ReplayDeadLettersRequest {
                            event_ids: vec![],
                            all: true
                        },
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert!(
            operator
                .get_status(as_agency(NATIONAL_AUTHORITY, GetStatusRequest {}))
                .await
                .is_ok()
        );
    }
}

/// Notifications: an agency reads and marks only its own.
async fn notifications_are_their_agency_s_own(p: &Parties<'_>) {
    let f = p.f;
    let &Parties {
        provider,
        provider_other,
        ref r,
        ..
    } = p;
    let mine = eventually("the provider's notification", WAIT, || async {
        f.notifications(provider, &r.id)
            .await
            .into_iter()
            .find(|n| n.kind == NotificationKind::ReferralSubmitted as i32)
    })
    .await
    .unwrap();
    let mut notifications = f.clients.notifications.clone();
    assert_eq!(
        code(
            notifications
                .mark_read(as_agency(
                    provider_other,
                    MarkReadRequest {
                        notification_ids: vec![mine.id.clone()]
                    }
                ))
                .await
        ),
        Code::NotFound,
        "another agency marks a notification read"
    );
    assert_eq!(
        code(
            notifications
                .mark_read(as_agency_with(
                    provider,
                    &[Role::Integration],
                    MarkReadRequest {
                        notification_ids: vec![mine.id.clone()]
                    }
                ))
                .await
        ),
        Code::PermissionDenied,
        "the agency's own system (integration) marks a notification read"
    );
    assert!(
        notifications
            .list_notifications(as_agency_with(
                provider,
                &[Role::Integration],
                ListNotificationsRequest::default()
            ))
            .await
            .is_ok(),
        "integration reads the inbox"
    );
    assert!(f.notifications(provider_other, &r.id).await.is_empty());
    assert!(
        f.notifications(provider, &r.id)
            .await
            .iter()
            .all(|n| n.read_at.is_none()),
        "nothing was marked"
    );
}
