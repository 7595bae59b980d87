//! The audit trail: every read and change of a case or referral is recorded with who, what, when and how it
//! ended; the chain of hashes finds an entry edited or deleted directly in PostgreSQL.

use placement_cli::{
    clients::{as_agency, as_agency_with},
    demo::NATIONAL_AUTHORITY,
};
use placement_platform::caller::Role;
use placement_platform::services::{CASES, REFERRALS};
use placement_proto::v1::{
    GetCaseRequest, GetReferralRequest, ListAuditTrailRequest, VerifyAuditTrailRequest,
    audit_service_client::AuditServiceClient,
};
use sqlx::Executor;
use tonic::Code;

use crate::support::Fixture;

fn client(url: &str) -> AuditServiceClient<tonic::transport::Channel> {
    AuditServiceClient::new(placement_cli::clients::channel(url).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_access_is_recorded_and_tampering_is_found() {
    let f = Fixture::start().await;
    let pirdop = f.agency("dsa-pirdop");
    let pravets = f.agency("dsa-pravets");
    let case = f.open_twins_case(pirdop).await;
    let r = f.submit(pirdop, &case, f.demo.service("ftpc-vratsa")).await;
    f.acknowledge(&r.id, &["provider-vratsa", "foster-vratsa"])
        .await;
    f.referral(pirdop, &r.id).await;
    // Another agency tries to read the referral and the case.
    let refused = f
        .clients
        .referrals
        .clone()
        .get_referral(as_agency(
            pravets,
            GetReferralRequest {
                referral_id: r.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    let refused = f
        .clients
        .cases
        .clone()
        .get_case(as_agency(
            pravets,
            GetCaseRequest {
                case_id: case.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);

    let mut referrals_audit = client(f.stack.endpoints.url(REFERRALS));
    let mut cases_audit = client(f.stack.endpoints.url(CASES));
    // Operators only.
    let err = referrals_audit
        .verify_audit_trail(as_agency_with(
            pirdop,
            &[Role::Supervisor, Role::Caseworker],
            VerifyAuditTrailRequest {},
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let trail = referrals_audit
        .list_audit_trail(as_agency(
            NATIONAL_AUTHORITY,
            ListAuditTrailRequest {
                record_id: r.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner()
        .entries;
    let steps: Vec<(String, String, String)> = trail
        .iter()
        .map(|e| {
            (
                e.rpc
                    .trim_start_matches("placement.v1.ReferralService/")
                    .to_string(),
                e.agency_id.clone(),
                e.outcome.clone(),
            )
        })
        .collect();
    let (provider, foster) = (
        f.agency("provider-vratsa").to_string(),
        f.agency("foster-vratsa").to_string(),
    );
    let expected: Vec<(String, String, String)> = [
        ("SubmitReferral", pirdop.to_string(), "OK"),
        ("AcknowledgeReferral", provider, "OK"),
        ("AcknowledgeReferral", foster, "OK"),
        ("GetReferral", pirdop.to_string(), "OK"),
        ("GetReferral", pravets.to_string(), "NOT_FOUND"),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_string(), b, c.to_string()))
    .collect();
    assert_eq!(steps, expected);
    assert!(
        trail
            .iter()
            .all(|e| e.subject.starts_with("dev-user@") && e.at.is_some())
    );
    for pair in trail.windows(2) {
        assert!(pair[0].sequence < pair[1].sequence);
    }

    let verify = |mut c: AuditServiceClient<tonic::transport::Channel>| async move {
        c.verify_audit_trail(as_agency(NATIONAL_AUTHORITY, VerifyAuditTrailRequest {}))
            .await
            .expect("verify")
            .into_inner()
    };
    let intact = verify(referrals_audit.clone()).await;
    assert!(intact.intact, "{intact:?}");
    assert!(intact.entries >= 5);
    assert!(verify(cases_audit.clone()).await.intact);

    // The trail refuses changes...
    let mut db = f.stack.db().await;
    let blocked = db
        .execute("UPDATE referrals.audit_trail SET outcome = 'OK' WHERE seq = 1")
        .await;
    assert!(
        blocked.is_err(),
        "an UPDATE is refused by the append-only trigger"
    );
    // TRUNCATE fires no row trigger: a statement trigger refuses it, and the head cannot be removed.
    for emptying in [
        "TRUNCATE referrals.audit_trail",
        "TRUNCATE referrals.audit_head",
        "DELETE FROM referrals.audit_head",
    ] {
        let refused = db.execute(emptying).await.expect_err(emptying);
        assert!(
            refused.to_string().contains("append-only"),
            "{emptying}: {refused}"
        );
    }
    let still = verify(referrals_audit.clone()).await;
    assert!(still.intact && still.entries >= intact.entries, "{still:?}");
    // ...and someone who gets past the trigger is found out: an edited entry,
    let forged = trail.last().unwrap().sequence;
    db.execute("ALTER TABLE referrals.audit_trail DISABLE TRIGGER audit_trail_append_only")
        .await
        .unwrap();
    db.execute(
        format!("UPDATE referrals.audit_trail SET outcome = 'OK' WHERE seq = {forged}").as_str(),
    )
    .await
    .unwrap();
    let broken = verify(referrals_audit.clone()).await;
    assert!(!broken.intact);
    assert_eq!(broken.first_broken_sequence, forged);
    assert!(broken.problem.contains("altered"), "{}", broken.problem);
    // a deleted one,
    let case_trail = cases_audit
        .list_audit_trail(as_agency(
            NATIONAL_AUTHORITY,
            ListAuditTrailRequest {
                record_id: case.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(case_trail.iter().any(|e| e.rpc.ends_with("/OpenCase")));
    assert!(case_trail.iter().any(|e| e.rpc.ends_with("/GetCase")
        && e.outcome == "NOT_FOUND"
        && e.agency_id == pravets.to_string()));
    let removed = case_trail[0].sequence;
    db.execute("ALTER TABLE cases.audit_trail DISABLE TRIGGER audit_trail_append_only")
        .await
        .unwrap();
    db.execute(format!("DELETE FROM cases.audit_trail WHERE seq = {removed}").as_str())
        .await
        .unwrap();
    let broken = verify(cases_audit.clone()).await;
    assert!(!broken.intact);
    assert_eq!(broken.first_broken_sequence, removed);
    assert!(broken.problem.contains("missing"), "{}", broken.problem);
    // and a trail cut short at its end.
    let last: i64 = sqlx::query_scalar("SELECT max(seq) FROM referrals.audit_trail")
        .fetch_one(&mut db)
        .await
        .unwrap();
    db.execute(format!("DELETE FROM referrals.audit_trail WHERE seq >= {forged}").as_str())
        .await
        .unwrap();
    let cut = verify(referrals_audit).await;
    assert!(!cut.intact);
    assert_eq!(
        cut.first_broken_sequence, forged,
        "{cut:?} (last was {last})"
    );
}
