//! The audit trail's head checkpointed outside the database: the database's owner can rewrite the whole
//! chain so that every link holds, but not the signed checkpoints each service keeps in a file of its own;
//! `VerifyAuditTrail` compares the trail with them.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    time::{Duration, Instant},
};

use chrono::Utc;
use placement_cli::{clients::as_agency, demo::NATIONAL_AUTHORITY};
use placement_e2e::StackOptions;
use placement_platform::audit::checkpoint::{
    Checkpoint, CheckpointKey, DIR_VARIABLE, KEY_VARIABLE, Log, Numbered, sign_line,
};
use placement_platform::services::REFERRALS;
use placement_proto::v1::{
    GetCaseRequest, VerifyAuditTrailRequest, VerifyAuditTrailResponse,
    audit_service_client::AuditServiceClient,
};
use sqlx::{
    Executor, PgConnection,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

/// 32 bytes in base64: the stack's checkpoint key.
const KEY: &str = "ZTJlIGF1ZGl0IGNoZWNrcG9pbnQga2V5LCAzMiBiLiE=";
/// Another: what a forger without the key signs with.
const OTHER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const EVERY: &str = "PLACEMENT_AUDIT_CHECKPOINT_EVERY";

/// The checkpoint directory, removed when the test ends.
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn log_of(dir: &Path, service: &str) -> Log {
    let text = std::fs::read(dir.join(format!("{service}.checkpoints"))).unwrap_or_default();
    Log::read(&CheckpointKey::from_base64(KEY).unwrap(), service, &text)
}

/// The trail's head in `schema`.
async fn head(db: &mut PgConnection, schema: &str) -> (i64, Vec<u8>) {
    sqlx::query_as(&format!("SELECT seq, hash FROM {schema}.audit_head"))
        .fetch_one(db)
        .await
        .expect("the head")
}

/// Waits until `service`'s file holds a checkpoint of its entry `seq` or a later one.
async fn checkpoint_reaching(dir: &Path, service: &str, seq: i64) -> Numbered {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = log_of(dir, service);
        if let Some(n) = log.checkpoints.last().filter(|n| n.checkpoint.seq >= seq) {
            return n.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {service}'s entry {seq} within {WAIT:?}: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn verify(url: &str) -> VerifyAuditTrailResponse {
    AuditServiceClient::new(placement_cli::clients::channel(url).unwrap())
        .verify_audit_trail(as_agency(NATIONAL_AUTHORITY, VerifyAuditTrailRequest {}))
        .await
        .expect("VerifyAuditTrail")
        .into_inner()
}

/// What the database's owner can do with the trail of `schema` alone: `seq`'s outcome changed, then every
/// link from the first on recomputed as PostgreSQL computes it when appending (the fields' digest is the
/// service's, written in SQL), and the head moved to the new end.
async fn rewrite(db: &mut PgConnection, schema: &str, seq: i64, outcome: &str) {
    let field = "CREATE FUNCTION pg_temp.field(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE
             AS $$ SELECT int8send(length(b)::bigint) || b $$"
        .to_string();
    let digest = format!(
        "CREATE FUNCTION pg_temp.digest(t {schema}.audit_trail) RETURNS bytea LANGUAGE sql AS $$
             SELECT sha256(
                 pg_temp.field(int8send((extract(epoch FROM t.at) * 1000000)::bigint))
                 || pg_temp.field(uuid_send(t.agency_id))
                 || pg_temp.field(convert_to(t.subject, 'UTF8'))
                 || pg_temp.field(convert_to(t.rpc, 'UTF8'))
                 || pg_temp.field(convert_to(t.record_type, 'UTF8'))
                 || pg_temp.field(int8send(cardinality(t.record_ids)::bigint))
                 || coalesce((SELECT string_agg(pg_temp.field(uuid_send(id)), ''::bytea ORDER BY n)
                              FROM unnest(t.record_ids) WITH ORDINALITY AS u(id, n)), ''::bytea)
                 || pg_temp.field(convert_to(t.outcome, 'UTF8')))
         $$"
    );
    let relink = format!(
        "DO $$
         DECLARE
             r {schema}.audit_trail;
             prev bytea := decode(repeat('00', 32), 'hex');
         BEGIN
             FOR r IN SELECT * FROM {schema}.audit_trail ORDER BY seq LOOP
                 UPDATE {schema}.audit_trail
                     SET prev_hash = prev, hash = sha256(prev || int8send(r.seq) || pg_temp.digest(r))
                     WHERE seq = r.seq
                     RETURNING hash INTO prev;
             END LOOP;
             UPDATE {schema}.audit_head SET hash = prev;
         END $$"
    );
    for statement in [
        format!("ALTER TABLE {schema}.audit_trail DISABLE TRIGGER USER"),
        format!("UPDATE {schema}.audit_trail SET outcome = '{outcome}' WHERE seq = {seq}"),
        field,
        digest,
        relink,
    ] {
        db.execute(statement.as_str())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trail_rewritten_consistently_is_found_by_its_signed_checkpoints() {
    let dir =
        Folder(std::env::temp_dir().join(format!("placement-checkpoints-{}", Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).expect("checkpoint folder");
    let mut f = Fixture::with(StackOptions {
        env: vec![
            (DIR_VARIABLE.into(), dir.0.display().to_string()),
            (KEY_VARIABLE.into(), KEY.into()),
            (EVERY.into(), "1s".into()),
        ],
        ..Default::default()
    })
    .await;
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    let r = f.submit(pirdop, &case, f.demo.service("ftpc-vratsa")).await;
    f.referral(pirdop, &r.id).await;
    let mut db = f.stack.db().await;
    let (head_seq, _) = head(&mut db, "referrals").await;
    assert!(head_seq >= 2, "the submission and the read are recorded");

    // A checkpoint of the calls comes within a second or so, and holds the trail's hash at its entry.
    let covering = checkpoint_reaching(&dir.0, "referrals", head_seq).await;
    let at_checkpoint: Vec<u8> =
        sqlx::query_scalar("SELECT hash FROM referrals.audit_trail WHERE seq = $1")
            .bind(covering.checkpoint.seq)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(at_checkpoint, covering.checkpoint.hash);
    let url = f.stack.endpoints.url(REFERRALS).to_string();
    let intact = verify(&url).await;
    assert!(intact.intact, "{intact:?}");
    assert!(intact.entries >= u64::try_from(head_seq).unwrap());

    a_line_signed_with_another_key_is_reported(&dir.0, &url, head_seq).await;
    shutdown_writes_the_last_checkpoint(&mut f, &dir.0, &mut db, &case.id).await;
    a_consistent_rewrite_is_found(&f, &dir.0, &mut db, &covering).await;
}

/// A line not signed with the key is not taken (its claim, another hash of the head's entry, would be
/// reported as such) and is itself reported; without it the trail verifies again.
async fn a_line_signed_with_another_key_is_reported(dir: &Path, url: &str, head_seq: i64) {
    let file = dir.join("referrals.checkpoints");
    let kept = std::fs::read(&file).unwrap();
    let lines = String::from_utf8_lossy(&kept).lines().count();
    let forged = Checkpoint {
        seq: head_seq,
        hash: vec![0; 32],
        at: Utc::now(),
    };
    let forged = sign_line(
        &CheckpointKey::from_base64(OTHER_KEY).unwrap(),
        "referrals",
        &forged,
    );
    std::fs::write(&file, [kept.as_slice(), forged.as_bytes(), b"\n"].concat()).unwrap();
    let reported = verify(url).await;
    assert!(!reported.intact, "{reported:?}");
    assert_eq!(reported.first_broken_sequence, 0, "{reported:?}");
    assert_eq!(
        reported.problem,
        format!(
            "line {} of referrals.checkpoints does not verify: its signature is not this service's",
            lines + 1
        )
    );
    std::fs::write(&file, &kept).unwrap();
    assert!(verify(url).await.intact);
}

/// The owner rewrites the referrals' trail: a read by the sending DSA now says it was refused. Every link
/// holds; the checkpoint `covering` the read does not.
async fn a_consistent_rewrite_is_found(
    f: &Fixture,
    dir: &Path,
    db: &mut PgConnection,
    covering: &Numbered,
) {
    let url = f.stack.endpoints.url(REFERRALS).to_string();
    let (head_seq, _) = head(db, "referrals").await;
    let changed: i64 = sqlx::query_scalar(
        "SELECT min(seq) FROM referrals.audit_trail WHERE rpc LIKE '%/GetReferral' AND outcome = 'OK'",
    )
    .fetch_one(&mut *db)
    .await
    .unwrap();
    rewrite(db, "referrals", changed, "NOT_FOUND").await;
    let (seq_after, _) = head(db, "referrals").await;
    assert_eq!(seq_after, head_seq, "no entry added or removed");
    let now_at_checkpoint: Vec<u8> =
        sqlx::query_scalar("SELECT hash FROM referrals.audit_trail WHERE seq = $1")
            .bind(covering.checkpoint.seq)
            .fetch_one(&mut *db)
            .await
            .unwrap();
    assert_ne!(
        now_at_checkpoint, covering.checkpoint.hash,
        "the history changed"
    );
    // The chain alone cannot tell: every link holds.
    let options = PgConnectOptions::from_str(&f.stack.database_url)
        .unwrap()
        .options([("search_path", "referrals")]);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let chain_only = placement_platform::audit::verify(&pool, None)
        .await
        .unwrap();
    assert_eq!(chain_only.broken, None, "the rewrite is consistent");
    pool.close().await;
    // The checkpoints can: the first one at or after the changed entry names it.
    let first_checkpointed = (log_of(dir, "referrals").checkpoints.iter())
        .map(|n| n.checkpoint.seq)
        .filter(|seq| *seq >= changed)
        .min()
        .expect("a checkpoint at or after the changed entry");
    let found = verify(&url).await;
    assert!(!found.intact, "{found:?}");
    assert_eq!(
        found.first_broken_sequence,
        u64::try_from(first_checkpointed).unwrap(),
        "{found:?}"
    );
    assert!(
        found.problem.starts_with(&format!(
            "entry {first_checkpointed} is not the entry checkpointed at "
        )) && found.problem.contains("of referrals.checkpoints"),
        "{}",
        found.problem
    );
}

/// The cases service, checkpointing only every hour, writes its head when it is stopped: a read made just
/// before is covered. Then, given the directory without the key, it refuses to start.
async fn shutdown_writes_the_last_checkpoint(
    f: &mut Fixture,
    dir: &Path,
    db: &mut PgConnection,
    case_id: &str,
) {
    f.stack.set_env("cases", EVERY, "1h");
    f.stack.restart("cases");
    f.stack.wait_ready(WAIT).await;
    let pirdop = f.agency("dsa-pirdop");
    f.clients
        .cases
        .clone()
        .get_case(as_agency(
            pirdop,
            GetCaseRequest {
                case_id: case_id.to_string(),
            },
        ))
        .await
        .expect("GetCase");
    let (seq, hash) = head(db, "cases").await;
    let before = log_of(dir, "cases")
        .checkpoints
        .last()
        .map_or(0, |n| n.checkpoint.seq);
    assert!(
        before < seq,
        "the read is not checkpointed while the service runs"
    );
    f.stack.terminate("cases", Duration::from_secs(15));
    let last = log_of(dir, "cases")
        .checkpoints
        .last()
        .cloned()
        .expect("a checkpoint written at shutdown");
    assert_eq!((last.checkpoint.seq, last.checkpoint.hash), (seq, hash));

    f.stack.set_env("cases", KEY_VARIABLE, "");
    f.stack.restart("cases");
    let deadline = Instant::now() + WAIT;
    while f.stack.exited().as_deref() != Some("cases") {
        assert!(
            Instant::now() < deadline,
            "the cases service started without its checkpoint key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let said = std::fs::read_to_string(f.stack.log_dir.join("cases.log")).unwrap();
    assert!(
        said.contains(&format!(
            "{KEY_VARIABLE} must be set when {DIR_VARIABLE} is"
        )),
        "{said}"
    );
}
