//! A transaction whose caller goes away must not leave its pooled connection inside a transaction.

use std::time::Duration;

use sqlx::{Connection as _, Executor, postgres::PgPoolOptions};

/// sqlx 0.8 leaves a connection inside a transaction when the future starting it is dropped while its
/// `BEGIN` is on the wire (transact-rs/sqlx#4393); that lost a notification when a broker restart ended a
/// consumer's session mid-apply. `run_to_completion` (what `db::begin` and the consumer's apply use) must
/// finish starting it, so that the dropped `Transaction` rolls back and the next borrower's work commits.
#[tokio::test]
async fn a_cancelled_begin_leaves_no_transaction_behind() {
    let url = placement_e2e::admin_url();
    // One connection, so the next borrower gets the same one.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    let table = format!("begin_cancel_{}", uuid::Uuid::new_v4().simple());
    pool.execute(format!("CREATE TABLE {table} (n int)").as_str())
        .await
        .expect("create table");

    // The BEGIN takes a while (a sleep in the same simple query): the caller gives up half-way.
    let started = {
        let pool = pool.clone();
        placement_platform::db::run_to_completion(async move {
            #[allow(clippy::disallowed_methods)] // the slow BEGIN is the point here
            pool.begin_with("BEGIN; SELECT pg_sleep(0.5)").await
        })
    };
    let gave_up = tokio::time::timeout(Duration::from_millis(100), started).await;
    assert!(
        gave_up.is_err(),
        "the slow BEGIN finished before the caller gave up"
    );

    // The next borrower writes without a transaction of its own: it must be committed at once.
    pool.execute(format!("INSERT INTO {table} VALUES (1)").as_str())
        .await
        .expect("insert");
    let mut other = sqlx::PgConnection::connect(&url).await.expect("connect");
    let seen: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut other)
        .await
        .expect("count");
    let stuck: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(&mut other)
    .await
    .expect("activity");
    // Closing the pool ends whatever its connection still holds, so the table can go.
    pool.close().await;
    other
        .execute(format!("DROP TABLE {table}").as_str())
        .await
        .expect("drop table");
    assert_eq!(
        seen, 1,
        "the next borrower's write ran inside the abandoned transaction"
    );
    assert_eq!(stuck, 0, "a connection was left idle in a transaction");
}

/// The two receiving parties acknowledge a referral at the same moment, eight times. The step that waits
/// for the other's lock reads the referral's parties with the lock; had it kept those of the moment it
/// started, it would not see the other's acknowledgement and the referral would stay SUBMITTED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_acknowledgements_at_once_both_count() {
    use crate::support::Fixture;
    use placement_cli::clients::as_agency;
    use placement_proto::v1::{AcknowledgeReferralRequest, ReferralStatus};

    let f = Fixture::in_process().await;
    let pirdop = f.agency("dsa-pirdop");
    let service = f.demo.service("ftpc-vratsa");
    for round in 0..8 {
        let case = f.open_twins_case(pirdop).await;
        let referral = f.submit(pirdop, &case, service).await;
        let acknowledge = |party: &str| {
            let mut referrals = f.clients.referrals.clone();
            let request = as_agency(
                f.agency(party),
                AcknowledgeReferralRequest {
                    referral_id: referral.id.clone(),
                },
            );
            async move { referrals.acknowledge_referral(request).await }
        };
        let (provider, foster) =
            tokio::join!(acknowledge("provider-vratsa"), acknowledge("foster-vratsa"));
        provider.expect("the provider's acknowledgement");
        foster.expect("the foster-care team's acknowledgement");
        let now = f.referral(pirdop, &referral.id).await;
        assert_eq!(
            now.status,
            ReferralStatus::Acknowledged as i32,
            "round {round}: both acknowledgements count"
        );
        assert!(
            now.acknowledgements
                .iter()
                .all(|p| p.acknowledged_at.is_some()),
            "round {round}: {:?}",
            now.acknowledgements
        );
    }
}
