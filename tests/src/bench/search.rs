//! A search to five services (issue #27), as a sender and the parties asked run it: the sender asks five
//! services at once; two decline at once, the other three's providers acknowledge and so does each
//! district's foster-care team, once for its district; two of them accept (holding places), one never
//! decides; the sender confirms the first offer, and the others are withdrawn as placed elsewhere.
//! Searches are offered at a constant arrival rate (open loop: latency counts from when a search was due)
//! of as many requests a second as half the peak's flows, alone on the stack, so that each service's CPU
//! over the load is the searches' own.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use futures::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use hdrhistogram::Histogram;
use placement_cli::{
    clients::{Clients, as_agency},
    demo::{DemoDirectory, NATIONAL_AUTHORITY},
};
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, ConfirmPlacementRequest,
    CreateServiceRequest, DeclineReason, DeclineReferralRequest, ServiceType, SubmitSearchRequest,
};
use serde::Serialize;
use sqlx::PgConnection;
use tonic::Status;
use uuid::Uuid;

use super::{Latency, Step, Stepping, histogram, open_cases, record, settled_work, submission};

/// The services a search asks.
pub const SERVICES: usize = 5;

#[derive(Debug, Clone, Serialize, Default)]
pub struct SearchFigures {
    pub offered_searches_per_s: f64,
    pub seconds: f64,
    /// Searches that ran to their placement.
    pub searches: u64,
    pub errors: u64,
    pub error_kinds: HashMap<String, u64>,
    /// From when a search was due to its first offer: the first of its acceptances to be answered.
    pub time_to_first_offer: Latency,
    /// Each service's CPU milliseconds per search placed.
    pub cpu_ms_per_search: BTreeMap<String, f64>,
}

/// (provider, its district's foster-care team, municipality) of each service asked, in the order asked.
const ASKED: [(&str, &str, &str); SERVICES] = [
    ("provider-vratsa", "foster-vratsa", "VRC10"),
    ("provider-mezdra", "foster-vratsa", "VRC27"),
    ("provider-haskovo", "foster-haskovo", "HKV34"),
    ("provider-haskovo", "foster-haskovo", "HKV34"),
    ("provider-stara-zagora", "foster-stara-zagora", "SZR31"),
];
/// Which of them decline at once, which offer, and which acknowledges but never decides. Each district
/// has one request that stays open, on which its foster-care team acknowledges once for the district.
const DECLINING: [usize; 2] = [1, 3];
const OFFERING: [usize; 2] = [0, 2];
const WAITING: usize = 4;

/// A service asked and the agencies that answer for it.
#[derive(Clone, Copy)]
struct Asked {
    service: Uuid,
    provider: Uuid,
    foster: Uuid,
}

/// What the searches did: the errors and searches placed (as a step of the flow counts them), and when
/// each got its first offer.
struct Tally {
    step: Step,
    first_offer: Mutex<Histogram<u64>>,
}

impl Stepping<'_> {
    /// Offers searches at `rate` per second for `seconds` and measures them; `db` tells when their
    /// events have all been applied.
    pub(super) async fn time_searches(
        &self,
        rate: f64,
        seconds: f64,
        db: &mut PgConnection,
    ) -> SearchFigures {
        let asked = Arc::new(create_services(self.clients, self.demo).await);
        let arrivals = ((rate * seconds).ceil() as usize).max(1);
        let cases = open_cases(self.clients, self.demo, arrivals).await;
        // What earlier loads left to apply is theirs, not the searches'.
        settled_work(db).await;
        let before = self.cpu();
        eprintln!("offering {rate:.2} searches to five services/s for {seconds} s");
        let tally = offer(self.clients.clone(), asked, cases, rate).await;
        settled_work(db).await;
        let after = self.cpu();
        let placed = tally.step.flows.load(Ordering::Relaxed);
        let cpu_ms_per_search = (self.services.iter().enumerate())
            .map(|(i, (name, _))| {
                let used = after[i] - before[i];
                (name.clone(), used * 1000.0 / placed.max(1) as f64)
            })
            .collect();
        SearchFigures {
            offered_searches_per_s: rate,
            seconds,
            searches: placed,
            errors: tally.step.errors.load(Ordering::Relaxed),
            error_kinds: tally.step.error_kinds.lock().expect("errors").clone(),
            time_to_first_offer: Latency::of(&tally.first_offer.lock().expect("histogram")),
            cpu_ms_per_search,
        }
    }
}

/// The five services of [`ASKED`], of the benchmark's own, with room for every search.
async fn create_services(clients: &Clients, demo: &DemoDirectory) -> [Asked; SERVICES] {
    let mut asked = Vec::with_capacity(SERVICES);
    for (n, (provider, foster, municipality)) in ASKED.into_iter().enumerate() {
        let service = (clients.directory.clone())
            .create_service(as_agency(
                NATIONAL_AUTHORITY,
                CreateServiceRequest {
                    provider_agency_id: demo.agency(provider).to_string(),
                    r#type: ServiceType::FamilyTypePlacementCentre as i32,
                    name: format!("Bench search service {n}"),
                    municipality_code: municipality.into(),
                    capacity: 1000,
                    occupied_places: 0,
                    min_age: 0,
                    max_age: 17,
                    name_en: String::new(),
                },
            ))
            .await
            .expect("CreateService")
            .into_inner();
        asked.push(Asked {
            service: Uuid::parse_str(&service.id).expect("id"),
            provider: demo.agency(provider),
            foster: demo.agency(foster),
        });
    }
    asked
        .try_into()
        .unwrap_or_else(|_| unreachable!("five services"))
}

/// Offers a search of each of `cases` at `rate` per second from now; returns when every one has ended.
async fn offer(
    clients: Clients,
    asked: Arc<[Asked; SERVICES]>,
    cases: Vec<(Uuid, String)>,
    rate: f64,
) -> Arc<Tally> {
    let tally = Arc::new(Tally {
        step: Step::new(),
        first_offer: Mutex::new(histogram()),
    });
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(cases.len());
    for (k, (sender, case_id)) in cases.into_iter().enumerate() {
        let scheduled = started + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let search = Search {
            clients: clients.clone(),
            asked: asked.clone(),
            sender,
            scheduled,
        };
        tasks.push(tokio::spawn(search.run(case_id, tally.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
    tally
}

/// One search as its sender and the parties asked run it.
struct Search {
    clients: Clients,
    asked: Arc<[Asked; SERVICES]>,
    sender: Uuid,
    /// When it was due.
    scheduled: Instant,
}

impl Search {
    async fn run(self, case_id: String, tally: Arc<Tally>) {
        let one = submission(case_id, Uuid::nil());
        let request = SubmitSearchRequest {
            case_id: one.case_id,
            service_ids: self.asked.iter().map(|a| a.service.to_string()).collect(),
            legal_basis: one.legal_basis,
            reason: one.reason,
            idempotency_key: one.idempotency_key,
            ..Default::default()
        };
        let mut referrals = self.clients.referrals.clone();
        let ids: Vec<String> = match referrals
            .submit_search(as_agency(self.sender, request))
            .await
        {
            Ok(s) => (s.into_inner().referrals.into_iter())
                .map(|r| r.id)
                .collect(),
            Err(e) => return tally.step.failed("submit search", &e),
        };
        if let Err(e) = self.answer(&ids).await {
            return tally.step.failed("answer", &e);
        }
        let chosen = match self.first_offer(&ids, &tally).await {
            Ok(id) => id,
            Err(e) => return tally.step.failed("accept", &e),
        };
        let confirm = ConfirmPlacementRequest {
            referral_id: chosen,
            ..Default::default()
        };
        match referrals
            .confirm_placement(as_agency(self.sender, confirm))
            .await
        {
            Ok(_) => {
                tally.step.flows.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tally.step.failed("confirm", &e),
        }
    }

    /// Every party answers at once, as parties that do not wait for each other: the declining services
    /// decline, the others' providers acknowledge, and each district's foster-care team acknowledges once,
    /// on the district's request that stays open.
    async fn answer(&self, ids: &[String]) -> Result<(), Status> {
        let mut calls: Vec<BoxFuture<'_, Result<(), Status>>> = Vec::new();
        for n in DECLINING {
            calls.push(self.decline(self.asked[n].provider, &ids[n]).boxed());
        }
        for n in OFFERING.into_iter().chain([WAITING]) {
            calls.push(self.acknowledge(self.asked[n].provider, &ids[n]).boxed());
            calls.push(self.acknowledge(self.asked[n].foster, &ids[n]).boxed());
        }
        futures::future::try_join_all(calls).await.map(drop)
    }

    async fn acknowledge(&self, party: Uuid, id: &str) -> Result<(), Status> {
        let request = AcknowledgeReferralRequest {
            referral_id: id.to_string(),
        };
        (self.clients.referrals.clone())
            .acknowledge_referral(as_agency(party, request))
            .await
            .map(drop)
    }

    async fn decline(&self, provider: Uuid, id: &str) -> Result<(), Status> {
        let request = DeclineReferralRequest {
            referral_id: id.to_string(),
            reason: DeclineReason::AtCapacity as i32,
            comment: String::new(),
        };
        (self.clients.referrals.clone())
            .decline_referral(as_agency(provider, request))
            .await
            .map(drop)
    }

    /// The offering services accept at once; the first acceptance answered is the search's first offer,
    /// timed from when the search was due. Returns the referral it was on.
    async fn first_offer(&self, ids: &[String], tally: &Tally) -> Result<String, Status> {
        let mut offers: FuturesUnordered<_> = (OFFERING.iter())
            .map(|&n| {
                let mut referrals = self.clients.referrals.clone();
                let request = AcceptReferralRequest {
                    referral_id: ids[n].clone(),
                };
                let provider = self.asked[n].provider;
                async move {
                    let accepted = referrals
                        .accept_referral(as_agency(provider, request))
                        .await;
                    accepted.map(|r| r.into_inner().id)
                }
            })
            .collect();
        let mut first = None;
        while let Some(offer) = offers.next().await {
            let id = offer?;
            if first.is_none() {
                record(&tally.first_offer, self.scheduled.elapsed());
                first = Some(id);
            }
        }
        first.ok_or_else(|| Status::failed_precondition("no service offered"))
    }
}

/// The searches' figures beside the flow's.
pub fn table(f: &SearchFigures) -> String {
    let l = &f.time_to_first_offer;
    let cpu: Vec<String> = (f.cpu_ms_per_search.iter())
        .map(|(name, ms)| format!("{name} {ms:.1}"))
        .collect();
    let all: f64 = f.cpu_ms_per_search.values().sum();
    let mut t = format!(
        "\nSearch to five services (two decline at once, two offer, one never decides; the first offer \
         confirmed), {} placed at {:.2} searches/s for {} s (the requests of half the peak's flows), {} errors\n",
        f.searches, f.offered_searches_per_s, f.seconds, f.errors
    );
    t += &format!(
        "  Time to first offer (due to the first acceptance answered): p50 {:.1} ms  p99 {:.1} ms  ({} searches)\n",
        l.p50_ms, l.p99_ms, l.count
    );
    t += &format!("  CPU ms per search: {}, all {all:.1}\n", cpu.join(", "));
    if f.errors > 0 {
        t += &format!("  errors: {:?}\n", f.error_kinds);
    }
    t
}
