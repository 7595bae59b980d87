//! A load of whole flows (open a case, submit, both acknowledgements, accept, place) from concurrent
//! clients that retry as real clients do, and the tally of what every agency was told.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Datelike;
use placement_cli::{
    clients::{Clients, as_agency},
    demo::DemoDirectory,
};
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, Case, Child, ConfirmPlacementRequest, Date,
    GetReferralRequest, LegalBasis, LegalBasisKind, ListNotificationsRequest, OpenCaseRequest,
    Referral, ReferralStatus, Sex, SubmitReferralRequest,
};
use tonic::{Code, Status};
use uuid::Uuid;

pub const SENDERS: [&str; 8] = [
    "dsa-pirdop",
    "dsa-pravets",
    "dsa-dragoman",
    "dsa-zlatitsa",
    "dsa-vratsa",
    "dsa-mezdra",
    "dsa-stara-zagora",
    "dsa-haskovo",
];

/// Failed calls the clients retried, by status code.
pub type Retries = Arc<std::sync::Mutex<BTreeMap<String, usize>>>;

#[derive(Clone)]
pub struct Load {
    pub retries: Retries,
    pub clients: Clients,
    /// Clients of further instances; flows take turns between all of them.
    pub extra: Vec<Clients>,
    pub demo: DemoDirectory,
    pub service: Uuid,
    pub run: String,
    pub done: Arc<AtomicUsize>,
}

fn retryable(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
    )
}

/// Calls `call` until it succeeds, retrying what a real client retries, for at most 2 minutes.
/// A FAILED_PRECONDITION after a retry means the first attempt did commit: `already` checks that.
pub async fn with_retries<T, F, Fut>(
    retries: &Retries,
    what: &str,
    mut call: F,
) -> Result<Option<T>, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut delay = Duration::from_millis(50);
    let mut retried = false;
    loop {
        match call().await {
            Ok(v) => return Ok(Some(v)),
            Err(s) if retried && s.code() == Code::FailedPrecondition => return Ok(None),
            Err(s) if retryable(&s) && Instant::now() < deadline => {
                retried = true;
                *retries
                    .lock()
                    .expect("retries")
                    .entry(format!(
                        "{:?}: {}",
                        s.code(),
                        s.message().chars().take(50).collect::<String>()
                    ))
                    .or_insert(0) += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            Err(s) => return Err(format!("{what}: {s:?}")),
        }
    }
}

impl Load {
    pub async fn referral(&self, sender: Uuid, id: &str) -> Result<Referral, String> {
        with_retries(&self.retries, "GetReferral", || {
            let mut c = self.clients.referrals.clone();
            let req = as_agency(
                sender,
                GetReferralRequest {
                    referral_id: id.into(),
                },
            );
            async move { c.get_referral(req).await }
        })
        .await?
        .map(|r| r.into_inner())
        .ok_or_else(|| "GetReferral refused".into())
    }

    /// One whole flow; returns the referral id and its sender.
    pub async fn flow(self, i: usize) -> Result<(String, Uuid), String> {
        let sender = self.demo.agency(SENDERS[i % SENDERS.len()]);
        let clients = match i % (self.extra.len() + 1) {
            0 => &self.clients,
            n => &self.extra[n - 1],
        };
        let case = self.open_case(clients, sender, i).await?;
        let id = self.submit(clients, sender, &case.id, i).await?;
        self.acknowledge_both(clients, sender, &id).await?;
        self.accept_and_place(clients, sender, &id).await?;
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok((id, sender))
    }

    async fn open_case(&self, clients: &Clients, sender: Uuid, i: usize) -> Result<Case, String> {
        let year = chrono::Utc::now().year();
        Ok(with_retries(&self.retries, "OpenCase", || {
            let mut cases = clients.cases.clone();
            let req = as_agency(
                sender,
                OpenCaseRequest {
                    children: vec![Child {
                        pseudonym: format!("Child {i}"),
                        birth_year: year - 10,
                        sex: Sex::Male as i32,
                        ..Default::default()
                    }],
                    current_setting: String::new(),
                },
            );
            async move { cases.open_case(req).await }
        })
        .await?
        .ok_or("OpenCase refused")?
        .into_inner())
    }

    /// Submits case `case_id` to the run's service on a director's order of yesterday; returns the
    /// referral's id.
    async fn submit(
        &self,
        clients: &Clients,
        sender: Uuid,
        case_id: &str,
        i: usize,
    ) -> Result<String, String> {
        let d = chrono::Utc::now().date_naive() - chrono::Days::new(1);
        let submission = SubmitReferralRequest {
            case_id: case_id.to_string(),
            service_id: self.service.to_string(),
            legal_basis: Some(LegalBasis {
                kind: LegalBasisKind::DsaDirectorOrder as i32,
                number: format!("ZD-{i}"),
                issued_on: Some(Date {
                    year: d.year(),
                    month: d.month() as i32,
                    day: d.day() as i32,
                }),
                court: String::new(),
            }),
            reason: "Fault suite".into(),
            idempotency_key: format!("{}-{i}", self.run),
        };
        let referrals = clients.referrals.clone();
        let r = with_retries(&self.retries, "SubmitReferral", || {
            let mut c = referrals.clone();
            let req = as_agency(sender, submission.clone());
            async move { c.submit_referral(req).await }
        })
        .await?
        .ok_or("SubmitReferral refused")?
        .into_inner();
        Ok(r.id)
    }

    /// The provider and the foster-care team acknowledge; a refusal after a retry is checked against what
    /// the referral shows.
    async fn acknowledge_both(
        &self,
        clients: &Clients,
        sender: Uuid,
        id: &str,
    ) -> Result<(), String> {
        let provider = self.demo.agency("provider-vratsa");
        let foster = self.demo.agency("foster-vratsa");
        let referrals = clients.referrals.clone();
        for party in [provider, foster] {
            let done = with_retries(&self.retries, "AcknowledgeReferral", || {
                let mut c = referrals.clone();
                let req = as_agency(
                    party,
                    AcknowledgeReferralRequest {
                        referral_id: id.to_string(),
                    },
                );
                async move { c.acknowledge_referral(req).await }
            })
            .await?;
            if done.is_none() {
                let now = self.referral(sender, id).await?;
                let acked = now
                    .acknowledgements
                    .iter()
                    .any(|a| a.agency_id == party.to_string() && a.acknowledged_at.is_some());
                if !acked {
                    return Err(format!("{id}: acknowledgement refused"));
                }
            }
        }
        Ok(())
    }

    /// The provider accepts and the sender confirms the placement; a refusal after a retry is checked
    /// against the referral's status.
    async fn accept_and_place(
        &self,
        clients: &Clients,
        sender: Uuid,
        id: &str,
    ) -> Result<(), String> {
        let provider = self.demo.agency("provider-vratsa");
        let referrals = clients.referrals.clone();
        for (step, target) in [
            ("AcceptReferral", ReferralStatus::Accepted),
            ("ConfirmPlacement", ReferralStatus::Placed),
        ] {
            let done = if target == ReferralStatus::Accepted {
                with_retries(&self.retries, step, || {
                    let mut c = referrals.clone();
                    let req = as_agency(
                        provider,
                        AcceptReferralRequest {
                            referral_id: id.to_string(),
                        },
                    );
                    async move { c.accept_referral(req).await.map(drop) }
                })
                .await?
            } else {
                with_retries(&self.retries, step, || {
                    let mut c = referrals.clone();
                    let req = as_agency(
                        sender,
                        ConfirmPlacementRequest {
                            referral_id: id.to_string(),
                        },
                    );
                    async move { c.confirm_placement(req).await.map(drop) }
                })
                .await?
            };
            if done.is_none() && self.referral(sender, id).await?.status != target as i32 {
                return Err(format!("{id}: {step} refused"));
            }
        }
        Ok(())
    }
}

/// (referral id, kind) -> how many notifications `agency` has.
pub async fn notification_counts(
    clients: &Clients,
    agency: Uuid,
) -> BTreeMap<(String, i32), usize> {
    let mut counts = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = match with_retries(&Retries::default(), "ListNotifications", || {
            let mut c = clients.notifications.clone();
            let req = as_agency(
                agency,
                ListNotificationsRequest {
                    unread_only: false,
                    page_size: 500,
                    page_token: token.clone(),
                },
            );
            async move { c.list_notifications(req).await }
        })
        .await
        {
            Ok(Some(p)) => p.into_inner(),
            _ => return counts,
        };
        for n in page.notifications {
            *counts.entry((n.referral_id, n.kind)).or_insert(0) += 1;
        }
        if page.next_page_token.is_empty() {
            return counts;
        }
        token = page.next_page_token;
    }
}
