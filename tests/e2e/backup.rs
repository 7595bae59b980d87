//! The restore drill: flows run, the database is backed up (deploy/backup.sh), dropped, restored into a
//! fresh one (deploy/restore.sh), and the services started on it: every referral and notification is
//! there, the audit trails verify, an event the backup caught unpublished is published once and tells
//! nobody twice, and new flows complete.

use std::{collections::BTreeMap, process::Command};

use placement_cli::{clients::as_agency, scenario::eventually};
use placement_e2e::{Stack, StackOptions, admin_url};
use placement_model::reference::{RESTORE_GAP, Reference};
use placement_platform::{caller::NATIONAL_AUTHORITY, services};
use placement_proto::v1::{
    GetReferralRequest, VerifyAuditTrailRequest, audit_service_client::AuditServiceClient,
};
use sqlx::{Connection, Executor};
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

fn script(name: &str, args: &[&str], database_url: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/");
    let out = Command::new("bash")
        .arg(format!("{path}{name}"))
        .args(args)
        .env("PLACEMENT_DATABASE_URL", database_url)
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Each agency's inbox, as (referral, kind) counts.
async fn inboxes(f: &Fixture, agencies: &[Uuid]) -> BTreeMap<Uuid, Vec<(String, i32)>> {
    let mut out = BTreeMap::new();
    for agency in agencies {
        let mut items: Vec<(String, i32)> = (f.inbox(*agency).await.into_iter())
            .map(|n| (n.referral_id, n.kind))
            .collect();
        items.sort();
        out.insert(*agency, items);
    }
    out
}

async fn audits_verify(stack: &Stack) {
    for service in [services::REFERRALS, services::CASES, services::DIRECTORY] {
        let channel =
            placement_cli::clients::channel(stack.endpoints.url(service)).expect("channel");
        let verified = AuditServiceClient::new(channel)
            .verify_audit_trail(as_agency(NATIONAL_AUTHORITY, VerifyAuditTrailRequest {}))
            .await
            .expect("VerifyAuditTrail")
            .into_inner();
        assert!(verified.intact, "{}: {verified:?}", service.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_into_a_fresh_database_and_the_exchange_goes_on() {
    let mut f = Fixture::start().await;
    let sender = f.agency("dsa-pirdop");
    let parties = [
        sender,
        f.agency("provider-vratsa"),
        f.agency("foster-vratsa"),
    ];
    let service = f.demo.service("ftpc-vratsa");
    let referrals = run_three_flows(&f, sender, service).await;
    let before = settle_before_the_backup(&f, &parties).await;

    // Back up, stop, lose the database.
    let dump = std::env::temp_dir().join(format!("placement-backup-{}.dump", Uuid::new_v4()));
    let (file, lost) = back_up_and_lose_the_database(&mut f, &dump).await;
    let (fresh, fresh_url) = restore_into_a_fresh_database(&file, &lost);
    // As if the backup had caught the last event between its commit and its publication.
    let mut db = sqlx::PgConnection::connect(&fresh_url)
        .await
        .expect("fresh");
    let replayed: Uuid = sqlx::query_scalar(
        "UPDATE referrals.outbox SET published_at = NULL
          WHERE id = (SELECT max(id) FROM referrals.outbox) RETURNING event_id",
    )
    .fetch_one(&mut db)
    .await
    .expect("unpublish");

    let restored = Stack::start(StackOptions {
        database: Some(fresh.clone()),
        ..Default::default()
    })
    .await;
    let old_stack = std::mem::replace(&mut f.stack, restored);
    drop(old_stack);
    f.clients = f.stack.clients();
    eventually("the caught event to be published", WAIT, || async {
        let mut db = sqlx::PgConnection::connect(&fresh_url).await.ok()?;
        let published: Option<bool> = sqlx::query_scalar(
            "SELECT published_at IS NOT NULL FROM referrals.outbox WHERE event_id = $1",
        )
        .bind(replayed)
        .fetch_optional(&mut db)
        .await
        .ok()?;
        (published == Some(true)).then_some(())
    })
    .await
    .expect("published after the restore");
    // Every referral, every notification, once.
    for id in &referrals {
        let r = f
            .clients
            .referrals
            .clone()
            .get_referral(as_agency(
                sender,
                GetReferralRequest {
                    referral_id: id.clone(),
                },
            ))
            .await
            .expect("the referral is there");
        assert_eq!(&r.into_inner().id, id);
    }
    audits_verify(&f.stack).await;
    assert_a_new_flow_completes_and_nothing_repeats(&f, &parties, service, &before).await;
    let _ = std::fs::remove_file(&dump);
    let _ = std::fs::remove_file(dump.with_extension("dump.sha256"));
}

/// Three referrals of `sender`, all but the first acknowledged by both parties; their ids.
async fn run_three_flows(f: &Fixture, sender: Uuid, service: Uuid) -> Vec<String> {
    let mut referrals = Vec::new();
    for i in 0..3 {
        let case = f.open_twins_case(sender).await;
        let r = f.submit(sender, &case, service).await;
        if i > 0 {
            f.acknowledge(&r.id, &["provider-vratsa", "foster-vratsa"])
                .await;
        }
        referrals.push(r.id);
    }
    referrals
}

/// Waits until every referral event is applied by the notifications service; returns the parties'
/// inboxes then.
async fn settle_before_the_backup(
    f: &Fixture,
    parties: &[Uuid],
) -> BTreeMap<Uuid, Vec<(String, i32)>> {
    let expected: usize = 3 + 2 * 2;
    eventually("the notifications to be written", WAIT, || async {
        let n: usize = inboxes(f, &parties[1..2])
            .await
            .values()
            .map(Vec::len)
            .sum();
        (n >= 3).then_some(())
    })
    .await
    .expect("the provider told");
    let stack = &f.stack;
    eventually("every event applied", WAIT, || async {
        let mut db = stack.db().await;
        let pending: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM referrals.outbox WHERE published_at IS NULL)
                  + (SELECT count(*) FROM referrals.outbox o WHERE NOT EXISTS
                       (SELECT 1 FROM notifications.processed_events p WHERE p.event_id = o.event_id))",
        )
        .fetch_one(&mut db)
        .await
        .expect("pending");
        (pending == 0).then_some(())
    })
    .await
    .expect("settled");
    let before = inboxes(f, parties).await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM referrals.outbox")
        .fetch_one(&mut f.stack.db().await)
        .await
        .expect("events");
    assert!(events as usize >= expected, "{events} referral events");
    before
}

/// Backs up the stack's database, stops the stack and drops the database; returns the dump's file and the
/// URL of the database lost.
async fn back_up_and_lose_the_database(
    f: &mut Fixture,
    dump: &std::path::Path,
) -> (String, String) {
    let file = script(
        "backup.sh",
        &[dump.to_str().expect("path")],
        &f.stack.database_url,
    );
    assert_eq!(file, dump.display().to_string());
    f.stack.stop_all();
    let lost = f.stack.database_url.clone();
    let mut admin = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("admin");
    let old = lost.rsplit('/').next().expect("name").to_string();
    admin
        .execute(format!("DROP DATABASE {old} WITH (FORCE)").as_str())
        .await
        .expect("drop");
    (file, lost)
}

/// Restores `file` into a fresh database; a database that holds the exchange is refused. Returns the fresh
/// database's name and URL.
fn restore_into_a_fresh_database(file: &str, lost: &str) -> (String, String) {
    let fresh = format!(
        "pe_{}_{}",
        std::process::id(),
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let fresh_url = format!("{}/{fresh}", lost.rsplit_once('/').expect("url").0);
    script("restore.sh", &[file, &fresh_url], &fresh_url);
    let refused = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/restore.sh"))
        .args([file, &fresh_url])
        .output()
        .expect("restore.sh");
    assert!(
        !refused.status.success(),
        "a restore over the exchange is refused"
    );
    (fresh, fresh_url)
}

/// A new flow completes, and the provider is told of it: once, beside what it had.
async fn assert_a_new_flow_completes_and_nothing_repeats(
    f: &Fixture,
    parties: &[Uuid; 3],
    service: Uuid,
    before: &BTreeMap<Uuid, Vec<(String, i32)>>,
) {
    let sender = parties[0];
    let case = f.open_twins_case(sender).await;
    let new = f.submit(sender, &case, service).await;
    // No reference is given again: the restore moved the counters past any given since the backup.
    let number = |r: &str| Reference::parse(r).expect("a reference").number;
    assert!(number(&new.reference) > RESTORE_GAP, "{}", new.reference);
    assert!(number(&case.reference) > RESTORE_GAP, "{}", case.reference);
    f.acknowledge(&new.id, &["provider-vratsa", "foster-vratsa"])
        .await;
    let provider = parties[1];
    eventually("the provider told of the new referral", WAIT, || async {
        let n = inboxes(f, &[provider]).await[&provider].len();
        (n > before[&provider].len()).then_some(())
    })
    .await
    .expect("told");
    let after = inboxes(f, parties).await;
    for agency in *parties {
        let old: Vec<&(String, i32)> = before[&agency].iter().collect();
        let kept: Vec<&(String, i32)> = after[&agency]
            .iter()
            .filter(|(r, _)| *r != new.id)
            .collect();
        assert_eq!(kept, old, "{agency}: every notification kept, none twice");
    }
}
