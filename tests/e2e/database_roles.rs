//! Least privilege in the database: each service serves as a role of its own, which its schema's owner
//! (the role that ran the migrations) grants only the rows of that schema: no other service's schema, no
//! new tables, and on the audit trail nothing but reading and appending.

use placement_e2e::runtime_url;
use placement_platform::services;
use sqlx::{Connection, PgConnection};

use crate::support::Fixture;

/// PostgreSQL's `insufficient_privilege`: refused for want of a privilege, not by a trigger or a check.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

async fn refused(db: &mut PgConnection, sql: &str) {
    let error = sqlx::query(sql)
        .execute(&mut *db)
        .await
        .expect_err(&format!("refused: {sql}"));
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(
        code.as_deref(),
        Some(INSUFFICIENT_PRIVILEGE),
        "{sql}: {error}"
    );
}

async fn count(db: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut *db)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_serves_as_a_role_that_can_use_only_its_own_schema() {
    let f = Fixture::start().await;
    let sender = f.agency("dsa-pirdop");
    let case = f.open_twins_case(sender).await;
    // The flow goes through with every service as its runtime role.
    let referral = f.submit(sender, &case, f.demo.service("ftpc-vratsa")).await;
    assert!(!referral.id.is_empty());

    let mut owner = f.stack.db().await;
    let owners: Vec<(String, String)> = sqlx::query_as(
        "SELECT nspname::text, nspowner::regrole::text FROM pg_namespace
          WHERE nspname IN ('cases', 'referrals') ORDER BY nspname",
    )
    .fetch_all(&mut owner)
    .await
    .expect("schema owners");
    let admin: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut owner)
        .await
        .expect("owner role");
    assert_eq!(
        owners,
        [("cases".into(), admin.clone()), ("referrals".into(), admin)],
        "the schemas are the owner's, not the runtime roles'"
    );
    // Entries may still be appended while the test runs: those of now are the ones that must stay.
    let trail_before = count(&mut owner, "cases.audit_trail").await;
    assert!(trail_before >= 1, "opening the case was recorded");
    let last: i64 = sqlx::query_scalar("SELECT max(seq) FROM cases.audit_trail")
        .fetch_one(&mut owner)
        .await
        .expect("last entry");

    let url = runtime_url(&f.stack.database_url, services::CASES.name);
    let mut cases = PgConnection::connect(&url)
        .await
        .expect("the cases service's runtime role logs in");
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut cases)
        .await
        .expect("role");
    assert_eq!(role, "placement_cases");

    // Its own tables, to read.
    assert!(count(&mut cases, "cases.cases").await >= 1);
    assert!(count(&mut cases, "cases.audit_trail").await >= trail_before);
    // Nothing of another service's.
    refused(&mut cases, "SELECT count(*) FROM referrals.referrals").await;
    refused(&mut cases, "SELECT count(*) FROM referrals.audit_trail").await;
    // No new objects in its own schema, nor its migrations' history.
    refused(&mut cases, "CREATE TABLE cases.intruder (n int)").await;
    refused(&mut cases, "SELECT count(*) FROM cases._sqlx_migrations").await;
    // The audit trail only read and appended to: refused by privilege, before any trigger is asked.
    refused(&mut cases, "UPDATE cases.audit_trail SET outcome = 'OK'").await;
    refused(&mut cases, "DELETE FROM cases.audit_trail").await;
    refused(&mut cases, "TRUNCATE cases.audit_trail").await;
    refused(&mut cases, "DELETE FROM cases.audit_head").await;
    refused(&mut cases, "TRUNCATE cases.children").await;
    cases.close().await.ok();

    // And the other way round: the referrals service's role cannot read the cases schema.
    let url = runtime_url(&f.stack.database_url, services::REFERRALS.name);
    let mut referrals = PgConnection::connect(&url)
        .await
        .expect("the referrals service's runtime role logs in");
    assert!(count(&mut referrals, "referrals.referrals").await >= 1);
    refused(&mut referrals, "SELECT count(*) FROM cases.children").await;
    referrals.close().await.ok();

    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM cases.audit_trail WHERE seq <= $1")
        .bind(last)
        .fetch_one(&mut owner)
        .await
        .expect("entries kept");
    assert_eq!(kept, trail_before, "the refused statements changed nothing");
    assert!(count(&mut owner, "cases.children").await >= 1);
}
