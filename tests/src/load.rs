//! A load of whole flows from concurrent clients that retry as real clients do, and the tally of what every
//! agency was told. Most flows send one referral (open a case, submit, both acknowledgements, accept,
//! place); every third is a search to three services (submit the search, every party acknowledges, the
//! foster-care team once per district, two services accept, the sender confirms one, and the third has
//! declined at once or is withdrawn as placed elsewhere).

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
    DeclineReason, DeclineReferralRequest, GetReferralRequest, GetSearchRequest, LegalBasis,
    LegalBasisKind, ListNotificationsRequest, NotificationKind, OpenCaseRequest, Referral,
    ReferralStatus, Search, Sex, SubmitReferralRequest, SubmitSearchRequest, WithdrawReason,
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

/// Every how many flows one is a search (the others send one referral each).
pub const SEARCH_EVERY: usize = 3;

/// Failed calls the clients retried, by status code.
pub type Retries = Arc<std::sync::Mutex<BTreeMap<String, usize>>>;

/// A service the load sends to, with the agencies that answer for it.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub service: Uuid,
    /// The agency that runs it.
    pub provider: Uuid,
    /// Its district's foster-care team.
    pub foster: Uuid,
    /// Its district (EKATTE code).
    pub region: &'static str,
}

#[derive(Clone)]
pub struct Load {
    pub retries: Retries,
    pub clients: Clients,
    /// Clients of further instances; flows take turns between all of them.
    pub extra: Vec<Clients>,
    pub demo: DemoDirectory,
    /// The services asked: a referral sent alone goes to the first; a search asks all three, in this order.
    /// The first two accept a search; the third declines at once or is left open. The first and the third
    /// share a district, so that its foster-care team acknowledges once for both.
    pub targets: [Target; 3],
    pub run: String,
    pub done: Arc<AtomicUsize>,
}

/// What became of one request of a flow, as the flow decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Placed,
    /// Withdrawn as placed elsewhere when the sender confirmed another request of its search.
    PlacedElsewhere,
    /// Declined at once, before any acknowledgement.
    Declined,
}

/// One request (referral) of a finished flow.
#[derive(Clone, Debug)]
pub struct Request {
    pub id: String,
    pub target: Target,
    pub end: End,
    /// Whether its service accepted it (and so held a place until it was placed or withdrawn).
    pub accepted: bool,
}

/// A finished flow: its sender and every request it sent (one, or three for a search).
#[derive(Clone, Debug)]
pub struct Flow {
    pub sender: Uuid,
    /// The search, for a flow that was one.
    pub search_id: Option<String>,
    pub requests: Vec<Request>,
}

/// The notification kinds the load follows: those of the steps it takes.
pub const FOLLOWED: [NotificationKind; 6] = [
    NotificationKind::ReferralSubmitted,
    NotificationKind::ReferralAcknowledged,
    NotificationKind::ReferralAccepted,
    NotificationKind::ReferralDeclined,
    NotificationKind::ReferralWithdrawn,
    NotificationKind::ReferralPlaced,
];

impl Request {
    /// How many notifications of `kind` `agency` must have of this request, sent by `sender`: each party
    /// is told once of each step that concerns it, and of nothing else.
    pub fn expected(&self, agency: Uuid, sender: Uuid, kind: NotificationKind) -> usize {
        use NotificationKind as K;
        let (t, declined) = (self.target, self.end == End::Declined);
        let receiving = agency == t.provider || agency == t.foster;
        let wanted = match kind {
            K::ReferralSubmitted => receiving,
            K::ReferralPlaced => receiving && self.end == End::Placed,
            K::ReferralWithdrawn => receiving && self.end == End::PlacedElsewhere,
            // The provider declined it itself; its district's foster-care team follows every request there.
            K::ReferralDeclined => declined && (agency == sender || agency == t.foster),
            K::ReferralAccepted => agency == sender && self.accepted,
            // Once for the provider, once for the foster-care team (for a search, once for its district).
            K::ReferralAcknowledged if agency == sender && !declined => return 2,
            _ => false,
        };
        usize::from(wanted)
    }

    /// The events this request published: submitted, then declined; or two acknowledgements, accepted
    /// if it was, then placed or withdrawn.
    pub fn events(&self) -> usize {
        match self.end {
            End::Declined => 2,
            _ => 4 + usize::from(self.accepted),
        }
    }

    /// The status and withdrawal reason the request must show now.
    pub fn shows(&self, r: &Referral) -> bool {
        match self.end {
            End::Placed => r.status == ReferralStatus::Placed as i32,
            End::Declined => r.status == ReferralStatus::Declined as i32,
            End::PlacedElsewhere => {
                r.status == ReferralStatus::Withdrawn as i32
                    && r.withdraw_reason == WithdrawReason::PlacedElsewhere as i32
            }
        }
    }
}

/// Flow `i` of a load: a search when it is one of every [`SEARCH_EVERY`]; which of the two offers the
/// sender chooses and whether the third service declines at once vary from one search to the next, so
/// that every combination occurs.
pub fn is_search(i: usize) -> bool {
    i % SEARCH_EVERY == SEARCH_EVERY - 1
}

/// For search flow `i`: (the index of the chosen offer among the targets, whether the third declines).
fn search_plan(i: usize) -> (usize, bool) {
    let k = i / SEARCH_EVERY;
    (usize::from(k % 4 >= 2), k.is_multiple_of(2))
}

/// The referral events `flows` whole flows publish, as planned.
pub fn planned_events(flows: usize) -> usize {
    (0..flows)
        .map(|i| {
            if !is_search(i) {
                return 5;
            }
            let (_, third_declines) = search_plan(i);
            // Two offers (five steps each), and the third: submitted and declined, or submitted, two
            // acknowledgements and withdrawn.
            10 + if third_declines { 2 } else { 4 }
        })
        .sum()
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

    /// The search `id` as its sender sees it.
    pub async fn search(&self, sender: Uuid, id: &str) -> Result<Search, String> {
        with_retries(&self.retries, "GetSearch", || {
            let mut c = self.clients.referrals.clone();
            let req = as_agency(
                sender,
                GetSearchRequest {
                    search_id: id.into(),
                },
            );
            async move { c.get_search(req).await }
        })
        .await?
        .map(|r| r.into_inner())
        .ok_or_else(|| "GetSearch refused".into())
    }

    /// One whole flow: a referral sent alone, or a search (see [`is_search`]).
    pub async fn flow(self, i: usize) -> Result<Flow, String> {
        let sender = self.demo.agency(SENDERS[i % SENDERS.len()]);
        let clients = match i % (self.extra.len() + 1) {
            0 => &self.clients,
            n => &self.extra[n - 1],
        };
        let case = self.open_case(clients, sender, i).await?;
        let flow = if is_search(i) {
            self.search_flow(clients, sender, &case.id, i).await?
        } else {
            self.single_flow(clients, sender, &case.id, i).await?
        };
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(flow)
    }

    /// One referral to the first target: both acknowledgements, accepted, placed.
    async fn single_flow(
        &self,
        clients: &Clients,
        sender: Uuid,
        case_id: &str,
        i: usize,
    ) -> Result<Flow, String> {
        let target = self.targets[0];
        let id = self.submit(clients, sender, case_id, i).await?;
        for party in [target.provider, target.foster] {
            self.acknowledge(clients, sender, &id, party).await?;
        }
        self.accept(clients, sender, &id, target.provider).await?;
        self.confirm(clients, sender, &id).await?;
        Ok(Flow {
            sender,
            search_id: None,
            requests: vec![Request {
                id,
                target,
                end: End::Placed,
                accepted: true,
            }],
        })
    }

    /// A search to the three targets: the third declines at once (or is left open), every party
    /// acknowledges, each district's foster-care team once, the first two accept, the sender confirms one.
    async fn search_flow(
        &self,
        clients: &Clients,
        sender: Uuid,
        case_id: &str,
        i: usize,
    ) -> Result<Flow, String> {
        let (chosen, third_declines) = search_plan(i);
        let t = self.targets;
        let search = self.submit_search(clients, sender, case_id, i).await?;
        let ids: Vec<String> = search.referrals.iter().map(|r| r.id.clone()).collect();
        if ids.len() != t.len() {
            return Err(format!("search {}: {} referrals", search.id, ids.len()));
        }
        if third_declines {
            self.decline_at_once(clients, sender, &ids[2], t[2].provider)
                .await?;
        }
        let answering = if third_declines { 2 } else { 3 };
        for n in 0..answering {
            self.acknowledge(clients, sender, &ids[n], t[n].provider)
                .await?;
        }
        // The first target's district is the third's too: its team's one acknowledgement counts for both.
        for n in [0, 1] {
            self.acknowledge(clients, sender, &ids[n], t[n].foster)
                .await?;
        }
        for n in [0, 1] {
            self.accept(clients, sender, &ids[n], t[n].provider).await?;
        }
        self.confirm_in_search(clients, sender, &search.id, &ids[chosen])
            .await?;
        let end = |n: usize| match n {
            _ if n == chosen => End::Placed,
            2 if third_declines => End::Declined,
            _ => End::PlacedElsewhere,
        };
        let requests = (ids.into_iter().zip(t).enumerate())
            .map(|(n, (id, target))| Request {
                id,
                target,
                end: end(n),
                accepted: n < 2,
            })
            .collect();
        Ok(Flow {
            sender,
            search_id: Some(search.id),
            requests,
        })
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

    /// Submits case `case_id` to the first target on a director's order of yesterday; returns the
    /// referral's id.
    async fn submit(
        &self,
        clients: &Clients,
        sender: Uuid,
        case_id: &str,
        i: usize,
    ) -> Result<String, String> {
        let submission = SubmitReferralRequest {
            case_id: case_id.to_string(),
            service_id: self.targets[0].service.to_string(),
            legal_basis: Some(order_of_yesterday(i)),
            reason: "Fault suite".into(),
            idempotency_key: format!("{}-{i}", self.run),
            ..Default::default()
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

    /// Sends case `case_id` to the three targets at once; a retry with the same key answers with the
    /// same search.
    async fn submit_search(
        &self,
        clients: &Clients,
        sender: Uuid,
        case_id: &str,
        i: usize,
    ) -> Result<Search, String> {
        let submission = SubmitSearchRequest {
            case_id: case_id.to_string(),
            service_ids: self.targets.iter().map(|t| t.service.to_string()).collect(),
            legal_basis: Some(order_of_yesterday(i)),
            reason: "Fault suite".into(),
            idempotency_key: format!("{}-search-{i}", self.run),
            ..Default::default()
        };
        let referrals = clients.referrals.clone();
        Ok(with_retries(&self.retries, "SubmitSearch", || {
            let mut c = referrals.clone();
            let req = as_agency(sender, submission.clone());
            async move { c.submit_search(req).await }
        })
        .await?
        .ok_or("SubmitSearch refused")?
        .into_inner())
    }

    /// `party` acknowledges `id`; a refusal after a retry is checked against what the referral shows.
    async fn acknowledge(
        &self,
        clients: &Clients,
        sender: Uuid,
        id: &str,
        party: Uuid,
    ) -> Result<(), String> {
        let referrals = clients.referrals.clone();
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
            let acked = (now.acknowledgements.iter())
                .any(|a| a.agency_id == party.to_string() && a.acknowledged_at.is_some());
            if !acked {
                return Err(format!("{id}: acknowledgement refused"));
            }
        }
        Ok(())
    }

    /// The provider accepts, holding a place; a refusal after a retry is checked against the status.
    async fn accept(
        &self,
        clients: &Clients,
        sender: Uuid,
        id: &str,
        provider: Uuid,
    ) -> Result<(), String> {
        let referrals = clients.referrals.clone();
        let done = with_retries(&self.retries, "AcceptReferral", || {
            let mut c = referrals.clone();
            let req = as_agency(
                provider,
                AcceptReferralRequest {
                    referral_id: id.to_string(),
                },
            );
            async move { c.accept_referral(req).await.map(drop) }
        })
        .await?;
        self.settled(done, sender, id, ReferralStatus::Accepted, "AcceptReferral")
            .await
    }

    /// The provider declines before anyone acknowledged; a refusal after a retry is checked against the
    /// status.
    async fn decline_at_once(
        &self,
        clients: &Clients,
        sender: Uuid,
        id: &str,
        provider: Uuid,
    ) -> Result<(), String> {
        let referrals = clients.referrals.clone();
        let done = with_retries(&self.retries, "DeclineReferral", || {
            let mut c = referrals.clone();
            let req = as_agency(
                provider,
                DeclineReferralRequest {
                    referral_id: id.to_string(),
                    reason: DeclineReason::AtCapacity as i32,
                    comment: String::new(),
                },
            );
            async move { c.decline_referral(req).await.map(drop) }
        })
        .await?;
        self.settled(
            done,
            sender,
            id,
            ReferralStatus::Declined,
            "DeclineReferral",
        )
        .await
    }

    /// The sender confirms the placement of a referral sent alone; a refusal after a retry is checked
    /// against the status.
    async fn confirm(&self, clients: &Clients, sender: Uuid, id: &str) -> Result<(), String> {
        let done = self.confirm_placement(clients, sender, id).await?;
        self.settled(done, sender, id, ReferralStatus::Placed, "ConfirmPlacement")
            .await
    }

    /// The sender confirms `id`, one referral of search `search_id`. A refusal after a retry is success
    /// only if the search shows that very referral placed (its own earlier attempt): read from the
    /// search, not from the refusal's text.
    async fn confirm_in_search(
        &self,
        clients: &Clients,
        sender: Uuid,
        search_id: &str,
        id: &str,
    ) -> Result<(), String> {
        if self.confirm_placement(clients, sender, id).await?.is_none()
            && self.search(sender, search_id).await?.placed_referral_id != id
        {
            return Err(format!("{search_id}: ConfirmPlacement of {id} refused"));
        }
        Ok(())
    }

    async fn confirm_placement(
        &self,
        clients: &Clients,
        sender: Uuid,
        id: &str,
    ) -> Result<Option<()>, String> {
        let referrals = clients.referrals.clone();
        with_retries(&self.retries, "ConfirmPlacement", || {
            let mut c = referrals.clone();
            let req = as_agency(
                sender,
                ConfirmPlacementRequest {
                    referral_id: id.to_string(),
                    ..Default::default()
                },
            );
            async move { c.confirm_placement(req).await.map(drop) }
        })
        .await
    }

    /// A step that succeeded, or was refused after a retry and shows `target` (its first attempt did it).
    async fn settled(
        &self,
        done: Option<()>,
        sender: Uuid,
        id: &str,
        target: ReferralStatus,
        step: &str,
    ) -> Result<(), String> {
        if done.is_none() && self.referral(sender, id).await?.status != target as i32 {
            return Err(format!("{id}: {step} refused"));
        }
        Ok(())
    }
}

/// A DSA director's order numbered after flow `i`, issued yesterday.
fn order_of_yesterday(i: usize) -> LegalBasis {
    let d = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    LegalBasis {
        kind: LegalBasisKind::DsaDirectorOrder as i32,
        number: format!("ZD-{i}"),
        issued_on: Some(Date {
            year: d.year(),
            month: d.month() as i32,
            day: d.day() as i32,
        }),
        court: String::new(),
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
                    ..Default::default()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(n: u128, region: &'static str) -> Target {
        Target {
            service: Uuid::from_u128(n),
            provider: Uuid::from_u128(n + 10),
            foster: Uuid::from_u128(if region == "VRC" { 100 } else { 200 }),
            region,
        }
    }

    #[test]
    fn every_third_flow_is_a_search_and_every_combination_occurs() {
        let searches: Vec<usize> = (0..24).filter(|i| is_search(*i)).collect();
        assert_eq!(searches.len(), 8);
        let plans: std::collections::BTreeSet<(usize, bool)> =
            searches.iter().map(|i| search_plan(*i)).collect();
        assert_eq!(plans.len(), 4, "{plans:?}");
        // Two flows alone (5 events each) and a search whose third declined: 10 + 2.
        assert_eq!(planned_events(3), 22);
    }

    #[test]
    fn a_withdrawn_request_is_told_to_its_receiving_side_once_and_to_nobody_else() {
        let sender = Uuid::from_u128(1);
        let r = Request {
            id: "r".into(),
            target: target(3, "VRC"),
            end: End::PlacedElsewhere,
            accepted: false,
        };
        use NotificationKind as K;
        assert_eq!(
            r.expected(r.target.provider, sender, K::ReferralWithdrawn),
            1
        );
        assert_eq!(r.expected(r.target.foster, sender, K::ReferralWithdrawn), 1);
        assert_eq!(r.expected(sender, sender, K::ReferralWithdrawn), 0);
        assert_eq!(r.expected(sender, sender, K::ReferralAcknowledged), 2);
        assert_eq!(r.expected(sender, sender, K::ReferralAccepted), 0);
        assert_eq!(r.expected(r.target.provider, sender, K::ReferralPlaced), 0);
        assert_eq!(r.events(), 4);
    }

    #[test]
    fn a_decline_at_once_is_told_to_the_sender_and_the_foster_team_not_acknowledged() {
        let sender = Uuid::from_u128(1);
        let r = Request {
            id: "r".into(),
            target: target(4, "HKV"),
            end: End::Declined,
            accepted: false,
        };
        use NotificationKind as K;
        assert_eq!(r.expected(sender, sender, K::ReferralDeclined), 1);
        assert_eq!(r.expected(r.target.foster, sender, K::ReferralDeclined), 1);
        assert_eq!(
            r.expected(r.target.provider, sender, K::ReferralDeclined),
            0
        );
        assert_eq!(r.expected(sender, sender, K::ReferralAcknowledged), 0);
        assert_eq!(
            r.expected(r.target.provider, sender, K::ReferralSubmitted),
            1
        );
        assert_eq!(r.events(), 2);
    }
}
