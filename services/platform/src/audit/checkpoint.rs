//! Checkpoints of the audit trail's head kept outside the database. The chain of hashes finds an entry
//! edited or removed, but the head lives in the same database, so its owner could rewrite the whole chain
//! consistently. Each service that keeps a trail therefore appends its head (sequence, hash, time), signed
//! with HMAC-SHA256 under a key the database never sees, to a file of its own
//! (`<PLACEMENT_AUDIT_CHECKPOINT_DIR>/<service>.checkpoints`) on a volume the database's owner cannot write;
//! `VerifyAuditTrail` compares the trail with every checkpoint there.
//!
//! A line: `<sequence> <hash, hex> <time, RFC 3339 in microseconds> <HMAC-SHA256, hex>`, the HMAC taken over
//! the first three fields and the service's name, so a line moved to another service's file does not
//! verify.

use std::{
    fs::OpenOptions,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// What the HMAC is taken over begins with this, so a checkpoint's signature is good for nothing else
/// signed with the same key.
const DOMAIN: &str = "placement-audit-checkpoint/1";

pub const DIR_VARIABLE: &str = "PLACEMENT_AUDIT_CHECKPOINT_DIR";
pub const KEY_VARIABLE: &str = "PLACEMENT_AUDIT_CHECKPOINT_KEY";

/// `PLACEMENT_AUDIT_CHECKPOINT_*`.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckpointSettings {
    /// `PLACEMENT_AUDIT_CHECKPOINT_DIR`: where the checkpoint files are; unset, none are written.
    #[serde(default)]
    pub audit_checkpoint_dir: Option<String>,
    /// `PLACEMENT_AUDIT_CHECKPOINT_KEY`: 32 bytes in base64, the HMAC-SHA256 key the lines are signed with.
    #[serde(default)]
    pub audit_checkpoint_key: Option<String>,
    /// `PLACEMENT_AUDIT_CHECKPOINT_EVERY`: how often the head is checkpointed when it moved.
    #[serde(default = "default_every", with = "humantime_serde")]
    pub audit_checkpoint_every: Duration,
}

fn default_every() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "{KEY_VARIABLE} must be set when {DIR_VARIABLE} is: the checkpoints are signed with it"
    )]
    NoKey,
    #[error("{KEY_VARIABLE} must be 32 bytes in base64")]
    Key,
    #[error("the audit checkpoint file {path} cannot be {doing}: {source}")]
    File {
        path: PathBuf,
        doing: &'static str,
        source: std::io::Error,
    },
    #[error("the audit trail's head could not be read: {0}")]
    Database(#[from] sqlx::Error),
}

/// The HMAC-SHA256 key the lines are signed with.
#[derive(Clone)]
pub struct CheckpointKey([u8; 32]);

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointKey(..)")
    }
}

impl CheckpointKey {
    pub fn from_base64(text: &str) -> Result<Self, CheckpointError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| CheckpointError::Key)?;
        Ok(Self(bytes.try_into().map_err(|_| CheckpointError::Key)?))
    }

    fn mac(&self, service: &str, fields: &[&str]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(DOMAIN.as_bytes());
        for part in std::iter::once(service).chain(fields.iter().copied()) {
            mac.update(b" ");
            mac.update(part.as_bytes());
        }
        mac
    }
}

/// The trail's head at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: DateTime<Utc>,
}

/// `checkpoint` as a signed line of `service`'s file (without its newline).
pub fn sign_line(key: &CheckpointKey, service: &str, checkpoint: &Checkpoint) -> String {
    let seq = checkpoint.seq.to_string();
    let hash = super::hex(&checkpoint.hash);
    let at = checkpoint.at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let mac = key
        .mac(service, &[&seq, &hash, &at])
        .finalize()
        .into_bytes();
    format!("{seq} {hash} {at} {}", super::hex(&mac))
}

/// Why a line of a checkpoint file is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("is not a checkpoint")]
    Malformed,
    #[error("does not verify: its signature is not this service's")]
    Signature,
}

/// The checkpoint a line of `service`'s file holds, if its signature verifies under `key`.
pub fn read_line(key: &CheckpointKey, service: &str, line: &str) -> Result<Checkpoint, LineError> {
    let [seq, hash, at, mac] = line
        .split(' ')
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| LineError::Malformed)?;
    let mac = unhex(mac).ok_or(LineError::Malformed)?;
    key.mac(service, &[seq, hash, at])
        .verify_slice(&mac)
        .map_err(|_| LineError::Signature)?;
    Ok(Checkpoint {
        seq: seq.parse().map_err(|_| LineError::Malformed)?,
        hash: unhex(hash)
            .filter(|h| h.len() == 32)
            .ok_or(LineError::Malformed)?,
        at: DateTime::parse_from_rfc3339(at)
            .map_err(|_| LineError::Malformed)?
            .with_timezone(&Utc),
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A checkpoint and the line it is on (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered {
    pub line: usize,
    pub checkpoint: Checkpoint,
}

/// What a checkpoint file holds: the checkpoints that verify, in order of sequence, and the lines that do
/// not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    pub checkpoints: Vec<Numbered>,
    pub bad: Vec<(usize, LineError)>,
}

impl Log {
    /// The lines of `text`, read with `key` as `service`'s. Empty lines are skipped, and so is a last line
    /// without its newline: it may be being written as the file is read.
    pub fn read(key: &CheckpointKey, service: &str, text: &[u8]) -> Self {
        let mut log = Log::default();
        let complete = text.len() - text.iter().rev().take_while(|b| **b != b'\n').count();
        for (i, line) in text[..complete].split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let read = std::str::from_utf8(line)
                .map_err(|_| LineError::Malformed)
                .and_then(|line| read_line(key, service, line));
            match read {
                Ok(checkpoint) => log.checkpoints.push(Numbered {
                    line: i + 1,
                    checkpoint,
                }),
                Err(e) => log.bad.push((i + 1, e)),
            }
        }
        log.checkpoints.sort_by_key(|n| n.checkpoint.seq);
        log
    }

    fn highest(&self) -> i64 {
        self.checkpoints.last().map_or(0, |n| n.checkpoint.seq)
    }
}

/// One service's checkpoint file.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    service: &'static str,
    key: CheckpointKey,
    every: Duration,
    /// The sequence of the highest checkpoint written: one is written only when the head passed it.
    written: Mutex<i64>,
}

impl Checkpoints {
    /// The checkpoints of `service` that `settings` ask for: none when no directory is set (said in a
    /// warning unless `development`). A directory without a key, a bad key, or a file that cannot be
    /// written or read is an error, so a service that should keep checkpoints does not start without them.
    pub fn from_settings(
        settings: &CheckpointSettings,
        service: &'static str,
        development: bool,
    ) -> Result<Option<Self>, CheckpointError> {
        let Some(dir) = settings
            .audit_checkpoint_dir
            .as_deref()
            .filter(|d| !d.trim().is_empty())
        else {
            if !development {
                tracing::warn!(
                    "{DIR_VARIABLE} is not set: the audit trail's head is not checkpointed outside the database, so the database's owner could rewrite the whole trail unnoticed"
                );
            }
            return Ok(None);
        };
        let key = settings
            .audit_checkpoint_key
            .as_deref()
            .filter(|k| !k.trim().is_empty())
            .ok_or(CheckpointError::NoKey)?;
        Self::open(
            Path::new(dir),
            service,
            CheckpointKey::from_base64(key)?,
            settings.audit_checkpoint_every,
        )
        .map(Some)
    }

    /// `<dir>/<service>.checkpoints`, created if it is not there. Fails when it cannot be written or read.
    pub fn open(
        dir: &Path,
        service: &'static str,
        key: CheckpointKey,
        every: Duration,
    ) -> Result<Self, CheckpointError> {
        let path = dir.join(format!("{service}.checkpoints"));
        append_to(&path, "")?;
        let text = std::fs::read(&path).map_err(|source| CheckpointError::File {
            path: path.clone(),
            doing: "read",
            source,
        })?;
        let written = Log::read(&key, service, &text).highest();
        tracing::info!(file = %path.display(), last_sequence = written, "audit trail checkpoints");
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                service,
                key,
                every,
                written: Mutex::new(written),
            }),
        })
    }

    /// The file's name, as problems name it.
    pub fn file_name(&self) -> String {
        self.inner
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Everything in the file now (nothing when it is not there).
    pub async fn read(&self) -> Result<Log, CheckpointError> {
        let inner = self.inner.clone();
        let read = tokio::task::spawn_blocking(move || match std::fs::read(&inner.path) {
            Ok(text) => Ok(Log::read(&inner.key, inner.service, &text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Log::default()),
            Err(source) => Err(CheckpointError::File {
                path: inner.path.clone(),
                doing: "read",
                source,
            }),
        });
        read.await.map_err(|e| CheckpointError::File {
            path: self.inner.path.clone(),
            doing: "read",
            source: std::io::Error::other(e),
        })?
    }

    /// Appends the trail's head if it moved past the last checkpoint written; returns what was written.
    pub async fn write_if_moved(
        &self,
        pool: &PgPool,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        let mut written = self.inner.written.lock().await;
        let (seq, hash): (i64, Vec<u8>) =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE only_row")
                .fetch_one(pool)
                .await?;
        if seq <= *written {
            return Ok(None);
        }
        let checkpoint = Checkpoint {
            seq,
            hash,
            at: Utc::now().trunc_subsecs(6),
        };
        let line = sign_line(&self.inner.key, self.inner.service, &checkpoint) + "\n";
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || append_to(&path, &line))
            .await
            .map_err(|e| CheckpointError::File {
                path: self.inner.path.clone(),
                doing: "written",
                source: std::io::Error::other(e),
            })??;
        *written = seq;
        Ok(Some(checkpoint))
    }

    /// Checkpoints the head every `PLACEMENT_AUDIT_CHECKPOINT_EVERY` while it moves, until `shutdown`. The
    /// last one is written by the caller once serving has stopped ([`Checkpoints::write_last`]), so calls
    /// still finishing after the signal are covered too.
    pub async fn keep(self, pool: PgPool, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.inner.every) => {}
                _ = shutdown.cancelled() => return,
            }
            self.write_logged(&pool).await;
        }
    }

    /// The checkpoint written at shutdown, after the last call was answered.
    pub async fn write_last(&self, pool: &PgPool) {
        self.write_logged(pool).await;
    }

    async fn write_logged(&self, pool: &PgPool) {
        match self.write_if_moved(pool).await {
            Ok(Some(c)) => tracing::debug!(sequence = c.seq, "audit trail checkpointed"),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "the audit trail's head could not be checkpointed")
            }
        }
    }
}

/// Appends `text` to `path` (made, readable by its owner and group only, if it is not there) and waits
/// until it is on disk: a checkpoint is only worth something once it survives a crash.
fn append_to(path: &Path, text: &str) -> Result<(), CheckpointError> {
    let fail = |doing, source| CheckpointError::File {
        path: path.to_path_buf(),
        doing,
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| fail("opened for appending", e))?;
    if !text.is_empty() {
        // One write of a whole line: appends of several instances sharing the file do not interleave.
        file.write_all(text.as_bytes())
            .map_err(|e| fail("written", e))?;
        file.sync_data().map_err(|e| fail("written", e))?;
    }
    Ok(())
}

/// Compares a trail's entries, walked in order, with the checkpoints of a [`Log`].
pub(super) struct Covered<'a> {
    pending: std::iter::Peekable<std::slice::Iter<'a, Numbered>>,
    file: &'a str,
}

impl<'a> Covered<'a> {
    pub(super) fn new(log: &'a Log, file: &'a str) -> Self {
        Self {
            pending: log.checkpoints.iter().peekable(),
            file,
        }
    }

    /// What is wrong with the entry `seq` of hash `hash` by the checkpoints up to it. Entries come in
    /// order, without gaps (the walk checks that first).
    pub(super) fn check(&mut self, seq: i64, hash: &[u8]) -> Option<String> {
        while let Some(n) = self.pending.next_if(|n| n.checkpoint.seq <= seq) {
            if n.checkpoint.seq == seq && n.checkpoint.hash != hash {
                return Some(format!(
                    "entry {seq} is not the entry checkpointed at {} ({})",
                    at(&n.checkpoint),
                    self.place(n)
                ));
            }
        }
        None
    }

    /// What is wrong with a trail that ends at `last`: a checkpoint beyond it means entries were removed.
    pub(super) fn after(&mut self, last: i64) -> Option<(u64, String)> {
        let n = self.pending.find(|n| n.checkpoint.seq > last)?;
        let first = crate::numbers::serial(last + 1);
        Some((
            first,
            format!(
                "entries {first} to {} are missing: the trail reached entry {} at {} ({})",
                n.checkpoint.seq,
                n.checkpoint.seq,
                at(&n.checkpoint),
                self.place(n)
            ),
        ))
    }

    fn place(&self, n: &Numbered) -> String {
        format!("checkpoint on line {} of {}", n.line, self.file)
    }
}

fn at(c: &Checkpoint) -> String {
    c.at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The first line of `log` that is not a good checkpoint, as a problem.
pub(super) fn bad_line(log: &Log, file: &str) -> Option<String> {
    log.bad
        .first()
        .map(|(line, e)| format!("line {line} of {file} {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> CheckpointKey {
        CheckpointKey::from_base64(&STANDARD.encode([byte; 32])).unwrap()
    }

    fn checkpoint(seq: i64) -> Checkpoint {
        Checkpoint {
            seq,
            hash: vec![u8::try_from(seq).unwrap(); 32],
            at: Utc::now().trunc_subsecs(6),
        }
    }

    #[test]
    fn a_signed_line_reads_back_as_its_checkpoint() {
        let c = checkpoint(42);
        let line = sign_line(&key(1), "referrals", &c);
        assert_eq!(read_line(&key(1), "referrals", &line), Ok(c));
    }

    #[test]
    fn a_line_changed_in_any_field_or_read_elsewhere_does_not_verify() {
        let c = checkpoint(42);
        let line = sign_line(&key(1), "referrals", &c);
        let fields: Vec<&str> = line.split(' ').collect();
        let other_hash = super::super::hex(&[9; 32]);
        let later =
            (c.at + chrono::Duration::seconds(1)).to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut flipped_mac = fields[3].to_string();
        flipped_mac.replace_range(0..1, if &fields[3][..1] == "0" { "1" } else { "0" });
        for forged in [
            ["43", fields[1], fields[2], fields[3]].join(" "),
            [fields[0], &other_hash, fields[2], fields[3]].join(" "),
            [fields[0], fields[1], &later, fields[3]].join(" "),
            [fields[0], fields[1], fields[2], &flipped_mac].join(" "),
        ] {
            assert_eq!(
                read_line(&key(1), "referrals", &forged),
                Err(LineError::Signature),
                "{forged}"
            );
        }
        assert_eq!(
            read_line(&key(2), "referrals", &line),
            Err(LineError::Signature)
        );
        assert_eq!(
            read_line(&key(1), "cases", &line),
            Err(LineError::Signature)
        );
        for junk in ["", "42", &line[..line.len() - 1], &format!("{line} x")] {
            assert_eq!(
                read_line(&key(1), "referrals", junk),
                Err(LineError::Malformed),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn a_log_keeps_the_checkpoints_in_order_and_names_the_lines_that_do_not_verify() {
        let k = key(1);
        let mut text = String::new();
        for seq in [5, 3] {
            text += &(sign_line(&k, "cases", &checkpoint(seq)) + "\n");
        }
        text += &(sign_line(&key(2), "cases", &checkpoint(7)) + "\n\n");
        text += "not a checkpoint\n";
        text += &sign_line(&k, "cases", &checkpoint(9))[..20];
        let log = Log::read(&k, "cases", text.as_bytes());
        let order: Vec<(usize, i64)> = (log.checkpoints.iter())
            .map(|n| (n.line, n.checkpoint.seq))
            .collect();
        assert_eq!(order, [(2, 3), (1, 5)]);
        assert_eq!(
            log.bad,
            [(3, LineError::Signature), (5, LineError::Malformed)]
        );
        assert_eq!(log.highest(), 5);
        assert_eq!(
            bad_line(&log, "cases.checkpoints").as_deref(),
            Some(
                "line 3 of cases.checkpoints does not verify: its signature is not this service's"
            )
        );
    }

    #[test]
    fn the_trail_is_compared_with_every_checkpoint_it_reaches() {
        let k = key(1);
        let text: String = [2, 4]
            .into_iter()
            .map(|s| sign_line(&k, "cases", &checkpoint(s)) + "\n")
            .collect();
        let log = Log::read(&k, "cases", text.as_bytes());
        let mut covered = Covered::new(&log, "cases.checkpoints");
        assert_eq!(covered.check(1, &[9; 32]), None, "no checkpoint of entry 1");
        assert_eq!(covered.check(2, &[2; 32]), None, "as checkpointed");
        let problem = covered.check(4, &[9; 32]).expect("entry 4 differs");
        assert!(
            problem.starts_with("entry 4 is not the entry checkpointed at ")
                && problem.ends_with("(checkpoint on line 2 of cases.checkpoints)"),
            "{problem}"
        );
        let mut covered = Covered::new(&log, "cases.checkpoints");
        assert_eq!(covered.check(1, &[1; 32]), None);
        assert_eq!(covered.check(2, &[2; 32]), None);
        let (first, problem) = covered.after(2).expect("entries 3 and 4 are gone");
        assert_eq!(first, 3);
        assert!(
            problem.starts_with("entries 3 to 4 are missing"),
            "{problem}"
        );
        let mut covered = Covered::new(&log, "cases.checkpoints");
        for s in 1..=4 {
            assert_eq!(covered.check(s, &[u8::try_from(s).unwrap(); 32]), None);
        }
        assert_eq!(covered.after(4), None);
    }

    #[test]
    fn the_file_is_made_in_the_directory_and_its_last_checkpoint_read_on_opening() {
        let dir =
            std::env::temp_dir().join(format!("placement-checkpoints-{}", uuid::Uuid::new_v4()));
        let missing = Checkpoints::open(&dir, "cases", key(1), default_every()).unwrap_err();
        assert!(matches!(missing, CheckpointError::File { .. }), "{missing}");
        std::fs::create_dir(&dir).unwrap();
        let first = Checkpoints::open(&dir, "cases", key(1), default_every()).unwrap();
        assert!(dir.join("cases.checkpoints").exists());
        assert_eq!(*first.inner.written.try_lock().unwrap(), 0);
        let line = sign_line(&key(1), "cases", &checkpoint(7)) + "\n";
        append_to(&dir.join("cases.checkpoints"), &line).unwrap();
        let again = Checkpoints::open(&dir, "cases", key(1), default_every()).unwrap();
        assert_eq!(*again.inner.written.try_lock().unwrap(), 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_is_32_bytes_in_base64() {
        assert!(CheckpointKey::from_base64(&STANDARD.encode([1u8; 31])).is_err());
        assert!(CheckpointKey::from_base64("not base64!").is_err());
        assert!(CheckpointKey::from_base64(&format!(" {}\n", STANDARD.encode([1u8; 32]))).is_ok());
    }

    #[test]
    fn a_directory_without_a_key_is_refused() {
        let settings = CheckpointSettings {
            audit_checkpoint_dir: Some(std::env::temp_dir().display().to_string()),
            audit_checkpoint_key: Some("  ".into()),
            audit_checkpoint_every: default_every(),
        };
        let refused = Checkpoints::from_settings(&settings, "cases", false).unwrap_err();
        assert!(matches!(refused, CheckpointError::NoKey));
        assert!(refused.to_string().contains(KEY_VARIABLE));
        let unset = CheckpointSettings {
            audit_checkpoint_dir: None,
            ..settings
        };
        assert!(
            Checkpoints::from_settings(&unset, "cases", true)
                .unwrap()
                .is_none()
        );
    }
}
