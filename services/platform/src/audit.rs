//! The audit trail: every call that reads or changes a case or a referral, appended in the same transaction
//! as the change it records, each entry chained to the previous one by a SHA-256 hash. The cases and
//! referrals services include [`MIGRATOR`] and serve [`AuditTrail`] (to the national authority's operators
//! only).

use std::{
    num::NonZeroUsize,
    sync::{LazyLock, OnceLock},
    time::Duration,
};

use chrono::{DateTime, SubsecRound, Utc};
use placement_proto::v1::{
    AuditEntry, ListAuditTrailRequest, ListAuditTrailResponse, VerifyAuditTrailRequest,
    VerifyAuditTrailResponse, audit_service_server::AuditService,
};
use sha2::{Digest, Sha256};
use sqlx::{FromRow, PgConnection, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub mod checkpoint;

use crate::{
    CallerExt,
    admission::Limit,
    caller::Caller,
    error::{ServiceError, ServiceResult, parse_id, respond},
    page::{page_size, take_page},
    time::timestamp,
};

/// The audit trail's tables, in the schema of the service that uses it.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What one audited call did.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub caller: &'a Caller,
    /// e.g. "placement.v1.ReferralService/AcceptReferral".
    pub rpc: &'a str,
    /// "case" or "referral".
    pub record_type: &'a str,
    pub record_ids: &'a [Uuid],
    /// "OK", or the status code's name.
    pub outcome: &'a str,
}

#[derive(Debug, Clone, FromRow)]
struct Row {
    seq: i64,
    at: DateTime<Utc>,
    agency_id: Uuid,
    subject: String,
    rpc: String,
    record_type: String,
    record_ids: Vec<Uuid>,
    outcome: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl Row {
    /// SHA-256 over the entry's own fields, each length-prefixed so no two entries serialise alike.
    fn content_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(&self.at.timestamp_micros().to_be_bytes());
        field(self.agency_id.as_bytes());
        field(self.subject.as_bytes());
        field(self.rpc.as_bytes());
        field(self.record_type.as_bytes());
        field(&(self.record_ids.len() as u64).to_be_bytes());
        for id in &self.record_ids {
            field(id.as_bytes());
        }
        field(self.outcome.as_bytes());
        h.finalize().into()
    }

    /// The link: SHA-256 over the previous hash (32 bytes), the sequence number (8 bytes, big-endian) and
    /// the content digest. `append` has PostgreSQL compute the same, so the chain is extended in one
    /// statement and the head row is locked for as short a time as possible.
    fn compute_hash(&self, prev: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(prev);
        h.update(self.seq.to_be_bytes());
        h.update(self.content_digest());
        h.finalize().to_vec()
    }

    fn into_proto(self) -> AuditEntry {
        AuditEntry {
            sequence: crate::numbers::serial(self.seq),
            at: Some(timestamp(self.at)),
            agency_id: self.agency_id.to_string(),
            subject: self.subject,
            rpc: self.rpc,
            record_type: self.record_type,
            record_ids: self.record_ids.iter().map(Uuid::to_string).collect(),
            outcome: self.outcome,
            previous_hash: hex(&self.prev_hash),
            hash: hex(&self.hash),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends an entry inside the caller's transaction. The head row's lock orders concurrent appends, so the
/// chain never forks; it is held until that transaction ends.
pub async fn append(conn: &mut PgConnection, entry: &Entry<'_>) -> sqlx::Result<()> {
    bind_entry(sqlx::query(APPEND.as_str()), entry)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The statement that appends an entry and nothing else.
static APPEND: LazyLock<String> = LazyLock::new(|| append_statement(""));

/// The statement that appends an entry (parameters `$1` to `$8`, bound by [`bind_entry`]), with `also`:
/// further data-modifying CTEs (`name AS (INSERT …), ` each, parameters from `$9` on) that run in the same
/// statement, so the last writes of a call travel with its entry in one round trip.
pub fn append_statement(also: &str) -> String {
    format!(
        "WITH {also}head AS (SELECT seq, hash FROM audit_head WHERE only_row FOR UPDATE),
              next AS (SELECT seq + 1 AS seq, hash AS prev_hash,
                              sha256(hash || int8send(seq + 1) || $1) AS hash FROM head),
              moved AS (UPDATE audit_head SET seq = next.seq, hash = next.hash FROM next WHERE only_row)
         INSERT INTO audit_trail (seq, at, agency_id, subject, rpc, record_type, record_ids, outcome, prev_hash, hash)
         SELECT next.seq, $2, $3, $4, $5, $6, $7, $8, next.prev_hash, next.hash FROM next"
    )
}

/// Binds `entry` to an [`append_statement`] as its parameters `$1` to `$8`, dated now.
pub fn bind_entry<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    entry: &Entry<'_>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let row = Row {
        seq: 0, // given by the head, in the statement
        // Microseconds, as PostgreSQL keeps them, so the hash can be recomputed from the stored row.
        at: Utc::now().trunc_subsecs(6),
        agency_id: entry.caller.agency_id,
        subject: entry.caller.subject.clone(),
        rpc: entry.rpc.to_string(),
        record_type: entry.record_type.to_string(),
        record_ids: entry.record_ids.to_vec(),
        outcome: entry.outcome.to_string(),
        prev_hash: Vec::new(),
        hash: Vec::new(),
    };
    query
        .bind(row.content_digest().to_vec())
        .bind(row.at)
        .bind(row.agency_id)
        .bind(row.subject)
        .bind(row.rpc)
        .bind(row.record_type)
        .bind(row.record_ids)
        .bind(row.outcome)
}

/// Every append waits for the trail's head, so reads (which anyone may send, for ids that need not
/// exist) are bounded per agency: one agency's flood queues at most this many appends ahead of everyone
/// else's calls.
static READS: OnceLock<Limit<Uuid>> = OnceLock::new();

/// How long an audited read waits for a place of its agency before it is refused.
const READ_WAIT: Duration = Duration::from_secs(2);

pub fn default_reads_per_agency() -> NonZeroUsize {
    NonZeroUsize::new(16).expect("not zero")
}

/// Sets the bound on an agency's audited reads at once (`PLACEMENT_AUDITED_READS_PER_AGENCY`); once, at
/// start, before the first read.
pub fn limit_reads(per_agency: NonZeroUsize) {
    let _ = READS.set(Limit::new(per_agency, "audited reads per agency"));
}

fn reads() -> &'static Limit<Uuid> {
    READS.get_or_init(|| Limit::new(default_reads_per_agency(), "audited reads per agency"))
}

/// A place for one of `caller`'s agency's audited reads or refusals. What gets none is not recorded: a
/// read is then refused (RESOURCE_EXHAUSTED), and a refusal stands as it is; either way nothing was
/// disclosed.
async fn read_place(caller: &Caller, rpc: &str) -> ServiceResult<crate::admission::Admitted<Uuid>> {
    reads()
        .admit_within(caller.agency_id, READ_WAIT)
        .await
        .inspect_err(|_| {
            tracing::warn!(agency_id = %caller.agency_id, rpc, "not recorded in the audit trail: too many of the agency's calls at once");
        })
}

/// [`append_refusal`] within the agency's bound.
async fn append_refusal_bounded(pool: &PgPool, entry: &Entry<'_>) {
    if let Ok(_place) = read_place(entry.caller, entry.rpc).await {
        append_refusal(pool, entry).await;
    }
}

/// Records a refused or failed call in a transaction of its own (the call's own was rolled back). A
/// failure to record is logged, not returned: the caller's answer is the refusal.
pub async fn append_refusal(pool: &PgPool, entry: &Entry<'_>) {
    if let Err(e) = append_alone(pool, entry).await {
        tracing::warn!(rpc = entry.rpc, error = %e, "could not record a refused call in the audit trail");
    }
}

/// Appends an entry in a transaction of its own: one statement, which commits by itself, so no BEGIN
/// and COMMIT cost a round trip each. Sent whole: a caller that goes away does not leave it half-way.
async fn append_alone(pool: &PgPool, entry: &Entry<'_>) -> sqlx::Result<()> {
    let query = bind_entry(sqlx::query(APPEND.as_str()), entry);
    let pool = pool.clone();
    crate::db::run_to_completion(async move {
        query.execute(&pool).await?;
        Ok(())
    })
    .await
}

/// Records a read and hands its result on; a read that cannot be recorded is not answered. A refused read
/// is recorded as such. A read past its agency's bound ([`limit_reads`]) is RESOURCE_EXHAUSTED; a refusal
/// past it stays the refusal, unrecorded.
pub async fn record_read<T>(
    pool: &PgPool,
    caller: &Caller,
    rpc: &str,
    record_type: &str,
    ids: &[Uuid],
    result: ServiceResult<T>,
) -> ServiceResult<T> {
    let entry = Entry {
        caller,
        rpc,
        record_type,
        record_ids: ids,
        outcome: outcome(&result),
    };
    if result.is_ok() {
        let _place = read_place(caller, rpc).await?;
        append_alone(pool, &entry).await?;
    } else {
        append_refusal_bounded(pool, &entry).await;
    }
    result
}

/// Records a refused change and hands the result on (a change that went through was recorded in its own
/// transaction).
pub async fn record_refusal<T>(
    pool: &PgPool,
    caller: &Caller,
    rpc: &str,
    record_type: &str,
    ids: &[Uuid],
    result: ServiceResult<T>,
) -> ServiceResult<T> {
    if let Err(e) = &result {
        append_refusal_bounded(
            pool,
            &Entry {
                caller,
                rpc,
                record_type,
                record_ids: ids,
                outcome: e.code_name(),
            },
        )
        .await;
    }
    result
}

/// The outcome name of a result.
pub fn outcome<T>(result: &ServiceResult<T>) -> &'static str {
    match result {
        Ok(_) => "OK",
        Err(e) => e.code_name(),
    }
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub entries: u64,
    /// The first broken link: (sequence, what is wrong); the sequence is 0 when what is wrong is a line of
    /// the checkpoint file rather than an entry.
    pub broken: Option<(u64, String)>,
}

/// The checkpoints a trail is compared with: what their file held, and the file's name for the problems.
#[derive(Debug, Clone, Copy)]
pub struct Against<'a> {
    pub log: &'a checkpoint::Log,
    pub file: &'a str,
}

/// Walks the whole trail in order, recomputing every hash, and compares it with every checkpoint of
/// `checkpoints` (read before this is called: a checkpoint is only written of a head already committed, so
/// none read earlier can be ahead of the head read here).
pub async fn verify(pool: &PgPool, checkpoints: Option<Against<'_>>) -> sqlx::Result<Verification> {
    use tokio_stream::StreamExt;
    let empty = checkpoint::Log::default();
    let against = checkpoints.unwrap_or(Against {
        log: &empty,
        file: "",
    });
    let mut covered = checkpoint::Covered::new(against.log, against.file);
    let mut conn = pool.acquire().await?;
    let (head_seq, head_hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE only_row")
            .fetch_one(&mut *conn)
            .await?;
    let mut rows = sqlx::query_as::<_, Row>(
        "SELECT seq, at, agency_id, subject, rpc, record_type, record_ids, outcome, prev_hash, hash
         FROM audit_trail WHERE seq <= $1 ORDER BY seq",
    )
    .bind(head_seq)
    .fetch(&mut *conn);
    let mut prev = vec![0u8; 32];
    let mut expected = 1i64;
    let mut entries = 0u64;
    while let Some(row) = rows.next().await.transpose()? {
        entries += 1;
        if let Some((seq, problem)) = link_problem(&row, expected, &prev) {
            return Ok(broken(entries, seq, problem));
        }
        if let Some(problem) = covered.check(row.seq, &row.hash) {
            return Ok(broken(entries, crate::numbers::serial(row.seq), problem));
        }
        prev = row.hash;
        expected += 1;
    }
    if expected - 1 != head_seq {
        return Ok(broken(
            entries,
            crate::numbers::serial(expected),
            format!("entries {expected} to {head_seq} are missing"),
        ));
    }
    if head_seq > 0 && prev != head_hash {
        return Ok(broken(
            entries,
            crate::numbers::serial(head_seq),
            format!("entry {head_seq} was altered"),
        ));
    }
    if let Some((seq, problem)) = covered.after(head_seq) {
        return Ok(broken(entries, seq, problem));
    }
    if let Some(problem) = checkpoint::bad_line(against.log, against.file) {
        return Ok(broken(entries, 0, problem));
    }
    Ok(Verification {
        entries,
        broken: None,
    })
}

/// What is wrong with `row`'s link, expected to be entry `expected` after the hash `prev`.
fn link_problem(row: &Row, expected: i64, prev: &[u8]) -> Option<(u64, String)> {
    let seq = crate::numbers::serial(row.seq);
    if row.seq != expected {
        return Some((
            crate::numbers::serial(expected),
            format!("entry {expected} is missing"),
        ));
    }
    if row.prev_hash != prev {
        return Some((
            seq,
            format!(
                "entry {seq} does not follow entry {}",
                seq.saturating_sub(1)
            ),
        ));
    }
    if row.compute_hash(prev) != row.hash {
        return Some((seq, format!("entry {seq} was altered")));
    }
    None
}

fn broken(entries: u64, seq: u64, problem: String) -> Verification {
    Verification {
        entries,
        broken: Some((seq, problem)),
    }
}

/// The gRPC face of the trail.
#[derive(Clone)]
pub struct AuditTrail {
    pub pool: PgPool,
    /// The service's checkpoints of the trail's head, when it keeps them.
    pub checkpoints: Option<checkpoint::Checkpoints>,
}

impl AuditTrail {
    /// The trail checked, against its checkpoints when it has them.
    async fn verify(&self) -> ServiceResult<Verification> {
        let Some(checkpoints) = &self.checkpoints else {
            return Ok(verify(&self.pool, None).await?);
        };
        let log = checkpoints.read().await.map_err(|e| {
            tracing::error!(error = %e, "the audit checkpoints could not be read");
            ServiceError::Unavailable("the audit trail's checkpoints cannot be read now".into())
        })?;
        let file = checkpoints.file_name();
        Ok(verify(
            &self.pool,
            Some(Against {
                log: &log,
                file: &file,
            }),
        )
        .await?)
    }

    async fn list(&self, req: ListAuditTrailRequest) -> ServiceResult<ListAuditTrailResponse> {
        let record = parse_id("record_id", &req.record_id)?;
        let limit = page_size("page_size", req.page_size)?;
        let after: i64 = if req.page_token.is_empty() {
            0
        } else {
            req.page_token.parse().map_err(|_| {
                ServiceError::invalid("page_token", "not a page token from this service")
            })?
        };
        let mut rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, at, agency_id, subject, rpc, record_type, record_ids, outcome, prev_hash, hash
             FROM audit_trail WHERE record_ids @> ARRAY[$1]::uuid[] AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(record)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let next_page_token = take_page(&mut rows, limit, |r| r.seq.to_string());
        Ok(ListAuditTrailResponse {
            entries: rows.into_iter().map(Row::into_proto).collect(),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl AuditService for AuditTrail {
    async fn list_audit_trail(
        &self,
        request: Request<ListAuditTrailRequest>,
    ) -> Result<Response<ListAuditTrailResponse>, Status> {
        request.caller()?.require_operator()?;
        respond(self.list(request.into_inner()).await)
    }

    async fn verify_audit_trail(
        &self,
        request: Request<VerifyAuditTrailRequest>,
    ) -> Result<Response<VerifyAuditTrailResponse>, Status> {
        request.caller()?.require_operator()?;
        let v = self.verify().await?;
        if let Some((seq, problem)) = &v.broken {
            tracing::error!(sequence = seq, problem, "the audit trail is broken");
        }
        Ok(Response::new(VerifyAuditTrailResponse {
            entries: v.entries,
            intact: v.broken.is_none(),
            first_broken_sequence: v.broken.as_ref().map(|b| b.0).unwrap_or(0),
            problem: v.broken.map(|b| b.1).unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64) -> Row {
        Row {
            seq,
            at: Utc::now().trunc_subsecs(6),
            agency_id: Uuid::new_v4(),
            subject: "s".into(),
            rpc: "r".into(),
            record_type: "case".into(),
            record_ids: vec![Uuid::new_v4()],
            outcome: "OK".into(),
            prev_hash: vec![0; 32],
            hash: vec![],
        }
    }

    #[test]
    fn every_field_is_in_the_hash() {
        let r = row(1);
        let h = r.compute_hash(&r.prev_hash);
        let changed = [
            Row {
                seq: 2,
                ..r.clone()
            },
            Row {
                subject: "t".into(),
                ..r.clone()
            },
            Row {
                rpc: "q".into(),
                ..r.clone()
            },
            Row {
                outcome: "NOT_FOUND".into(),
                ..r.clone()
            },
            Row {
                record_ids: vec![],
                ..r.clone()
            },
            Row {
                agency_id: Uuid::new_v4(),
                ..r.clone()
            },
        ];
        for c in changed {
            assert_ne!(c.compute_hash(&c.prev_hash), h);
        }
        assert_ne!(r.compute_hash(&[1; 32]), h);
    }

    #[test]
    fn outcomes_are_code_names() {
        assert_eq!(outcome::<()>(&Ok(())), "OK");
        assert_eq!(
            outcome::<()>(&Err(ServiceError::not_found("x"))),
            "NOT_FOUND"
        );
        assert_eq!(
            outcome::<()>(&Err(ServiceError::denied("x"))),
            "PERMISSION_DENIED"
        );
    }
}
