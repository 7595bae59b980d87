//! Three months of a country's referrals with known timings, driven through the real services and told
//! their times through the referrals service's test clock (`PLACEMENT_TEST_CLOCK`). A deterministic plan
//! says who answers when; the test computes every figure itself from that plan — for a period of whole
//! days and for one cut mid-day, for each district as sender and as receiver, its flows, its services,
//! its eight weeks and its stalled list — and the reports must give exactly that, live and again after
//! a rebuild from an empty model.

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
    NationalReport, Referral, ReferralAction, ReferralHistoryEntry, ReferralStatus,
    ServiceAcceptance, SubmitReferralRequest, UpdateCapacityRequest, WeekFigures, WithdrawReason,
    WithdrawReferralRequest,
};
use uuid::Uuid;

use crate::reports::{self, Period};
use crate::support::Fixture;
use placement_e2e::load::with_retries;

const REFERRALS: usize = 2400;
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

/// One referral as planned: its route and each step with its time, in order.
struct Planned {
    route: &'static Route,
    steps: Vec<(DateTime<Utc>, Act)>,
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
fn plan(start: DateTime<Utc>) -> Vec<Planned> {
    let mut draw = Draw(0x0005_EED0_2026_1202);
    (0..REFERRALS)
        .map(|_| {
            let route = &ROUTES[draw.below(ROUTES.len() as u64) as usize];
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
            Planned { route, steps }
        })
        .collect()
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

/// Takes one planned step; returns the referral's id when it was the submission.
async fn take(
    f: &Fixture,
    p: &Planned,
    id: Option<&str>,
    case: &str,
    at: DateTime<Utc>,
    act: Act,
) -> Result<String, tonic::Status> {
    let mut referrals = f.clients.referrals.clone();
    let referral_id = id.unwrap_or_default().to_string();
    let (provider, foster) = (f.agency(p.route.provider), f.agency(p.route.foster));
    let sender = f.agency(p.route.sender);
    let done = match act {
        Act::Submit => {
            let day = (at - Duration::days(1)).date_naive();
            let asked = SubmitReferralRequest {
                case_id: case.into(),
                service_id: f.demo.service(p.route.service).to_string(),
                legal_basis: Some(LegalBasis {
                    kind: LegalBasisKind::CourtDecision as i32,
                    number: "ГД-311/2026".into(),
                    issued_on: Some(placement_platform::time::date(day)),
                    court: "Районен съд".into(),
                }),
                reason: "No place in the district.".into(),
                idempotency_key: case.into(),
            };
            let r = referrals.submit_referral(told(sender, at, asked)).await;
            return r.map(|r| r.into_inner().id);
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
    done.map(|_| referral_id)
}

/// Runs the plan in the order of its told times, [`BATCH`] steps at a time; returns each referral's id.
async fn drive(f: &Fixture, plans: &[Planned], cases: &[String]) -> Vec<String> {
    let mut steps: Vec<(DateTime<Utc>, usize, usize)> = (plans.iter().enumerate())
        .flat_map(|(i, p)| (0..p.steps.len()).map(move |k| (p.steps[k].0, i, k)))
        .collect();
    steps.sort_unstable();
    let mut ids: Vec<Option<String>> = vec![None; plans.len()];
    let mut rest = steps.as_slice();
    while let Some(&(first, ..)) = rest.first() {
        // A batch: steps within BATCH_SPAN of its first, no referral twice (its steps stay in order).
        let mut seen = std::collections::HashSet::new();
        let n = (rest.iter().take(BATCH))
            .take_while(|(at, i, _)| {
                *at - first <= Duration::seconds(BATCH_SPAN) && seen.insert(*i)
            })
            .count();
        let (batch, later) = rest.split_at(n);
        // The other suites stop and start the shared database: a step refused UNAVAILABLE is taken again,
        // as a real client would (a FAILED_PRECONDITION after that means the first one went through).
        let retries = placement_e2e::load::Retries::default();
        let done = join_all(batch.iter().map(|&(at, i, k)| {
            let act = plans[i].steps[k].1;
            let id = ids[i].as_deref();
            let step = with_retries(&retries, "a planned step", move || {
                take(f, &plans[i], id, &cases[i], at, act)
            });
            async move {
                let taken = step
                    .await
                    .unwrap_or_else(|e| panic!("{act:?} at {at}: {e}"));
                taken.unwrap_or_else(|| {
                    id.expect("only a later step can have gone through")
                        .to_string()
                })
            }
        }))
        .await;
        for (&(_, i, _), id) in batch.iter().zip(done) {
            ids[i] = Some(id);
        }
        rest = later;
    }
    ids.into_iter().map(|id| id.expect("submitted")).collect()
}

/// One open case of one ten-year-old for each planned referral, opened by its sender.
async fn open_cases(f: &Fixture, plans: &[Planned]) -> Vec<String> {
    use chrono::Datelike;
    let year = Utc::now().year();
    let mut cases = Vec::with_capacity(plans.len());
    for chunk in plans.chunks(BATCH) {
        let opened = join_all(chunk.iter().map(|p| {
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
        .map(|(p, id)| referral_of(f, p, id, last_told))
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
    // A decline made before the deadline (the plan's only step that ends a referral before both
    // acknowledged) leaves nothing to escalate.
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
    outcomes_by(received, period)
        .into_iter()
        .map(
            |(service, submitted, accepted, declined)| ServiceAcceptance {
                service_id: service.to_string(),
                submitted,
                accepted,
                declined,
                acceptance_rate: rate(accepted, declined),
            },
        )
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
    let plans = plan(start);
    make_room(&f).await;
    let cases = open_cases(&f, &plans).await;
    let ids = drive(&f, &plans, &cases).await;
    let referrals = as_referrals(&f, &plans, &ids);
    let escalated = (referrals.iter())
        .filter(|r| took(r, ReferralAction::Escalated))
        .count();
    assert!(
        escalated > REFERRALS / 10,
        "the plan leaves some unanswered: {escalated}"
    );
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
