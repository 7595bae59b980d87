//! WatchNotifications: an agency's inbox streamed as it fills, in commit order, for as long as the
//! caller's token lasts, within limits on the streams one agency and one person keep open.

use std::{
    collections::HashMap,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::Duration,
};

use placement_platform::{
    admission::{Admitted, Limit},
    caller::Caller,
    error::{ServiceError, ServiceResult},
};
use placement_proto::v1::{Language, Notification};
use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use uuid::Uuid;

use super::{
    model::{Arrival, InboxError},
    store,
    told::Told,
};

/// How many WatchNotifications streams one agency, and one person of it, keep open at once: each looks
/// at the database every second, so open streams are a cost that no caller may grow without end.
pub struct WatchLimits {
    per_agency: Limit<Uuid>,
    per_person: Limit<(Uuid, String)>,
    watching: Watching,
}

impl WatchLimits {
    pub fn new(per_agency: NonZeroUsize, per_person: NonZeroUsize) -> Self {
        Self {
            per_agency: Limit::new(per_agency, "watch streams per agency"),
            per_person: Limit::new(per_person, "watch streams per person"),
            watching: Watching::default(),
        }
    }

    /// The agencies these streams watch, as they open and end.
    pub fn watching(&self) -> Watching {
        self.watching.clone()
    }

    fn admit(&self, caller: &Caller) -> ServiceResult<Lease> {
        let person = self
            .per_person
            .admit((caller.agency_id, caller.subject.clone()))?;
        let agency = self.per_agency.admit(caller.agency_id)?;
        // Dev-mode callers have no token, so nothing to end at.
        let ends_at = caller.expires_at().map(|exp| {
            let left = (exp - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            tokio::time::Instant::now() + left
        });
        Ok(Lease {
            _places: (person, agency),
            _watcher: self.watching.enter(caller.agency_id),
            ends_at,
        })
    }
}

/// The agencies with a WatchNotifications stream open in this instance: applying an event words its
/// notices for the streams (reads the names their words need) only when one of its recipients is
/// watched. A stream that opens meanwhile is handed no words and looks the notice up itself.
#[derive(Clone, Default)]
pub struct Watching(Arc<Mutex<HashMap<Uuid, usize>>>);

impl Watching {
    /// Whether any of `agencies` has a stream open.
    pub fn any(&self, agencies: &[Uuid]) -> bool {
        let open = self.0.lock().expect("not poisoned");
        agencies.iter().any(|a| open.contains_key(a))
    }

    fn enter(&self, agency: Uuid) -> Watcher {
        let mut open = self.0.lock().expect("not poisoned");
        *open.entry(agency).or_default() += 1;
        drop(open);
        Watcher {
            watching: self.clone(),
            agency,
        }
    }
}

/// One open stream of an agency, counted in [`Watching`] until dropped.
struct Watcher {
    watching: Watching,
    agency: Uuid,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut open = self.watching.0.lock().expect("not poisoned");
        if let Some(n) = open.get_mut(&self.agency) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.agency);
            }
        }
    }
}

/// What a stream holds while open: its places under the limits, its count in [`Watching`], and when its
/// token expires.
struct Lease {
    _places: (Admitted<(Uuid, String)>, Admitted<Uuid>),
    _watcher: Watcher,
    ends_at: Option<tokio::time::Instant>,
}

impl Lease {
    async fn expired(&self) {
        match self.ends_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

/// Where a stream starts and how it words what it sends.
#[derive(Debug, Clone, Copy)]
pub struct Watched {
    /// After the notification numbered so (0: after the newest).
    pub after: u64,
    /// The reader's language.
    pub language: Language,
}

/// Opens a stream of the caller's agency's inbox, if the limits leave room for it.
pub fn open(
    limits: &WatchLimits,
    caller: &Caller,
    pool: PgPool,
    watched: Watched,
    arrivals: broadcast::Receiver<Arc<[Arrival]>>,
    shutdown: CancellationToken,
) -> ServiceResult<mpsc::Receiver<Result<Notification, Status>>> {
    let lease = limits.admit(caller)?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(watch(
        pool,
        caller.agency_id,
        watched,
        arrivals,
        tx,
        lease,
        shutdown,
    ));
    Ok(rx)
}

/// Streams the agency's notifications as `watched` says, oldest first, waking on every commit of this
/// instance and at least once a second (for notifications another instance wrote), until the
/// caller's token expires.
async fn watch(
    pool: PgPool,
    agency: Uuid,
    watched: Watched,
    arrivals: broadcast::Receiver<Arc<[Arrival]>>,
    out: mpsc::Sender<Result<Notification, Status>>,
    lease: Lease,
    shutdown: CancellationToken,
) {
    tokio::select! {
        () = follow(pool, agency, watched, arrivals, &out, shutdown) => {}
        // A stream does not outlive the credentials it was opened with, even when its reader stopped
        // reading: a send waiting for room is dropped with the rest, and the lease's places are freed.
        () = lease.expired() => {
            let _ = out.try_send(Err(ServiceError::from(InboxError::TokenExpired).into()));
        }
    }
}

async fn follow(
    pool: PgPool,
    agency: Uuid,
    watched: Watched,
    mut arrivals: broadcast::Receiver<Arc<[Arrival]>>,
    out: &mpsc::Sender<Result<Notification, Status>>,
    shutdown: CancellationToken,
) {
    let language = watched.language;
    // Streams go by the agency's inbox position, which commits in order (see the migration that added it).
    let start = store::watch_start(&pool, agency, watched.after).await;
    let mut cursor = match start {
        Ok(Some(position)) => position,
        Ok(None) => {
            let _ = out
                .send(Err(ServiceError::from(InboxError::NotOwnSequence).into()))
                .await;
            return;
        }
        Err(e) => {
            let _ = out.send(Err(Status::from(ServiceError::from(e)))).await;
            return;
        }
    };
    let mut look = true;
    loop {
        if look {
            match send_after(&pool, (agency, language), &mut cursor, out).await {
                Sent::Closed => return,
                Sent::More => continue,
                Sent::UpToDate => {}
            }
        }
        tokio::select! {
            next = handed_over(&mut arrivals, (agency, language), &mut cursor, out) => match next {
                Some(again) => look = again,
                None => return,
            },
            // Wake-ups come from this instance's commits; another instance's are found by looking.
            _ = tokio::time::sleep(Duration::from_secs(1)) => look = true,
            _ = out.closed() => return,
            _ = shutdown.cancelled() => {
                let _ = out.send(Err(ServiceError::from(InboxError::ShuttingDown).into())).await;
                return;
            }
        }
    }
}

/// What one look at the inbox did.
enum Sent {
    /// The stream's receiver is gone.
    Closed,
    /// A full page went out: look again at once.
    More,
    UpToDate,
}

/// Sends the agency's notifications after `cursor`, one page, worded in `language`, moving the cursor.
async fn send_after(
    pool: &PgPool,
    (agency, language): (Uuid, Language),
    cursor: &mut i64,
    out: &mpsc::Sender<Result<Notification, Status>>,
) -> Sent {
    const PAGE: usize = 100;
    match store::notifications_after(
        pool,
        agency,
        *cursor,
        placement_platform::numbers::len_i64(PAGE),
    )
    .await
    {
        Ok(rows) => {
            let full = rows.len() == PAGE;
            let told: Vec<Told> = rows.iter().filter_map(|(_, r)| r.told()).collect();
            // Without the names, a notice still reads (it says "the service"); the stream goes on.
            let names = (crate::names::book_of(pool, told.iter().flat_map(Told::named_ids)).await)
                .inspect_err(|e| tracing::warn!(error = %e, "names for the watch not read"))
                .unwrap_or_default();
            for (position, row) in rows {
                let notification = row.to_proto(&names, language);
                tracing::trace!(event_id = %notification.event_id, %agency, "streaming as looked up");
                if out.send(Ok(notification)).await.is_err() {
                    return Sent::Closed;
                }
                *cursor = position;
            }
            if full { Sent::More } else { Sent::UpToDate }
        }
        // A database outage does not end the stream; the next pass tries again.
        Err(e) => {
            tracing::warn!(error = %e, "watch query failed");
            Sent::UpToDate
        }
    }
}

/// Waits for commits that concern the agency. Commits for other agencies do not wake the stream. A
/// notification handed over that is next in the inbox goes out as it is; anything else (a gap, another
/// instance's commits, missed wake-ups) asks for a look: returns whether to look, or None when the
/// stream or the broadcast ended.
async fn handed_over(
    arrivals: &mut broadcast::Receiver<Arc<[Arrival]>>,
    (agency, language): (Uuid, Language),
    cursor: &mut i64,
    out: &mpsc::Sender<Result<Notification, Status>>,
) -> Option<bool> {
    loop {
        let batch = match arrivals.recv().await {
            Ok(batch) => batch,
            Err(broadcast::error::RecvError::Lagged(_)) => return Some(true),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        let (mut mine, mut look) = (false, false);
        for arrival in batch.iter().filter(|a| a.agency == agency) {
            mine = true;
            match &arrival.notification {
                Some((position, _)) if *position <= *cursor => {}
                Some((position, committed)) if *position == *cursor + 1 && !look => {
                    let notification = committed.worded(language);
                    tracing::trace!(event_id = %notification.event_id, %agency, "streaming as handed over");
                    // Only once sent: a send cut short by another branch of the caller's select leaves
                    // the notification to the next look.
                    if out.send(Ok(notification)).await.is_err() {
                        return None;
                    }
                    *cursor = *position;
                }
                _ => look = true,
            }
        }
        if mine {
            return Some(look);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agency is watched while any of its streams is open, and no longer once the last one ends.
    #[test]
    fn an_agency_is_watched_while_one_of_its_streams_is_open() {
        let watching = Watching::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(!watching.any(&[a, b]));
        let first = watching.enter(a);
        let second = watching.enter(a);
        assert!(watching.any(&[b, a]));
        assert!(!watching.any(&[b]));
        assert!(!watching.any(&[]));
        drop(first);
        assert!(watching.any(&[a]), "a second stream of the agency is open");
        drop(second);
        assert!(!watching.any(&[a]));
        assert!(watching.0.lock().unwrap().is_empty(), "nothing kept of it");
    }
}
