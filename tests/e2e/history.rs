//! Three months of a country's referrals with known timings, driven through the real services and told
//! their times through the referrals service's test clock (`PLACEMENT_TEST_CLOCK`). A deterministic plan
//! says who answers when; the test computes every figure itself from that plan — for a period of whole
//! days and for one cut mid-day, for each district as sender and as receiver, its flows, its services,
//! its eight weeks and its stalled list — and the reports must give exactly that, live and again after
//! a rebuild from an empty model. Some of the plan's referrals are searches (one request to two to five
//! services at once): their first offers, the one chosen and the rest closed as placed elsewhere, searches
//! closed without a place and searches left open; the test also plays what the service does for a search
//! (the foster-care team's one acknowledgement for its district, the others closed at a placement).

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use placement_cli::clients::as_agency_with;
use placement_platform::{
    caller::{NATIONAL_AUTHORITY, Role},
    services,
    time::timestamp,
};
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, ConfirmPlacementRequest, Count,
    DeclineReason, DeclineReferralRequest, DistrictFlow, DistrictReport, DistrictSide,
    DistrictTotals, GetDistrictReportRequest, GetNationalReportRequest, LegalBasis, LegalBasisKind,
    NationalReport, ReasonCount, Referral, ReferralAction, ReferralHistoryEntry, ReferralStatus,
    ServiceAcceptance, SubmitReferralRequest, SubmitSearchRequest, UpdateCapacityRequest,
    WeekFigures, WithdrawReason, WithdrawReferralRequest,
};
use uuid::Uuid;

use crate::reports::{self, Period};
use crate::support::Fixture;
use placement_e2e::load::with_retries;

/// Referrals sent alone, and searches (of two to five services each: about 500 referrals more).
const REFERRALS: usize = 1900;
const SEARCHES: usize = 150;
/// Steps taken at once; with steps sorted by their told time and a batch spanning at most
/// [`BATCH_SPAN`], no deadline can pass (by the latest time told) before an answer planned ahead of it.
const BATCH: usize = 16;
const BATCH_SPAN: i64 = 3600;
const ACK_HOURS: i64 = 72;
/// Every planned answer comes at least this long before the acknowledgement deadline.
const ANSWER_MARGIN: i64 = 3 * 3600;
/// The plan's first submission, in days before today's UTC midnight, and the days submissions span.
const DAYS_BACK: i64 = 130;
const DAYS_SUBMITTING: i64 = 84;

/// A sending DSA, the service asked (demo keys) and the two who must acknowledge.
#[derive(Debug, Clone, Copy)]
struct Route {
    sender: &'static str,
    service: &'static str,
    provider: &'static str,
    foster: &'static str,
}

const ROUTES: [Route; 8] = [
    route(
        "dsa-pirdop",
        "ftpc-vratsa",
        "provider-vratsa",
        "foster-vratsa",
    ),
    route(
        "dsa-pravets",
        "ftpcd-mezdra",
        "provider-mezdra",
        "foster-vratsa",
    ),
    route(
        "dsa-haskovo",
        "ftpc-vratsa",
        "provider-vratsa",
        "foster-vratsa",
    ),
    route(
        "dsa-vratsa",
        "ftpc-stara-zagora",
        "provider-stara-zagora",
        "foster-stara-zagora",
    ),
    route(
        "dsa-mezdra",
        "crisis-stara-zagora",
        "provider-stara-zagora",
        "foster-stara-zagora",
    ),
    route(
        "dsa-dragoman",
        "ftpc-stara-zagora",
        "provider-stara-zagora",
        "foster-stara-zagora",
    ),
    route(
        "dsa-stara-zagora",
        "ftpc-haskovo",
        "provider-haskovo",
        "foster-haskovo",
    ),
    route(
        "dsa-zlatitsa",
        "ftpc-haskovo",
        "provider-haskovo",
        "foster-haskovo",
    ),
];

const fn route(
    sender: &'static str,
    service: &'static str,
    provider: &'static str,
    foster: &'static str,
) -> Route {
    Route {
        sender,
        service,
        provider,
        foster,
    }
}

/// The district of each sender above, as the directory has it.
fn district_of_sender(key: &str) -> &'static str {
    match key {
        "dsa-pirdop" | "dsa-pravets" | "dsa-dragoman" | "dsa-zlatitsa" => "SFO",
        "dsa-vratsa" | "dsa-mezdra" => "VRC",
        "dsa-stara-zagora" => "SZR",
        "dsa-haskovo" => "HKV",
        other => panic!("no district for {other}"),
    }
}

fn district_of_service(key: &str) -> &'static str {
    match key {
        "ftpc-vratsa" | "ftpcd-mezdra" => "VRC",
        "ftpc-stara-zagora" | "crisis-stara-zagora" => "SZR",
        "ftpc-haskovo" => "HKV",
        other => panic!("no district for {other}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    Submit,
    Acknowledge(Party),
    Accept,
    Place,
    Decline(DeclineReason),
    Withdraw(WithdrawReason),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Party {
    Provider,
    Foster,
}

/// One referral as planned: its route and each step with its time, in order; for a referral of a search
/// these include the steps the service takes for it (see [`Unit`]), and the search it is one of.
struct Planned {
    route: Route,
    steps: Vec<(DateTime<Utc>, Act)>,
    search: Option<usize>,
}

/// What the test drives as one: a referral sent alone, or a search (its referrals submitted in one
/// SubmitSearch). Its steps run one after the other, never two at once, as a step on one referral of a
/// search may change the others.
struct Unit {
    /// Its referrals, indexes in the plan.
    referrals: std::ops::Range<usize>,
    search: bool,
    /// The steps the test takes, in the order of their told times: (time, referral, act). A search's
    /// submission is one step, on its first referral.
    driven: Vec<(DateTime<Utc>, usize, Act)>,
}

impl Planned {
    fn submitted(&self) -> DateTime<Utc> {
        self.steps[0].0
    }

    fn deadline(&self) -> DateTime<Utc> {
        self.submitted() + Duration::hours(ACK_HOURS)
    }

    fn acknowledged_by(&self) -> Vec<Party> {
        (self.steps.iter())
            .filter_map(|(_, a)| match a {
                Act::Acknowledge(p) => Some(*p),
                _ => None,
            })
            .collect()
    }
}

/// SplitMix64: the same plan on every run and machine.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Seconds from `lo` to `hi` (inclusive of `lo`).
    fn seconds(&mut self, lo: i64, hi: i64) -> Duration {
        Duration::seconds(lo + self.below((hi - lo).max(1) as u64) as i64)
    }
}

/// The plan: submissions spread over [`DAYS_SUBMITTING`] days from `start`; of every hundred, five are
/// answered by nobody, five declined at once by the service before anyone acknowledged, ten answered by
/// one party only (the unanswered and these escalated at their deadline), the rest by both, then left,
/// withdrawn, declined for one of four reasons, accepted, or accepted and placed.
fn alone(start: DateTime<Utc>) -> Vec<Planned> {
    let mut draw = Draw(0x0005_EED0_2026_1202);
    (0..REFERRALS)
        .map(|_| {
            let route = ROUTES[draw.below(ROUTES.len() as u64) as usize];
            let submitted = start + draw.seconds(0, DAYS_SUBMITTING * 86_400);
            let last_answer =
                submitted + Duration::hours(ACK_HOURS) - Duration::seconds(ANSWER_MARGIN);
            let first = submitted + draw.seconds(300, 60 * 3600);
            let second = first + draw.seconds(60, (last_answer - first).num_seconds());
            let (a, b) = match draw.below(2) {
                0 => (Party::Provider, Party::Foster),
                _ => (Party::Foster, Party::Provider),
            };
            let decided = second + draw.seconds(1800, 10 * 86_400);
            let placed = decided + draw.seconds(3600, 14 * 86_400);
            let reason = [
                DeclineReason::AtCapacity,
                DeclineReason::NeedsNotMet,
                DeclineReason::AgeOutOfRange,
                DeclineReason::SiblingsCannotBeKeptTogether,
            ][draw.below(4) as usize];
            let fate = draw.below(100);
            let mut steps = vec![(submitted, Act::Submit)];
            if fate >= 10 {
                steps.push((first, Act::Acknowledge(a)));
            }
            if fate >= 20 {
                steps.push((second, Act::Acknowledge(b)));
            }
            match fate {
                5..10 => steps.push((first, Act::Decline(reason))),
                27..35 => steps.push((decided, Act::Withdraw(WithdrawReason::PlacedElsewhere))),
                35..55 => steps.push((decided, Act::Decline(reason))),
                55..65 => steps.push((decided, Act::Accept)),
                65.. => steps.extend([(decided, Act::Accept), (placed, Act::Place)]),
                _ => {}
            }
            Planned {
                route,
                steps,
                search: None,
            }
        })
        .collect()
}

/// The plan: the referrals sent alone (each a unit of its own), then the searches.
fn plan(start: DateTime<Utc>) -> (Vec<Planned>, Vec<Unit>) {
    let mut plans = alone(start);
    let mut units: Vec<Unit> = (plans.iter().enumerate())
        .map(|(i, p)| Unit {
            referrals: i..i + 1,
            search: false,
            driven: p.steps.iter().map(|&(at, act)| (at, i, act)).collect(),
        })
        .collect();
    let mut draw = Draw(0x0005_EA2C_2026_1204);
    for _ in 0..SEARCHES {
        let first = plans.len();
        let (requests, driven) = search_plan(&mut draw, start);
        let unit = units.len();
        plans.extend(requests.into_iter().map(|(route, steps)| Planned {
            route,
            steps,
            search: Some(unit),
        }));
        units.push(Unit {
            referrals: first..plans.len(),
            search: true,
            driven: (driven.into_iter())
                .map(|(at, j, act)| (at, first + j, act))
                .collect(),
        });
    }
    (plans, units)
}

/// The services a search may ask (demo keys), with who must acknowledge at each.
const SERVICES: [(&str, &str, &str); 5] = [
    ("ftpc-vratsa", "provider-vratsa", "foster-vratsa"),
    ("ftpcd-mezdra", "provider-mezdra", "foster-vratsa"),
    (
        "ftpc-stara-zagora",
        "provider-stara-zagora",
        "foster-stara-zagora",
    ),
    (
        "crisis-stara-zagora",
        "provider-stara-zagora",
        "foster-stara-zagora",
    ),
    ("ftpc-haskovo", "provider-haskovo", "foster-haskovo"),
];

/// A search step by step: (time, request, act), the request an index among the search's.
type SearchSteps = Vec<(DateTime<Utc>, usize, Act)>;

/// Each request of a search: its route and its whole history.
type Requests = Vec<(Route, Vec<(DateTime<Utc>, Act)>)>;

/// One search: a sender asks two to five services outside its district at once. Each service declines
/// at once (before anyone acknowledged), never answers, or acknowledges and then accepts or declines; each
/// district's foster-care team acknowledges once. Then the sender confirms one offer (the rest closed as
/// placed elsewhere), gives up (withdraws every open request: closed without a place), or leaves it open.
/// Everything happens before the acknowledgement deadline less [`ANSWER_MARGIN`]. Returns each request's
/// route and whole history, and the steps the test takes.
fn search_plan(draw: &mut Draw, start: DateTime<Utc>) -> (Requests, SearchSteps) {
    let sender = ROUTES[draw.below(ROUTES.len() as u64) as usize].sender;
    let mut asked: Vec<&(&str, &str, &str)> = (SERVICES.iter())
        .filter(|s| district_of_service(s.0) != district_of_sender(sender))
        .collect();
    for i in (1..asked.len()).rev() {
        asked.swap(i, draw.below(i as u64 + 1) as usize);
    }
    asked.truncate(2 + draw.below(asked.len() as u64 - 1) as usize);
    let s = start + draw.seconds(0, DAYS_SUBMITTING * 86_400);
    let hours = |lo: i64, hi: i64, draw: &mut Draw| s + draw.seconds(lo * 3600, hi * 3600);
    let mut driven: SearchSteps = vec![(s, 0, Act::Submit)];
    let (mut answering, mut accepted) = (vec![true; asked.len()], Vec::new());
    for (j, answers) in answering.iter_mut().enumerate() {
        let reason = DECLINE_REASONS[draw.below(4) as usize];
        match draw.below(10) {
            0..2 => {
                driven.push((s + draw.seconds(300, 6 * 3600), j, Act::Decline(reason)));
                *answers = false;
            }
            2..4 => {}
            fate => {
                driven.push((hours(6, 30, draw), j, Act::Acknowledge(Party::Provider)));
                let decision = hours(32, 50, draw);
                if fate < 7 {
                    driven.push((decision, j, Act::Accept));
                    accepted.push(j);
                } else {
                    driven.push((decision, j, Act::Decline(reason)));
                }
            }
        }
    }
    // Each district's foster-care team acknowledges once, on the first request there still open; the
    // service takes its acknowledgement for the others.
    let mut fosters: Vec<&str> = asked.iter().map(|a| a.2).collect();
    fosters.sort_unstable();
    fosters.dedup();
    for foster in fosters {
        let at = hours(8, 20, draw);
        if let Some(j) = (0..asked.len()).find(|&j| asked[j].2 == foster && answering[j]) {
            driven.push((at, j, Act::Acknowledge(Party::Foster)));
        }
    }
    let end = hours(52, 66, draw);
    match draw.below(10) {
        0..7 if !accepted.is_empty() => {
            let chosen = accepted[draw.below(accepted.len() as u64) as usize];
            driven.push((end, chosen, Act::Place));
        }
        0..4 | 7..9 => {
            for j in 0..asked.len() {
                let at = end + Duration::minutes(j as i64);
                driven.push((at, j, Act::Withdraw(WithdrawReason::Reintegrated)));
            }
        }
        _ => {}
    }
    driven.sort_by_key(|d| d.0);
    let routes = (asked.iter())
        .map(|a| route(sender, a.0, a.1, a.2))
        .collect();
    played(routes, driven)
}

const DECLINE_REASONS: [DeclineReason; 4] = [
    DeclineReason::AtCapacity,
    DeclineReason::NeedsNotMet,
    DeclineReason::AgeOutOfRange,
    DeclineReason::SiblingsCannotBeKeptTogether,
];

/// Plays a search's steps as the referrals service takes them: a foster-care team's acknowledgement counts
/// for every request of the search in its district still submitted; a placement withdraws every other open
/// request as placed elsewhere. A withdrawal of a request already closed is not taken (left out).
fn played(routes: Vec<Route>, driven: SearchSteps) -> (Requests, SearchSteps) {
    use ReferralStatus as S;
    let mut status = vec![S::Submitted; routes.len()];
    let mut acks = vec![0; routes.len()];
    let mut steps: Vec<Vec<(DateTime<Utc>, Act)>> = vec![Vec::new(); routes.len()];
    let mut taken = Vec::new();
    for (at, j, act) in driven {
        match act {
            Act::Submit => steps.iter_mut().for_each(|s| s.push((at, act))),
            Act::Acknowledge(party) => {
                // The foster-care team's one acknowledgement counts for its district's submitted requests.
                let those: Vec<usize> = match party {
                    Party::Provider => vec![j],
                    Party::Foster => (0..routes.len())
                        .filter(|&m| routes[m].foster == routes[j].foster)
                        .filter(|&m| status[m] == S::Submitted)
                        .collect(),
                };
                for m in those {
                    steps[m].push((at, act));
                    acks[m] += 1;
                    if acks[m] == 2 {
                        status[m] = S::Acknowledged;
                    }
                }
            }
            Act::Withdraw(_) if matches!(status[j], S::Declined | S::Withdrawn) => continue,
            Act::Accept | Act::Decline(_) | Act::Withdraw(_) => {
                status[j] = match act {
                    Act::Accept => S::Accepted,
                    Act::Decline(_) => S::Declined,
                    _ => S::Withdrawn,
                };
                steps[j].push((at, act));
            }
            Act::Place => {
                let elsewhere = Act::Withdraw(WithdrawReason::PlacedElsewhere);
                for m in (0..routes.len()).filter(|&m| m != j) {
                    if matches!(status[m], S::Submitted | S::Acknowledged | S::Accepted) {
                        status[m] = S::Withdrawn;
                        steps[m].push((at, elsewhere));
                    }
                }
                status[j] = S::Placed;
                steps[j].push((at, act));
            }
        }
        taken.push((at, j, act));
    }
    (routes.into_iter().zip(steps).collect(), taken)
}

/// `message` from `agency`, told to happen at `at`.
fn told<T>(agency: Uuid, at: DateTime<Utc>, message: T) -> tonic::Request<T> {
    let mut request = as_agency_with(agency, &[Role::Supervisor], message);
    request.metadata_mut().insert(
        "x-placement-test-time",
        at.to_rfc3339().parse().expect("a time is valid metadata"),
    );
    request
}

/// The court decision every planned referral rests on, of the day before `at`.
fn legal_basis(at: DateTime<Utc>) -> Option<LegalBasis> {
    Some(LegalBasis {
        kind: LegalBasisKind::CourtDecision as i32,
        number: "ГД-311/2026".into(),
        issued_on: Some(placement_platform::time::date(
            (at - Duration::days(1)).date_naive(),
        )),
        court: "Районен съд".into(),
    })
}

/// Submits a search of `case` to the services of `requests`, in their order; returns their ids.
async fn submit_search(
    f: &Fixture,
    requests: &[Planned],
    case: &str,
    at: DateTime<Utc>,
) -> Result<Vec<String>, tonic::Status> {
    let asked = SubmitSearchRequest {
        case_id: case.into(),
        service_ids: (requests.iter())
            .map(|p| f.demo.service(p.route.service).to_string())
            .collect(),
        legal_basis: legal_basis(at),
        reason: "No place in the district.".into(),
        idempotency_key: case.into(),
        ..Default::default()
    };
    let sender = f.agency(requests[0].route.sender);
    let search = (f.clients.referrals.clone())
        .submit_search(told(sender, at, asked))
        .await?
        .into_inner();
    Ok(search.referrals.into_iter().map(|r| r.id).collect())
}

/// Takes one planned step; returns the ids of the referrals it submitted, else the referral's.
async fn take(
    f: &Fixture,
    p: &Planned,
    id: Option<&str>,
    case: &str,
    at: DateTime<Utc>,
    act: Act,
) -> Result<Vec<String>, tonic::Status> {
    let mut referrals = f.clients.referrals.clone();
    let referral_id = id.unwrap_or_default().to_string();
    let (provider, foster) = (f.agency(p.route.provider), f.agency(p.route.foster));
    let sender = f.agency(p.route.sender);
    let done = match act {
        Act::Submit => {
            let asked = SubmitReferralRequest {
                case_id: case.into(),
                service_id: f.demo.service(p.route.service).to_string(),
                legal_basis: legal_basis(at),
                reason: "No place in the district.".into(),
                idempotency_key: case.into(),
                ..Default::default()
            };
            let r = referrals.submit_referral(told(sender, at, asked)).await;
            return r.map(|r| vec![r.into_inner().id]);
        }
        Act::Acknowledge(party) => {
            let agency = if party == Party::Provider {
                provider
            } else {
                foster
            };
            let asked = AcknowledgeReferralRequest {
                referral_id: referral_id.clone(),
            };
            referrals
                .acknowledge_referral(told(agency, at, asked))
                .await
        }
        Act::Accept => {
            let asked = AcceptReferralRequest {
                referral_id: referral_id.clone(),
            };
            referrals.accept_referral(told(provider, at, asked)).await
        }
        Act::Place => {
            let asked = ConfirmPlacementRequest {
                referral_id: referral_id.clone(),
                ..Default::default()
            };
            referrals.confirm_placement(told(sender, at, asked)).await
        }
        Act::Decline(reason) => {
            let asked = DeclineReferralRequest {
                referral_id: referral_id.clone(),
                reason: reason as i32,
                comment: String::new(),
            };
            referrals.decline_referral(told(provider, at, asked)).await
        }
        Act::Withdraw(reason) => {
            let asked = WithdrawReferralRequest {
                referral_id: referral_id.clone(),
                reason: reason as i32,
                comment: String::new(),
            };
            referrals.withdraw_referral(told(sender, at, asked)).await
        }
    };
    done.map(|_| vec![referral_id])
}

/// Runs the plan in the order of its told times, [`BATCH`] steps at a time; returns each referral's id.
async fn drive(f: &Fixture, plans: &[Planned], units: &[Unit], cases: &[String]) -> Vec<String> {
    let mut steps: Vec<(DateTime<Utc>, usize, usize)> = (units.iter().enumerate())
        .flat_map(|(u, unit)| (unit.driven.iter().enumerate()).map(move |(k, d)| (d.0, u, k)))
        .collect();
    steps.sort_unstable();
    let mut ids: Vec<Option<String>> = vec![None; plans.len()];
    let mut rest = steps.as_slice();
    while let Some(&(first, ..)) = rest.first() {
        // A batch: steps within BATCH_SPAN of its first, no unit twice (its steps stay in order).
        let mut seen = std::collections::HashSet::new();
        let n = (rest.iter().take(BATCH))
            .take_while(|(at, u, _)| {
                *at - first <= Duration::seconds(BATCH_SPAN) && seen.insert(*u)
            })
            .count();
        let (batch, later) = rest.split_at(n);
        // The other suites stop and start the shared database: a step refused UNAVAILABLE is taken again,
        // as a real client would (a FAILED_PRECONDITION after that means the first one went through).
        let retries = placement_e2e::load::Retries::default();
        let done = join_all(batch.iter().map(|&(at, u, k)| {
            let (unit, retries) = (&units[u], &retries);
            let (_, i, act) = unit.driven[k];
            let id = ids[i].as_deref();
            let case = cases[u].as_str();
            async move {
                let taken = match act {
                    Act::Submit if unit.search => {
                        let requests = &plans[unit.referrals.clone()];
                        let submit = || submit_search(f, requests, case, at);
                        with_retries(retries, "a planned search", submit).await
                    }
                    _ => {
                        let step = || take(f, &plans[i], id, case, at, act);
                        with_retries(retries, "a planned step", step).await
                    }
                };
                let taken = taken.unwrap_or_else(|e| panic!("{act:?} at {at}: {e}"));
                let ids = taken.unwrap_or_else(|| {
                    vec![
                        id.expect("only a later step can have gone through")
                            .to_string(),
                    ]
                });
                (i, ids)
            }
        }))
        .await;
        for (first, taken) in done {
            for (k, id) in taken.into_iter().enumerate() {
                ids[first + k] = Some(id);
            }
        }
        rest = later;
    }
    ids.into_iter().map(|id| id.expect("submitted")).collect()
}

/// One open case of one ten-year-old for each unit (a referral sent alone or a search), opened by its
/// sender.
async fn open_cases(f: &Fixture, plans: &[Planned], units: &[Unit]) -> Vec<String> {
    use chrono::Datelike;
    let year = Utc::now().year();
    let mut cases = Vec::with_capacity(units.len());
    for chunk in units.chunks(BATCH) {
        let opened = join_all(chunk.iter().map(|unit| {
            let p = &plans[unit.referrals.start];
            let client = f.clients.cases.clone();
            let asked = placement_proto::v1::OpenCaseRequest {
                children: vec![placement_proto::v1::Child {
                    pseudonym: "Child".into(),
                    birth_year: year - 10,
                    sex: placement_proto::v1::Sex::Male as i32,
                    ..Default::default()
                }],
                current_setting: "Family".into(),
            };
            let sender = f.agency(p.route.sender);
            let retries = placement_e2e::load::Retries::default();
            async move {
                // Taken again when UNAVAILABLE (the database restarted by another suite): at worst a
                // case is opened twice and one stays unused.
                let open = || {
                    let mut client = client.clone();
                    let request = as_agency_with(sender, &[Role::Caseworker], asked.clone());
                    async move { client.open_case(request).await }
                };
                with_retries(&retries, "OpenCase", open).await
            }
        }))
        .await;
        cases.extend(opened.into_iter().map(|c| {
            let case = c.expect("OpenCase").expect("a case opened");
            case.into_inner().id
        }));
    }
    cases
}

/// Room for every acceptance the plan makes.
async fn make_room(f: &Fixture) {
    for key in [
        "ftpc-vratsa",
        "ftpcd-mezdra",
        "ftpc-stara-zagora",
        "crisis-stara-zagora",
        "ftpc-haskovo",
    ] {
        let asked = UpdateCapacityRequest {
            service_id: f.demo.service(key).to_string(),
            capacity: 1000,
            ..Default::default()
        };
        (f.clients.directory.clone())
            .update_capacity(as_agency_with(
                NATIONAL_AUTHORITY,
                &[Role::DirectoryAdmin],
                asked,
            ))
            .await
            .expect("UpdateCapacity");
    }
}

/// What the referrals service will hold for each planned referral, built from the plan alone: its status
/// and its history, with the escalation at the deadline of each not fully acknowledged by then (every
/// such deadline is before the last time told).
fn as_referrals(f: &Fixture, plans: &[Planned], ids: &[String]) -> Vec<Referral> {
    let last_told = (plans.iter().flat_map(|p| &p.steps))
        .map(|(at, _)| *at)
        .max()
        .expect("a plan");
    (plans.iter().zip(ids))
        .map(|(p, id)| Referral {
            // Any name of its own groups a search's referrals as its id does.
            search_id: p.search.map(|u| format!("search {u}")).unwrap_or_default(),
            ..referral_of(f, p, id, last_told)
        })
        .collect()
}

fn referral_of(f: &Fixture, p: &Planned, id: &str, last_told: DateTime<Utc>) -> Referral {
    let mut r = Referral {
        id: id.into(),
        service_id: f.demo.service(p.route.service).to_string(),
        receiving_agency_id: f.agency(p.route.provider).to_string(),
        foster_care_team_agency_id: f.agency(p.route.foster).to_string(),
        ..Default::default()
    };
    let (mut status, mut acks) = (ReferralStatus::Submitted, 0);
    let entry =
        |at: DateTime<Utc>, action: ReferralAction, to: ReferralStatus| ReferralHistoryEntry {
            action: action as i32,
            to_status: to as i32,
            at: Some(timestamp(at)),
            ..Default::default()
        };
    for &(at, act) in &p.steps {
        let action = match act {
            Act::Submit => ReferralAction::Submitted,
            Act::Acknowledge(_) => {
                acks += 1;
                if acks == 2 {
                    status = ReferralStatus::Acknowledged;
                }
                ReferralAction::Acknowledged
            }
            Act::Accept => {
                status = ReferralStatus::Accepted;
                ReferralAction::Accepted
            }
            Act::Place => {
                status = ReferralStatus::Placed;
                ReferralAction::Placed
            }
            Act::Decline(reason) => {
                r.decline_reason = reason as i32;
                status = ReferralStatus::Declined;
                ReferralAction::Declined
            }
            Act::Withdraw(reason) => {
                r.withdraw_reason = reason as i32;
                status = ReferralStatus::Withdrawn;
                ReferralAction::Withdrawn
            }
        };
        r.history.push(entry(at, action, status));
    }
    // A decline or a withdrawal made before the deadline (the plan ends referrals before both acknowledged
    // only so) leaves nothing to escalate.
    if acks < 2 && status == ReferralStatus::Submitted && p.deadline() <= last_told {
        r.history
            .push(entry(p.deadline(), ReferralAction::Escalated, status));
    }
    r.status = status as i32;
    r
}

/// The whole plan's days, and a period cut mid-day at both ends.
fn periods(start: DateTime<Utc>) -> [Period; 2] {
    [
        (start, start + Duration::days(DAYS_SUBMITTING + 30)),
        (
            start + Duration::days(17) + Duration::seconds(13 * 3600 + 37 * 60 + 21),
            start + Duration::days(61) + Duration::seconds(8 * 3600 + 5 * 60 + 9),
        ),
    ]
}

const DISTRICTS: [&str; 4] = ["SFO", "VRC", "SZR", "HKV"];

/// The district's report as the test expects it: both sides, flows, services and weeks.
fn expected_report(
    plans: &[Planned],
    referrals: &[Referral],
    district: &str,
    period: Period,
) -> DistrictReport {
    let pick = |side: fn(&Planned) -> &'static str| -> Vec<Referral> {
        (plans.iter().zip(referrals))
            .filter(|(p, _)| side(p) == district)
            .map(|(_, r)| r.clone())
            .collect()
    };
    let received = pick(|p| district_of_service(p.route.service));
    DistrictReport {
        region_code: district.into(),
        as_sender: Some(reports::expected_side_in(
            &pick(|p| district_of_sender(p.route.sender)),
            period,
        )),
        as_receiver: Some(reports::expected_side_in(&received, period)),
        flows: expected_flows(plans, referrals, district, period),
        services: expected_services(plans, referrals, district, period),
        weeks: expected_weeks(&received, period.1),
        ..Default::default()
    }
}

fn took(r: &Referral, action: ReferralAction) -> bool {
    r.history.iter().any(|e| e.action == action as i32)
}

fn rate(accepted: u32, declined: u32) -> f64 {
    if accepted + declined == 0 {
        0.0
    } else {
        f64::from(accepted) / f64::from(accepted + declined)
    }
}

/// Submitted, accepted and declined of the referrals submitted in the period, by `key`, most first.
fn outcomes_by<'a, K: Ord + Clone>(
    of: impl Iterator<Item = (K, &'a Referral)>,
    period: Period,
) -> Vec<(K, u32, u32, u32)> {
    let mut counts = std::collections::BTreeMap::<K, (u32, u32, u32)>::new();
    for (key, r) in of.filter(|(_, r)| reports::submitted_in(r, period)) {
        let c = counts.entry(key).or_default();
        c.0 += 1;
        c.1 += u32::from(took(r, ReferralAction::Accepted));
        c.2 += u32::from(took(r, ReferralAction::Declined));
    }
    let mut out: Vec<_> = counts
        .into_iter()
        .map(|(k, (s, a, d))| (k, s, a, d))
        .collect();
    // Stable: among equal counts the key's order stays.
    out.sort_by_key(|x| std::cmp::Reverse(x.1));
    out
}

fn expected_flows(
    plans: &[Planned],
    referrals: &[Referral],
    district: &str,
    period: Period,
) -> Vec<DistrictFlow> {
    let pairs = (plans.iter().zip(referrals))
        .map(|(p, r)| {
            let pair = (
                district_of_sender(p.route.sender),
                district_of_service(p.route.service),
            );
            (pair, r)
        })
        .filter(|((from, to), _)| *from == district || *to == district);
    outcomes_by(pairs, period)
        .into_iter()
        .map(|((from, to), submitted, accepted, declined)| DistrictFlow {
            sender_region_code: from.into(),
            receiving_region_code: to.into(),
            submitted,
            accepted,
            declined,
            acceptance_rate: rate(accepted, declined),
        })
        .collect()
}

fn expected_services(
    plans: &[Planned],
    referrals: &[Referral],
    district: &str,
    period: Period,
) -> Vec<ServiceAcceptance> {
    let received = (plans.iter().zip(referrals))
        .filter(|(p, _)| district_of_service(p.route.service) == district)
        .map(|(_, r)| (Uuid::parse_str(&r.service_id).expect("a service id"), r));
    let received: Vec<(Uuid, &Referral)> = received.collect();
    outcomes_by(received.iter().copied(), period)
        .into_iter()
        .map(
            |(service, submitted, accepted, declined)| ServiceAcceptance {
                service_id: service.to_string(),
                submitted,
                accepted,
                declined,
                acceptance_rate: rate(accepted, declined),
                decline_reasons: declines_by_reason(&received, service, period),
            },
        )
        .collect()
}

/// The declines of the referrals submitted in the period to `service`, by reason, in the reasons' order.
fn declines_by_reason(
    received: &[(Uuid, &Referral)],
    service: Uuid,
    period: Period,
) -> Vec<ReasonCount> {
    let mut by_reason = std::collections::BTreeMap::<i32, u32>::new();
    for (_, r) in received.iter().filter(|(s, r)| {
        *s == service && reports::submitted_in(r, period) && took(r, ReferralAction::Declined)
    }) {
        *by_reason.entry(r.decline_reason).or_default() += 1;
    }
    (by_reason.into_iter())
        .map(|(reason, count)| ReasonCount { reason, count })
        .collect()
}

/// The eight weeks of seven days before `end`: submissions received and their first responses.
fn expected_weeks(received: &[Referral], end: DateTime<Utc>) -> Vec<WeekFigures> {
    let week = Duration::weeks(1);
    (0..8)
        .map(|i| {
            let from = end - week * (8 - i);
            let of_week: Vec<&Referral> = (received.iter())
                .filter(|r| reports::submitted_in(r, (from, from + week)))
                .collect();
            let first = |working: bool| {
                reports::durations_of(
                    (of_week.iter())
                        .map(|r| reports::to_first_response(r, working))
                        .collect(),
                )
            };
            WeekFigures {
                week_start: Some(timestamp(from)),
                submitted: of_week.len() as u32,
                time_to_first_response: first(false),
                working_time_to_first_response: first(true),
            }
        })
        .collect()
}

/// Stalled now, oldest deadline first (then id), at most 200: each with who has not acknowledged.
fn expected_stalled(
    plans: &[Planned],
    referrals: &[Referral],
    district: &str,
) -> Vec<(String, Vec<String>)> {
    let mut stalled: Vec<(DateTime<Utc>, Uuid, Vec<String>)> = (plans.iter().zip(referrals))
        .filter(|(p, r)| {
            let sides = [
                district_of_sender(p.route.sender),
                district_of_service(p.route.service),
            ];
            sides.contains(&district)
                && r.status == ReferralStatus::Submitted as i32
                && p.deadline() < Utc::now()
        })
        .map(|(p, r)| {
            let acked = p.acknowledged_by();
            let waiting = [
                (Party::Provider, &r.receiving_agency_id),
                (Party::Foster, &r.foster_care_team_agency_id),
            ]
            .into_iter()
            .filter(|(party, _)| !acked.contains(party))
            .map(|(_, id)| id.clone())
            .collect();
            (
                p.deadline(),
                Uuid::parse_str(&r.id).expect("an id"),
                waiting,
            )
        })
        .collect();
    stalled.sort();
    stalled.truncate(200);
    stalled
        .into_iter()
        .map(|(_, id, waiting)| (id.to_string(), waiting))
        .collect()
}

/// The country's totals per receiving district: steps in the period, stalled now.
fn expected_national(plans: &[Planned], referrals: &[Referral], period: Period) -> NationalReport {
    let count = |value: u32| {
        Some(Count {
            value,
            suppressed: false,
        })
    };
    let totals = |region: &str, side: &DistrictSide, stalled: u32| DistrictTotals {
        region_code: region.into(),
        submitted: count(side.submitted),
        accepted: count(side.accepted),
        declined: count(side.declined),
        placed: count(side.placed),
        stalled_now: count(stalled),
    };
    let mut districts = Vec::new();
    for region in ["HKV", "SZR", "VRC"] {
        let received: Vec<(&Planned, &Referral)> = (plans.iter().zip(referrals))
            .filter(|(p, _)| district_of_service(p.route.service) == region)
            .collect();
        let stalled = (received.iter())
            .filter(|(p, r)| {
                r.status == ReferralStatus::Submitted as i32 && p.deadline() < Utc::now()
            })
            .count() as u32;
        let referrals: Vec<Referral> = received.into_iter().map(|(_, r)| r.clone()).collect();
        districts.push(totals(
            region,
            &reports::expected_side_in(&referrals, period),
            stalled,
        ));
    }
    let sum = |of: fn(&DistrictTotals) -> &Option<Count>| {
        count(
            districts
                .iter()
                .map(|d| of(d).as_ref().map_or(0, |c| c.value))
                .sum(),
        )
    };
    let country = DistrictTotals {
        region_code: String::new(),
        submitted: sum(|d| &d.submitted),
        accepted: sum(|d| &d.accepted),
        declined: sum(|d| &d.declined),
        placed: sum(|d| &d.placed),
        stalled_now: sum(|d| &d.stalled_now),
    };
    NationalReport {
        districts,
        country: Some(country),
        ..Default::default()
    }
}

/// The first difference between what the reports say and what the test expects, if any.
async fn differences(
    f: &Fixture,
    plans: &[Planned],
    referrals: &[Referral],
    start: DateTime<Utc>,
) -> Option<String> {
    let client = placement_proto::v1::report_service_client::ReportServiceClient::new(
        placement_cli::clients::channel(f.stack.endpoints.url(services::REPORTS)).expect("channel"),
    );
    for period in periods(start) {
        // Published or not, the same: no count here is below 5.
        for published in [false, true] {
            if let Some(d) = national_difference(&client, plans, referrals, period, published).await
            {
                return Some(d);
            }
        }
        for district in DISTRICTS {
            if let Some(d) = district_difference(&client, plans, referrals, district, period).await
            {
                return Some(d);
            }
        }
    }
    None
}

type ReportClient =
    placement_proto::v1::report_service_client::ReportServiceClient<tonic::transport::Channel>;

/// How the national report for `period` differs from what the test expects, if it does.
async fn national_difference(
    client: &ReportClient,
    plans: &[Planned],
    referrals: &[Referral],
    period: Period,
    published: bool,
) -> Option<String> {
    let asked = GetNationalReportRequest {
        period_start: Some(timestamp(period.0)),
        period_end: Some(timestamp(period.1)),
        published,
    };
    let shown = match client
        .clone()
        .get_national_report(as_agency_with(
            NATIONAL_AUTHORITY,
            &[Role::Supervisor],
            asked,
        ))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(e) => return Some(format!("national: {e:?}")),
    };
    let expected = NationalReport {
        small_counts_suppressed: published,
        ..expected_national(plans, referrals, period)
    };
    let shown = NationalReport {
        as_of: None,
        ..shown
    };
    if shown != expected {
        return Some(format!(
            "national {period:?}:\n shown    {shown:?}\n expected {expected:?}"
        ));
    }
    None
}

/// How `district`'s report for `period` differs from what the test expects, if it does.
async fn district_difference(
    client: &ReportClient,
    plans: &[Planned],
    referrals: &[Referral],
    district: &str,
    period: Period,
) -> Option<String> {
    let asked = GetDistrictReportRequest {
        region_code: district.into(),
        period_start: Some(timestamp(period.0)),
        period_end: Some(timestamp(period.1)),
    };
    let shown = match client
        .clone()
        .get_district_report(as_agency_with(
            NATIONAL_AUTHORITY,
            &[Role::Supervisor],
            asked,
        ))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(e) => return Some(format!("{district}: {e:?}")),
    };
    let expected = expected_report(plans, referrals, district, period);
    let stalled: Vec<(String, Vec<String>)> = (shown.stalled_now.iter())
        .map(|s| (s.referral_id.clone(), s.not_answered_agency_ids.clone()))
        .collect();
    let mismatch = |what: &str, shown: &dyn std::fmt::Debug, expected: &dyn std::fmt::Debug| {
        Some(format!(
            "{district} {period:?} {what}:\n shown    {shown:?}\n expected {expected:?}"
        ))
    };
    for (what, shown_side, expected_side) in [
        ("as sender", &shown.as_sender, &expected.as_sender),
        ("as receiver", &shown.as_receiver, &expected.as_receiver),
    ] {
        let shown_side = reports::normalised(shown_side.as_ref());
        if Some(&shown_side) != expected_side.as_ref() {
            return mismatch(what, &shown_side, expected_side);
        }
    }
    if shown.flows != expected.flows {
        return mismatch("flows", &shown.flows, &expected.flows);
    }
    if shown.services != expected.services {
        return mismatch("services", &shown.services, &expected.services);
    }
    if shown.weeks != expected.weeks {
        return mismatch("weeks", &shown.weeks, &expected.weeks);
    }
    let expected_stalled = expected_stalled(plans, referrals, district);
    if stalled != expected_stalled {
        return mismatch("stalled", &stalled, &expected_stalled);
    }
    None
}

/// Waits until the reports say what the test expects; panics with the last difference at the deadline.
async fn reports_agree(
    f: &Fixture,
    plans: &[Planned],
    referrals: &[Referral],
    start: DateTime<Utc>,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    loop {
        let Some(difference) = differences(f, plans, referrals, start).await else {
            return;
        };
        assert!(
            std::time::Instant::now() < deadline,
            "the reports never agreed: {difference}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The plan holds what the search figures are about: searches to two and to five services, first offers,
/// requests closed as placed elsewhere, and searches closed without a place.
fn plan_has_every_kind_of_search(referrals: &[Referral]) {
    let mut sizes = std::collections::BTreeMap::<&str, usize>::new();
    for r in referrals.iter().filter(|r| !r.search_id.is_empty()) {
        *sizes.entry(&r.search_id).or_default() += 1;
    }
    assert_eq!(sizes.len(), SEARCHES);
    assert!(sizes.values().any(|n| *n == 2) && sizes.values().any(|n| *n == 5));
    let all = (Utc::now() - Duration::days(400), Utc::now());
    let side = reports::expected_side_in(referrals, all);
    assert!(side.search_offers > 20, "offers: {}", side.search_offers);
    assert!(side.placed_elsewhere > 20, "{}", side.placed_elsewhere);
    assert!(
        side.searches_without_place > 5,
        "{}",
        side.searches_without_place
    );
    let chosen = side.time_to_chosen_offer.map_or(0, |d| d.count);
    assert!(chosen > 20, "chosen offers: {chosen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn months_of_history_give_the_figures_the_test_computes() {
    // The reports' own credential, for the rebuild at the end.
    let (_provider, options) = reports::with_reports_credential(placement_e2e::StackOptions {
        ack_deadline: Some(format!("{ACK_HOURS}h")),
        escalation_interval: Some("200ms".into()),
        // The test clock is refused outside development mode (one variable must not switch it on).
        env: vec![
            ("PLACEMENT_TEST_CLOCK".into(), "true".into()),
            ("PLACEMENT_AUTH_MODE".into(), "development".into()),
            // The plan times the acknowledgement only: the later steps' timers never fall due in it.
            ("PLACEMENT_STEP_DEADLINE".into(), "36500days".into()),
        ],
        ..Default::default()
    })
    .await;
    let mut f = Fixture::with(options).await;
    let today = Utc::now()
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let start = today - Duration::days(DAYS_BACK);
    let (plans, units) = plan(start);
    make_room(&f).await;
    let cases = open_cases(&f, &plans, &units).await;
    let ids = drive(&f, &plans, &units, &cases).await;
    let referrals = as_referrals(&f, &plans, &ids);
    let escalated = (referrals.iter())
        .filter(|r| took(r, ReferralAction::Escalated))
        .count();
    assert!(
        escalated > REFERRALS / 10,
        "the plan leaves some unanswered: {escalated}"
    );
    plan_has_every_kind_of_search(&referrals);
    reports_agree(&f, &plans, &referrals, start).await;

    // The same from nothing: the model emptied, the reports started again build it from the referrals.
    f.stack.kill(services::REPORTS.name);
    let mut db = f.stack.db().await;
    sqlx::query(
        "TRUNCATE reports.referrals, reports.steps, reports.step_days, reports.agencies, reports.services",
    )
    .execute(&mut db)
    .await
    .expect("empty the model");
    f.stack.restart(services::REPORTS.name);
    reports_agree(&f, &plans, &referrals, start).await;
}
