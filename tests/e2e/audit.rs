//! The audit trail: every read and change of a case or referral is recorded with who, what, when and how it
//! ended; the chain of hashes finds an entry edited or deleted directly in PostgreSQL.

use placement_cli::{
    clients::{as_agency, as_agency_with},
    demo::NATIONAL_AUTHORITY,
};
use placement_platform::caller::Role;
use placement_platform::services::{CASES, REFERRALS};
use placement_proto::v1::{
    AuditEntry, GetCaseRequest, GetReferralRequest, ListAuditTrailRequest, VerifyAuditTrailRequest,
    VerifyAuditTrailResponse, audit_service_client::AuditServiceClient,
};
use sqlx::{Executor, PgConnection};
use tonic::Code;
use uuid::Uuid;

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
    another_agency_is_refused(&f, pravets, &r.id, &case.id).await;
    let referrals_audit = client(f.stack.endpoints.url(REFERRALS));
    let cases_audit = client(f.stack.endpoints.url(CASES));
    // Operators only.
    let err = referrals_audit
        .clone()
        .verify_audit_trail(as_agency_with(
            pirdop,
            &[Role::Supervisor, Role::Caseworker],
            VerifyAuditTrailRequest {},
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let trail = assert_the_trail_lists_every_step(&f, &referrals_audit, &r.id, pravets).await;
    let intact = verify(&referrals_audit).await;
    assert!(intact.intact, "{intact:?}");
    assert!(intact.entries >= 5);
    assert!(verify(&cases_audit).await.intact);

    let mut db = f.stack.db().await;
    assert_the_trail_refuses_changes(&mut db, &referrals_audit, intact.entries).await;
    // ...and someone who gets past the trigger is found out: an edited entry,
    let forged = trail.last().unwrap().sequence;
    assert_an_edited_entry_is_found(&mut db, &referrals_audit, forged).await;
    // a deleted one,
    assert_a_deleted_entry_is_found(&mut db, &cases_audit, &case.id, pravets).await;
    // and a trail cut short at its end.
    assert_a_trail_cut_short_is_found(&mut db, &referrals_audit, forged).await;
}

type Audit = AuditServiceClient<tonic::transport::Channel>;

async fn verify(c: &Audit) -> VerifyAuditTrailResponse {
    c.clone()
        .verify_audit_trail(as_agency(NATIONAL_AUTHORITY, VerifyAuditTrailRequest {}))
        .await
        .expect("verify")
        .into_inner()
}

/// Another agency tries to read the referral and the case.
async fn another_agency_is_refused(f: &Fixture, pravets: Uuid, referral_id: &str, case_id: &str) {
    let refused = f
        .clients
        .referrals
        .clone()
        .get_referral(as_agency(
            pravets,
            GetReferralRequest {
                referral_id: referral_id.to_string(),
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
                case_id: case_id.to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
}

/// The referral's trail names each step, its agency and its outcome, in order; returns it.
async fn assert_the_trail_lists_every_step(
    f: &Fixture,
    referrals_audit: &Audit,
    referral_id: &str,
    pravets: Uuid,
) -> Vec<AuditEntry> {
    let pirdop = f.agency("dsa-pirdop");
    let trail = referrals_audit
        .clone()
        .list_audit_trail(as_agency(
            NATIONAL_AUTHORITY,
            ListAuditTrailRequest {
                record_id: referral_id.to_string(),
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
    trail
}

/// The trail refuses changes: an UPDATE, a TRUNCATE, emptying the head; it stays intact.
async fn assert_the_trail_refuses_changes(
    db: &mut PgConnection,
    referrals_audit: &Audit,
    entries: u64,
) {
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
    let still = verify(referrals_audit).await;
    assert!(still.intact && still.entries >= entries, "{still:?}");
}

async fn assert_an_edited_entry_is_found(
    db: &mut PgConnection,
    referrals_audit: &Audit,
    forged: u64,
) {
    db.execute("ALTER TABLE referrals.audit_trail DISABLE TRIGGER audit_trail_append_only")
        .await
        .unwrap();
    db.execute(
        format!("UPDATE referrals.audit_trail SET outcome = 'OK' WHERE seq = {forged}").as_str(),
    )
    .await
    .unwrap();
    let broken = verify(referrals_audit).await;
    assert!(!broken.intact);
    assert_eq!(broken.first_broken_sequence, forged);
    assert!(broken.problem.contains("altered"), "{}", broken.problem);
}

async fn assert_a_deleted_entry_is_found(
    db: &mut PgConnection,
    cases_audit: &Audit,
    case_id: &str,
    pravets: Uuid,
) {
    let case_trail = cases_audit
        .clone()
        .list_audit_trail(as_agency(
            NATIONAL_AUTHORITY,
            ListAuditTrailRequest {
                record_id: case_id.to_string(),
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
    let broken = verify(cases_audit).await;
    assert!(!broken.intact);
    assert_eq!(broken.first_broken_sequence, removed);
    assert!(broken.problem.contains("missing"), "{}", broken.problem);
}

async fn assert_a_trail_cut_short_is_found(
    db: &mut PgConnection,
    referrals_audit: &Audit,
    forged: u64,
) {
    let last: i64 = sqlx::query_scalar("SELECT max(seq) FROM referrals.audit_trail")
        .fetch_one(&mut *db)
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
