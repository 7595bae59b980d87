//! The reports service: a district's figures, learnt from the referrals' events, checked against what the
//! test computes itself from the referrals' own histories (read from the referrals service), with a
//! replayed event changing nothing and another district's RDSA refused; and the same figures built again
//! from the referrals service when the reports start with none.

use std::time::Duration;

use chrono::Utc;
use placement_cli::{clients::as_agency_with, scenario::eventually};
use placement_platform::{
    caller::{NATIONAL_AUTHORITY, Role},
    services,
    time::{from_timestamp, timestamp},
};
use placement_proto::v1::{
    DeclineReason, DeclineReferralRequest, DistrictReport, DistrictSide, DurationFigures,
    EventEnvelope, ExportDistrictReportRequest, FreePlaces, GetAgencyReportRequest,
    GetDistrictReportRequest, GetNationalReportRequest, PageRequest, PlacesByType, ReasonCount,
    Referral, ReferralAction, ReferralStatus, ReportFile, ReportFormat, ReportTable,
    SearchServicesRequest, SocialService, StatusCount, WithdrawReason,
    report_service_client::ReportServiceClient,
};
use tonic::Code;

use crate::support::{Fixture, WAIT};

struct Reports {
    client: ReportServiceClient<tonic::transport::Channel>,
    period: (chrono::DateTime<Utc>, chrono::DateTime<Utc>),
}

impl Reports {
    /// The reports service of the fixture's stack, asked for a period around now.
    fn of_stack(f: &Fixture) -> Reports {
        Reports {
            client: ReportServiceClient::new(
                placement_cli::clients::channel(f.stack.endpoints.url(services::REPORTS))
                    .expect("channel"),
            ),
            period: (
                Utc::now() - chrono::Duration::minutes(5),
                Utc::now() + chrono::Duration::hours(1),
            ),
        }
    }

    /// The same service asked for whole UTC days around today: the figures then come from the day
    /// counts, not from the steps at the period's ends.
    fn whole_days(&self) -> Reports {
        let today = Utc::now()
            .date_naive()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        Reports {
            client: self.client.clone(),
            period: (
                today - chrono::Duration::days(1),
                today + chrono::Duration::days(2),
            ),
        }
    }

    async fn of(
        &self,
        agency: uuid::Uuid,
        roles: &[Role],
        region: &str,
    ) -> Result<DistrictReport, tonic::Status> {
        self.client
            .clone()
            .get_district_report(as_agency_with(
                agency,
                roles,
                GetDistrictReportRequest {
                    region_code: region.into(),
                    period_start: Some(timestamp(self.period.0)),
                    period_end: Some(timestamp(self.period.1)),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }
}

/// Days off in Bulgaria's official calendar for 2026 and 2027 — holidays, and the weekdays off in place of
/// those on a weekend — as published, to check the working-time figures against.
const DAYS_OFF: &[&str] = &[
    "2026-01-01",
    "2026-03-03",
    "2026-04-10",
    "2026-04-13",
    "2026-05-01",
    "2026-05-06",
    "2026-05-25",
    "2026-09-07",
    "2026-09-22",
    "2026-12-24",
    "2026-12-25",
    "2026-12-28",
    "2027-01-01",
    "2027-03-03",
    "2027-04-30",
    "2027-05-03",
    "2027-05-04",
    "2027-05-06",
    "2027-05-24",
    "2027-09-06",
    "2027-09-22",
    "2027-12-24",
    "2027-12-27",
    "2027-12-28",
];

/// Microseconds of office hours (Monday to Friday, 09:00-17:30 in Sofia, not a day off) from `from` to `to`.
fn working_micros(from: chrono::DateTime<Utc>, to: chrono::DateTime<Utc>) -> i64 {
    use chrono::{Datelike, TimeZone};
    let sofia = chrono_tz::Europe::Sofia;
    let (mut day, last) = (
        from.with_timezone(&sofia).date_naive(),
        to.with_timezone(&sofia).date_naive(),
    );
    assert!(last.year() <= 2027, "extend DAYS_OFF to {}", last.year());
    let mut total = 0;
    while day <= last {
        let at = |h, m| {
            let local = day.and_hms_opt(h, m, 0).expect("a time");
            sofia.from_local_datetime(&local).unwrap().to_utc()
        };
        let weekday = day.weekday().number_from_monday() <= 5;
        if weekday && !DAYS_OFF.contains(&day.to_string().as_str()) {
            let (a, b) = (at(9, 0).max(from), at(17, 30).min(to));
            if b > a {
                total += (b - a).num_microseconds().expect("micros");
            }
        }
        day = day.succ_opt().expect("a day");
    }
    total
}

/// Microseconds from the referral's submission to the first step matching `which`, from its own history.
fn after_submission(
    r: &Referral,
    which: impl Fn(ReferralAction, ReferralStatus) -> bool,
) -> Option<i64> {
    between_steps(r, which).map(|(from, to)| (to - from).num_microseconds().expect("micros"))
}

/// The same in working time.
fn working_after_submission(
    r: &Referral,
    which: impl Fn(ReferralAction, ReferralStatus) -> bool,
) -> Option<i64> {
    between_steps(r, which).map(|(from, to)| working_micros(from, to))
}

/// When the referral was submitted and when it first took a step matching `which`.
fn between_steps(
    r: &Referral,
    which: impl Fn(ReferralAction, ReferralStatus) -> bool,
) -> Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> {
    let at = |e: &placement_proto::v1::ReferralHistoryEntry| {
        from_timestamp(e.at.as_ref().expect("at")).expect("a time")
    };
    let submitted = r
        .history
        .iter()
        .find(|e| e.action == ReferralAction::Submitted as i32)?;
    let step = r.history.iter().find(|e| {
        which(
            ReferralAction::try_from(e.action).expect("action"),
            ReferralStatus::try_from(e.to_status).expect("status"),
        )
    })?;
    Some((at(submitted), at(step)))
}

/// Nearest rank, computed here apart from the service: sorted, the ceil(p·n)-th.
fn expected(values: Vec<Option<i64>>) -> (u32, Option<i64>, Option<i64>, Option<i64>) {
    let mut v: Vec<i64> = values.into_iter().flatten().collect();
    v.sort_unstable();
    let rank = |p: f64| {
        let n = v.len() as f64;
        (!v.is_empty()).then(|| v[((p * n).ceil() as usize).max(1) - 1])
    };
    (v.len() as u32, rank(0.5), rank(0.9), v.last().copied())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_districts_figures_are_what_its_referrals_did() {
    let f = Fixture::with(placement_e2e::StackOptions {
        ack_deadline: Some("4s".into()),
        escalation_interval: Some("200ms".into()),
        ..Default::default()
    })
    .await;
    let reports = Reports::of_stack(&f);
    let mut recorder = f.stack.record_events().await;
    let pirdop = f.agency("dsa-pirdop");
    let service = f.demo.service("ftpc-vratsa");
    let ids = send_referrals(&f, 4).await;
    // The two left unanswered are escalated at their deadline: after that nothing more happens to these.
    for id in &ids[2..] {
        eventually("escalated", WAIT, || async {
            f.referral(pirdop, id).await.escalated.then_some(())
        })
        .await
        .expect("escalated at the deadline");
    }
    let referrals = referrals_now(&f, &ids).await;
    // Twins born five years before this year: each 4 or 5 years old.
    let ages = |r: &Referral| (r.youngest_child_age, r.oldest_child_age);
    assert!(referrals.iter().all(|r| ages(r) == (Some(5), Some(4))));
    let expected = expected_side(&referrals);
    assert_eq!(
        (
            expected.submitted,
            expected.placed,
            expected.declined,
            expected.escalated,
            expected.unanswered
        ),
        (4, 1, 1, 2, 1),
        "the scenario did what it says"
    );
    let vratsa = figures_become(&reports, expected.clone()).await;
    assert_the_weeks_and_the_senders_side(&reports, &vratsa, &expected).await;
    assert_one_flow_through_one_service(&vratsa, service, &expected);
    exports_hold_the_same_figures(&reports, &vratsa).await;

    assert_stalled_oldest_first(&f, &vratsa, &ids);

    // Asked for whole days, the same figures (counted by day), and a replay counts no step twice there.
    let days = reports.whole_days();
    let vratsa = days
        .of(NATIONAL_AUTHORITY, &[Role::Supervisor], "VRC")
        .await
        .expect("report");
    assert_eq!(normalised(vratsa.as_receiver.as_ref()), expected);
    places_as_the_directory_has_them(&f, &reports).await;
    a_dsas_own_figures(&f, &reports, &expected, &ids[2..]).await;

    let steps = referrals.iter().map(|r| r.history.len()).sum();
    replayed_events_change_nothing(&f, &days, &vratsa, &mut recorder, &ids, steps).await;
    who_sees_a_districts_figures(&f, &reports).await;
    the_sacp_sees_figures_only(&f, &reports, &referrals[0]).await;
    the_country_with_small_counts_suppressed(&f, &reports).await;
    the_country_with_small_counts_suppressed(&f, &days).await;
}

/// The eight weeks up to the period's end: all four in the last, answered as the period says; the
/// sending district's side shows the same figures.
async fn assert_the_weeks_and_the_senders_side(
    reports: &Reports,
    vratsa: &DistrictReport,
    expected: &DistrictSide,
) {
    let weeks: Vec<u32> = vratsa.weeks.iter().map(|w| w.submitted).collect();
    assert_eq!(weeks, [0, 0, 0, 0, 0, 0, 0, 4]);
    let last = &vratsa.weeks[7];
    assert_eq!(last.time_to_first_response, expected.time_to_first_response);
    assert_eq!(
        last.working_time_to_first_response,
        expected.working_time_to_first_response
    );
    let sender = reports
        .of(NATIONAL_AUTHORITY, &[Role::Supervisor], "SFO")
        .await
        .expect("SFO");
    assert_eq!(normalised(sender.as_sender.as_ref()), *expected);
    assert_eq!(sender.as_receiver.as_ref().map(|s| s.submitted), Some(0));
}

/// One flow, Sofia province to Vratsa, through one service: four sent, one accepted, one declined.
fn assert_one_flow_through_one_service(
    vratsa: &DistrictReport,
    service: uuid::Uuid,
    expected: &DistrictSide,
) {
    let flows: Vec<_> = (vratsa.flows.iter())
        .map(|x| {
            let pair = (
                x.sender_region_code.as_str(),
                x.receiving_region_code.as_str(),
            );
            (pair, x.submitted, x.accepted, x.declined, x.acceptance_rate)
        })
        .collect();
    assert_eq!(flows, [(("SFO", "VRC"), 4, 1, 1, 0.5)]);
    let services: Vec<_> = (vratsa.services.iter())
        .map(|x| (x.service_id.clone(), x.submitted, x.accepted, x.declined))
        .collect();
    assert_eq!(services, [(service.to_string(), 4, 1, 1)]);
    assert_eq!(
        expected.decline_reasons,
        [ReasonCount {
            reason: DeclineReason::AtCapacity as i32,
            count: 1
        }]
    );
}

/// Oldest first, each naming who has not answered.
fn assert_stalled_oldest_first(f: &Fixture, vratsa: &DistrictReport, ids: &[String]) {
    let stalled: Vec<(&str, Vec<String>)> = (vratsa.stalled_now.iter())
        .map(|s| (s.referral_id.as_str(), s.not_answered_agency_ids.clone()))
        .collect();
    let (foster, provider) = (
        f.agency("foster-vratsa").to_string(),
        f.agency("provider-vratsa").to_string(),
    );
    assert_eq!(
        stalled,
        [
            (ids[2].as_str(), vec![foster.clone()]),
            (ids[3].as_str(), vec![provider, foster])
        ]
    );
}

/// The national view: Vratsa's four, one accepted, one declined, one placed, two stalled; published, every
/// count under 5 is suppressed, the country's too (Vratsa is the only district with any).
async fn the_country_with_small_counts_suppressed(f: &Fixture, reports: &Reports) {
    let national = |agency, published| {
        let mut client = reports.client.clone();
        let asked = GetNationalReportRequest {
            period_start: Some(timestamp(reports.period.0)),
            period_end: Some(timestamp(reports.period.1)),
            published,
        };
        async move {
            client
                .get_national_report(as_agency_with(agency, &[Role::Supervisor], asked))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let figures = |t: &placement_proto::v1::DistrictTotals| {
        [
            &t.submitted,
            &t.accepted,
            &t.declined,
            &t.placed,
            &t.stalled_now,
        ]
        .map(|c| {
            c.as_ref()
                .map(|c| (c.value, c.suppressed))
                .expect("a count")
        })
    };
    let exact = national(NATIONAL_AUTHORITY, false).await.expect("national");
    let districts: Vec<&str> = exact
        .districts
        .iter()
        .map(|d| d.region_code.as_str())
        .collect();
    assert_eq!(districts, ["VRC"]);
    let vratsa = [(4, false), (1, false), (1, false), (1, false), (2, false)];
    assert_eq!(figures(&exact.districts[0]), vratsa);
    assert_eq!(figures(exact.country.as_ref().expect("country")), vratsa);
    assert!(!exact.small_counts_suppressed);
    let published = national(NATIONAL_AUTHORITY, true).await.expect("published");
    assert!(published.small_counts_suppressed);
    assert_eq!(figures(&published.districts[0]), [(0, true); 5]);
    let refused = national(f.agency("rdsa-vratsa"), false)
        .await
        .expect_err("refused");
    assert_eq!(
        refused.code(),
        Code::PermissionDenied,
        "an RDSA sees its district, not the country"
    );
}

/// Pirdop sends `n` referrals to the Vratsa centre: the first placed, the second declined, the third
/// acknowledged by the provider only, any more answered by nobody. Returns their ids.
async fn send_referrals(f: &Fixture, n: usize) -> Vec<String> {
    let pirdop = f.agency("dsa-pirdop");
    let service = f.demo.service("ftpc-vratsa");
    let mut ids = Vec::new();
    for pattern in 0..n {
        let r = f
            .submit(pirdop, &f.open_twins_case(pirdop).await, service)
            .await;
        match pattern {
            0 => {
                f.acknowledge(&r.id, &["provider-vratsa", "foster-vratsa"])
                    .await;
                place(f, &r.id).await;
            }
            1 => {
                f.acknowledge(&r.id, &["provider-vratsa", "foster-vratsa"])
                    .await;
                decline(f, &r.id).await;
            }
            2 => f.acknowledge(&r.id, &["provider-vratsa"]).await,
            _ => {}
        }
        ids.push(r.id);
    }
    ids
}

async fn place(f: &Fixture, id: &str) {
    let mut referrals = f.clients.referrals.clone();
    let vratsa = f.agency("provider-vratsa");
    referrals
        .accept_referral(placement_cli::clients::as_agency(
            vratsa,
            placement_proto::v1::AcceptReferralRequest {
                referral_id: id.into(),
            },
        ))
        .await
        .expect("accept");
    referrals
        .confirm_placement(placement_cli::clients::as_agency(
            f.agency("dsa-pirdop"),
            placement_proto::v1::ConfirmPlacementRequest {
                referral_id: id.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("confirm");
}

async fn decline(f: &Fixture, id: &str) {
    f.clients
        .referrals
        .clone()
        .decline_referral(placement_cli::clients::as_agency(
            f.agency("provider-vratsa"),
            DeclineReferralRequest {
                referral_id: id.into(),
                reason: DeclineReason::AtCapacity as i32,
                comment: String::new(),
            },
        ))
        .await
        .expect("decline");
}

/// The side's figures as the test computes them from the referrals' own histories.
fn expected_side(referrals: &[Referral]) -> DistrictSide {
    expected_side_in(
        referrals,
        (
            chrono::DateTime::<Utc>::MIN_UTC,
            chrono::DateTime::<Utc>::MAX_UTC,
        ),
    )
}

pub(crate) type Period = (chrono::DateTime<Utc>, chrono::DateTime<Utc>);

fn entry_at(e: &placement_proto::v1::ReferralHistoryEntry) -> chrono::DateTime<Utc> {
    from_timestamp(e.at.as_ref().expect("at")).expect("a time")
}

pub(crate) fn submitted_in(r: &Referral, period: Period) -> bool {
    (r.history.iter())
        .find(|e| e.action == ReferralAction::Submitted as i32)
        .is_some_and(|e| (period.0..period.1).contains(&entry_at(e)))
}

/// How many referrals are in each status now, by status.
fn by_status_now(all: &[Referral]) -> Vec<StatusCount> {
    let mut counts: Vec<StatusCount> = Vec::new();
    for r in all {
        match counts.iter_mut().find(|s| s.status == r.status) {
            Some(s) => s.count += 1,
            None => counts.push(StatusCount {
                status: r.status,
                count: 1,
            }),
        }
    }
    counts.sort_by_key(|s| s.status);
    counts
}

/// The same for a period: steps taken in it, durations of the referrals submitted in it.
pub(crate) fn expected_side_in(all: &[Referral], period: Period) -> DistrictSide {
    let referrals: Vec<Referral> = (all.iter())
        .filter(|r| submitted_in(r, period))
        .cloned()
        .collect();
    let referrals = referrals.as_slice();
    let by_status_now = by_status_now(all);
    let history = || {
        (all.iter())
            .flat_map(|r| &r.history)
            .filter(move |e| (period.0..period.1).contains(&entry_at(e)))
    };
    let steps = |a: ReferralAction| history().filter(|e| e.action == a as i32).count() as u32;
    // Withdrawals as placed elsewhere are counted on their own, and never as declines or withdrawals.
    let withdrawals = |elsewhere: bool| {
        (all.iter())
            .filter(|r| placed_elsewhere(r) == elsewhere)
            .flat_map(|r| &r.history)
            .filter(|e| {
                e.action == ReferralAction::Withdrawn as i32
                    && (period.0..period.1).contains(&entry_at(e))
            })
            .count() as u32
    };
    let timed = |working: bool, which: &dyn Fn(ReferralAction, ReferralStatus) -> bool| {
        durations_of(
            referrals
                .iter()
                .map(|r| {
                    if working {
                        working_after_submission(r, which)
                    } else {
                        after_submission(r, which)
                    }
                })
                .collect(),
        )
    };
    let timing = |which: &dyn Fn(ReferralAction, ReferralStatus) -> bool| timed(false, which);
    let working = |which: &dyn Fn(ReferralAction, ReferralStatus) -> bool| timed(true, which);
    // The first answer: an acknowledgement, or a decline made before any.
    let first_answer = |a, _| matches!(a, ReferralAction::Acknowledged | ReferralAction::Declined);
    let all_acks = |a, s| a == ReferralAction::Acknowledged && s == ReferralStatus::Acknowledged;
    let decided = |a, _| matches!(a, ReferralAction::Accepted | ReferralAction::Declined);
    let placed = |a, _| a == ReferralAction::Placed;
    let first = timing(&first_answer);
    DistrictSide {
        by_status_now,
        submitted: steps(ReferralAction::Submitted),
        acknowledged: history()
            .filter(|e| {
                e.action == ReferralAction::Acknowledged as i32
                    && e.to_status == ReferralStatus::Acknowledged as i32
            })
            .count() as u32,
        accepted: steps(ReferralAction::Accepted),
        declined: steps(ReferralAction::Declined),
        withdrawn: withdrawals(false),
        placed_elsewhere: withdrawals(true),
        placed: steps(ReferralAction::Placed),
        escalated: steps(ReferralAction::Escalated),
        unanswered: referrals.len() as u32 - first.as_ref().map_or(0, |f| f.count),
        time_to_first_response: first,
        time_to_all_acknowledgements: timing(&all_acks),
        time_to_decision: timing(&decided),
        time_to_placement: timing(&placed),
        working_time_to_first_response: working(&first_answer),
        working_time_to_all_acknowledgements: working(&all_acks),
        working_time_to_decision: working(&decided),
        working_time_to_placement: working(&placed),
        decline_reasons: reasons(all, period, ReferralAction::Declined, |r| r.decline_reason),
        withdraw_reasons: reasons(all, period, ReferralAction::Withdrawn, |r| {
            r.withdraw_reason
        })
        .into_iter()
        .filter(|c| c.reason != WithdrawReason::PlacedElsewhere as i32)
        .collect(),
        ..expected_searches(referrals)
    }
}

/// Withdrawn because the children were placed elsewhere (another request of its search, or another way).
fn placed_elsewhere(r: &Referral) -> bool {
    r.status == ReferralStatus::Withdrawn as i32
        && r.withdraw_reason == WithdrawReason::PlacedElsewhere as i32
}

/// The search figures of a side's referrals submitted in the period: grouped by search (a referral sent
/// alone is none), each search's times from its first submission to its first acceptance and to its
/// placement; closed without a place when every request was declined or withdrawn, not as placed elsewhere.
fn expected_searches(referrals: &[Referral]) -> DistrictSide {
    let mut searches = std::collections::BTreeMap::<&str, Vec<&Referral>>::new();
    for r in referrals.iter().filter(|r| !r.search_id.is_empty()) {
        searches.entry(&r.search_id).or_default().push(r);
    }
    let first = |requests: &[&Referral], action: ReferralAction| {
        (requests.iter())
            .flat_map(|r| &r.history)
            .filter(|e| e.action == action as i32)
            .map(entry_at)
            .min()
    };
    let times = |to: ReferralAction, working: bool| {
        durations_of(
            (searches.values())
                .map(|requests| {
                    let from = first(requests, ReferralAction::Submitted)?;
                    let to = first(requests, to)?;
                    Some(if working {
                        working_micros(from, to)
                    } else {
                        (to - from).num_microseconds().expect("micros")
                    })
                })
                .collect(),
        )
    };
    let closed = |r: &&Referral| {
        r.status == ReferralStatus::Declined as i32
            || (r.status == ReferralStatus::Withdrawn as i32 && !placed_elsewhere(r))
    };
    let accepted =
        |r: &&&Referral| (r.history.iter()).any(|e| e.action == ReferralAction::Accepted as i32);
    DistrictSide {
        searches: searches.len() as u32,
        search_services_asked: searches.values().map(Vec::len).sum::<usize>() as u32,
        search_offers: (searches.values().flatten()).filter(accepted).count() as u32,
        searches_without_place: (searches.values())
            .filter(|requests| requests.iter().all(closed))
            .count() as u32,
        time_to_first_offer: times(ReferralAction::Accepted, false),
        time_to_chosen_offer: times(ReferralAction::Placed, false),
        working_time_to_first_offer: times(ReferralAction::Accepted, true),
        working_time_to_chosen_offer: times(ReferralAction::Placed, true),
        ..Default::default()
    }
}

/// Count, median, p90 and slowest of the durations there are, as the reports give them.
pub(crate) fn durations_of(values: Vec<Option<i64>>) -> Option<DurationFigures> {
    let (count, median, p90, slowest) = expected(values);
    Some(DurationFigures {
        count,
        median: median.map(duration),
        p90: p90.map(duration),
        slowest: slowest.map(duration),
    })
}

/// From the referral's submission to its first acknowledgement, in calendar or working time.
pub(crate) fn to_first_response(r: &Referral, working: bool) -> Option<i64> {
    let first_answer = |a, _| matches!(a, ReferralAction::Acknowledged | ReferralAction::Declined);
    if working {
        working_after_submission(r, first_answer)
    } else {
        after_submission(r, first_answer)
    }
}

/// The reasons of the referrals that took `action`, counted, in the reasons' order.
fn reasons(
    referrals: &[Referral],
    period: Period,
    action: ReferralAction,
    reason: fn(&Referral) -> i32,
) -> Vec<ReasonCount> {
    let mut out: Vec<ReasonCount> = Vec::new();
    let took = |e: &placement_proto::v1::ReferralHistoryEntry| {
        e.action == action as i32 && (period.0..period.1).contains(&entry_at(e))
    };
    for r in referrals.iter().filter(|r| r.history.iter().any(took)) {
        match out.iter_mut().find(|c| c.reason == reason(r)) {
            Some(c) => c.count += 1,
            None => out.push(ReasonCount {
                reason: reason(r),
                count: 1,
            }),
        }
    }
    out.sort_by_key(|c| c.reason);
    out
}

fn duration(micros: i64) -> placement_proto::prost_types::Duration {
    placement_proto::prost_types::Duration {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// The side as reported, its statuses in the order the test lists them.
pub(crate) fn normalised(side: Option<&DistrictSide>) -> DistrictSide {
    let mut side = side.cloned().unwrap_or_default();
    side.by_status_now.sort_by_key(|s| s.status);
    side
}

/// Every referral event the reports applied, delivered again: the figures stay as they were.
async fn replayed_events_change_nothing(
    f: &Fixture,
    reports: &Reports,
    before: &DistrictReport,
    recorder: &mut placement_e2e::EventRecorder,
    ids: &[String],
    steps: usize,
) {
    let ours = |events: &[(EventEnvelope, Vec<u8>)]| -> Vec<EventEnvelope> {
        (events.iter().map(|(e, _)| e))
            .filter(|e| ids.contains(&e.aggregate_id))
            .cloned()
            .collect()
    };
    assert!(
        recorder
            .wait_until(WAIT, |events| ours(events).len() >= steps)
            .await,
        "every step's event was published"
    );
    let events = ours(&recorder.events);
    let queue = f.stack.queue(services::REPORTS.name);
    for e in &events {
        f.stack.put_event_in_queue(&queue, e).await;
    }
    let event_ids: Vec<uuid::Uuid> = events
        .iter()
        .map(|e| e.event_id.parse().expect("id"))
        .collect();
    assert!(
        f.stack
            .has_processed(services::REPORTS.name, &event_ids)
            .await
    );
    // The replayed copies are consumed when a marker event put in after them is.
    let mut marker = events[0].clone();
    marker.event_id = uuid::Uuid::now_v7().to_string();
    f.stack.put_event_in_queue(&queue, &marker).await;
    let marker_id = [marker.event_id.parse().expect("id")];
    let deadline = std::time::Instant::now() + WAIT;
    while !f
        .stack
        .has_processed(services::REPORTS.name, &marker_id)
        .await
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the replayed events were not consumed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = reports
        .of(NATIONAL_AUTHORITY, &[Role::Supervisor], "VRC")
        .await
        .expect("report");
    assert_eq!(after.as_receiver, before.as_receiver);
    assert_eq!(after.stalled_now, before.stalled_now);
}

/// The State Agency for Child Protection, a national authority of its own: the country's figures and any
/// district's, but no case and no referral (NOT_FOUND, as for anyone not concerned).
async fn the_sacp_sees_figures_only(f: &Fixture, reports: &Reports, referral: &Referral) {
    let sacp = f.agency("sacp");
    let vratsa = reports.of(sacp, &[Role::Caseworker], "VRC").await;
    let vratsa = vratsa.expect("a district's figures");
    assert!(vratsa.as_receiver.is_some_and(|s| s.submitted > 0));
    let country = (reports.client.clone())
        .get_national_report(as_agency_with(
            sacp,
            &[Role::Caseworker],
            GetNationalReportRequest {
                period_start: Some(timestamp(reports.period.0)),
                period_end: Some(timestamp(reports.period.1)),
                published: true,
            },
        ))
        .await
        .expect("the country's figures");
    assert!(!country.into_inner().districts.is_empty());
    let asked = placement_proto::v1::GetReferralRequest {
        referral_id: referral.id.clone(),
    };
    let hidden = (f.clients.referrals.clone())
        .get_referral(as_agency_with(sacp, &[Role::Caseworker], asked))
        .await
        .expect_err("no referral");
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    let asked = placement_proto::v1::GetCaseRequest {
        case_id: referral.case_id.clone(),
    };
    let hidden = (f.clients.cases.clone())
        .get_case(as_agency_with(sacp, &[Role::Caseworker], asked))
        .await
        .expect_err("no case");
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
}

async fn who_sees_a_districts_figures(f: &Fixture, reports: &Reports) {
    let rdsa = |key: &str| f.agency(key);
    assert!(
        reports
            .of(rdsa("rdsa-vratsa"), &[Role::Supervisor], "VRC")
            .await
            .is_ok()
    );
    let refused = reports
        .of(rdsa("rdsa-vratsa"), &[Role::Supervisor], "SFO")
        .await
        .expect_err("refused");
    assert_eq!(
        refused.code(),
        Code::PermissionDenied,
        "another district's RDSA"
    );
    let dsa = reports
        .of(f.agency("dsa-pirdop"), &[Role::Supervisor], "SFO")
        .await
        .expect_err("refused");
    assert_eq!(dsa.code(), Code::PermissionDenied);
    let bad = reports
        .of(NATIONAL_AUTHORITY, &[Role::Supervisor], "vratsa")
        .await
        .expect_err("refused");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("region_code"), "{bad:?}");
    // A period in years no referral can have (and the database cannot hold) is refused, naming the field.
    let ancient = placement_proto::prost_types::Timestamp {
        seconds: -200_000_000_000,
        nanos: 0,
    };
    let far = reports
        .client
        .clone()
        .get_district_report(as_agency_with(
            NATIONAL_AUTHORITY,
            &[Role::Supervisor],
            GetDistrictReportRequest {
                region_code: "VRC".into(),
                period_start: Some(ancient),
                period_end: Some(placement_proto::prost_types::Timestamp {
                    seconds: -200_000_000_000 + 86_400,
                    nanos: 0,
                }),
            },
        ))
        .await
        .expect_err("refused");
    assert_eq!(far.code(), Code::InvalidArgument, "{far:?}");
    assert!(far.message().starts_with("period_start"), "{far:?}");
}

/// A new reports deployment on an exchange that has run: its model empty, a step taken while it was away
/// (its event waiting in the queue). It builds the model from `ListReferralChanges` with its own token
/// (client credentials at a real OpenID provider) and the queued event changes nothing twice: the figures
/// are what the referrals did. An operator's rebuild changes nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_figures_are_built_again_from_the_referrals_service() {
    let (_provider, options) =
        with_reports_credential(placement_e2e::StackOptions::default()).await;
    let mut f = Fixture::with(options).await;
    let reports = Reports::of_stack(&f);
    let ids = send_referrals(&f, 3).await;
    let live = figures_become(&reports, expected_now(&f, &ids).await).await;

    f.stack.kill(services::REPORTS.name);
    let mut db = f.stack.db().await;
    sqlx::query("TRUNCATE reports.referrals, reports.steps, reports.agencies")
        .execute(&mut db)
        .await
        .expect("empty the model");
    f.acknowledge(&ids[2], &["foster-vratsa"]).await;
    f.stack.restart(services::REPORTS.name);
    let expected = expected_now(&f, &ids).await;
    assert_eq!(
        expected.acknowledged,
        live.as_receiver.as_ref().map_or(0, |s| s.acknowledged) + 1
    );
    let rebuilt = figures_become(&reports, expected.clone()).await;
    assert_eq!(rebuilt.stalled_now, live.stalled_now);
    // The districts of RDSAs were built again too: Vratsa's RDSA sees its district.
    let rdsa = reports
        .of(f.agency("rdsa-vratsa"), &[Role::Supervisor], "VRC")
        .await;
    assert_eq!(
        normalised(rdsa.expect("the RDSA's report").as_receiver.as_ref()),
        expected
    );

    let rebuild = |roles: &'static [Role]| {
        let mut client = reports.client.clone();
        async move {
            client
                .rebuild_read_model(as_agency_with(
                    NATIONAL_AUTHORITY,
                    roles,
                    placement_proto::v1::RebuildReadModelRequest {},
                ))
                .await
        }
    };
    let refused = rebuild(&[Role::Integration]).await.expect_err("refused");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let done = rebuild(&[Role::Operator])
        .await
        .expect("rebuild")
        .into_inner();
    assert_eq!(done.referrals_read, 3);
    let again = reports
        .of(NATIONAL_AUTHORITY, &[Role::Supervisor], "VRC")
        .await
        .expect("report");
    assert_eq!(normalised(again.as_receiver.as_ref()), expected);
}

/// `options` with the reports' own credential for their rebuild: a client of a real OpenID provider
/// (kept running while the stack is) with the national authority's `integration` role.
pub(crate) async fn with_reports_credential(
    mut options: placement_e2e::StackOptions,
) -> (
    placement_e2e::oidc::OpenIdProvider,
    placement_e2e::StackOptions,
) {
    let provider = placement_e2e::oidc::OpenIdProvider::start(serde_json::json!({
        "clients": [{
            "client_id": "placement-reports",
            "client_secret": "reports-secret",
            "agency_id": NATIONAL_AUTHORITY.to_string(),
            "roles": ["integration"]
        }]
    }))
    .await;
    options.identity_provider = Some((
        provider.discovery.jwks_uri.clone(),
        provider.discovery.issuer.clone(),
    ));
    let env = |k: &str, v: &str| (k.to_string(), v.to_string());
    options.env.extend([
        env(
            "PLACEMENT_REPORTS_TOKEN_URL",
            &provider.discovery.token_endpoint,
        ),
        env("PLACEMENT_REPORTS_CLIENT_ID", "placement-reports"),
        env("PLACEMENT_REPORTS_CLIENT_SECRET", "reports-secret"),
    ]);
    (provider, options)
}

/// The referrals as the referrals service has them now (as their sender, Pirdop, sees them).
async fn referrals_now(f: &Fixture, ids: &[String]) -> Vec<Referral> {
    let mut referrals = Vec::new();
    for id in ids {
        referrals.push(f.referral(f.agency("dsa-pirdop"), id).await);
    }
    referrals
}

/// The side's figures computed from the referrals as the referrals service has them now.
async fn expected_now(f: &Fixture, ids: &[String]) -> DistrictSide {
    expected_side(&referrals_now(f, ids).await)
}

/// What Pirdop sent, as Pirdop sees it: the same side's figures and its two stalled referrals; its
/// district's RDSA sees them too, another DSA and another district's RDSA do not.
async fn a_dsas_own_figures(
    f: &Fixture,
    reports: &Reports,
    expected: &DistrictSide,
    stalled: &[String],
) {
    let pirdop = f.agency("dsa-pirdop");
    let ask = |agency: uuid::Uuid| {
        let mut client = reports.client.clone();
        let asked = GetAgencyReportRequest {
            agency_id: pirdop.to_string(),
            period_start: Some(timestamp(reports.period.0)),
            period_end: Some(timestamp(reports.period.1)),
        };
        async move {
            client
                .get_agency_report(as_agency_with(agency, &[Role::Supervisor], asked))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let own = ask(pirdop).await.expect("a DSA's own figures");
    assert_eq!(normalised(own.as_sender.as_ref()), *expected);
    let ids: Vec<&str> = own
        .stalled_now
        .iter()
        .map(|s| s.referral_id.as_str())
        .collect();
    assert_eq!(ids, stalled);
    let rdsa = ask(f.agency("rdsa-sofia-province"))
        .await
        .expect("its RDSA");
    assert_eq!(rdsa.as_sender, own.as_sender);
    for other in ["dsa-mezdra", "rdsa-vratsa"] {
        let refused = ask(f.agency(other)).await.expect_err(other);
        assert_eq!(refused.code(), Code::PermissionDenied, "{other}");
    }
}

/// Vratsa's places by type, and beside each stalled referral the services that could take its two
/// children now, as the test finds them itself through the directory's own search.
async fn places_as_the_directory_has_them(f: &Fixture, reports: &Reports) {
    let asked = f.demo.service("ftpc-vratsa").to_string();
    let in_vratsa = search(
        f,
        SearchServicesRequest {
            region_code: "VRC".into(),
            page: Some(PageRequest {
                page_size: 500,
                page_token: String::new(),
            }),
            ..Default::default()
        },
    )
    .await;
    let expected_places = places_by_type(&in_vratsa);
    let free = free_elsewhere(f, &in_vratsa, &asked).await;
    eventually("the places as the directory has them", WAIT, || async {
        let r = reports
            .of(NATIONAL_AUTHORITY, &[Role::Supervisor], "VRC")
            .await
            .ok()?;
        let by_type = r.places == expected_places;
        let beside = (r.stalled_now.iter()).all(|s| s.free_elsewhere == free);
        (by_type && beside && !r.stalled_now.is_empty()).then_some(())
    })
    .await
    .unwrap_or_else(|_| panic!("expected places {expected_places:?} and free elsewhere {free:?}"));
}

/// The directory's services that `request` finds, as the national authority's supervisor searches.
async fn search(f: &Fixture, request: SearchServicesRequest) -> Vec<SocialService> {
    f.clients
        .directory
        .clone()
        .search_services(as_agency_with(
            NATIONAL_AUTHORITY,
            &[Role::Supervisor],
            request,
        ))
        .await
        .expect("SearchServices")
        .into_inner()
        .services
}

/// The places of `services`, added up by service type, in type order.
fn places_by_type(services: &[SocialService]) -> Vec<PlacesByType> {
    let mut expected_places: Vec<PlacesByType> = Vec::new();
    for s in services {
        let i = match expected_places
            .iter()
            .position(|p| p.service_type == s.r#type)
        {
            Some(i) => i,
            None => {
                expected_places.push(PlacesByType {
                    service_type: s.r#type,
                    ..Default::default()
                });
                expected_places.len() - 1
            }
        };
        let p = &mut expected_places[i];
        p.services += 1;
        p.capacity += s.capacity;
        p.free_places += s.free_places;
        p.held_places += s.held_places;
        p.occupied_places += s.occupied_places;
    }
    expected_places.sort_by_key(|p| p.service_type);
    expected_places
}

/// The three services of the asked one's type, other than it, with the most places free (two at least)
/// for the twins' ages; the demo has one with places whose ages do not fit.
async fn free_elsewhere(f: &Fixture, in_vratsa: &[SocialService], asked: &str) -> Vec<FreePlaces> {
    let asked_type = (in_vratsa.iter())
        .find(|s| s.id == asked)
        .expect("the Vratsa centre")
        .r#type;
    let with_places: Vec<_> = search(
        f,
        SearchServicesRequest {
            service_type: asked_type,
            min_free_places: 2,
            page: Some(PageRequest {
                page_size: 500,
                page_token: String::new(),
            }),
            ..Default::default()
        },
    )
    .await
    .into_iter()
    .filter(|s| s.id != asked)
    .collect();
    // The twins are 4 or 5: a service fits if it takes a child of 5 and one of 4.
    let fits = |s: &SocialService| s.min_age <= 5 && s.max_age >= 4;
    assert!(
        with_places.iter().any(|s| !fits(s)),
        "the demo has a centre with places whose ages do not fit the twins"
    );
    let mut free: Vec<FreePlaces> = (with_places.into_iter())
        .filter(fits)
        .map(|s| FreePlaces {
            service_id: s.id,
            region_code: s.region_code,
            service_type: s.r#type,
            free_places: s.free_places,
        })
        .collect();
    free.sort_by(|a, b| (b.free_places, &a.service_id).cmp(&(a.free_places, &b.service_id)));
    free.truncate(3);
    assert!(
        !free.is_empty(),
        "the demo has other centres with two places free"
    );
    free
}

async fn figures_become(reports: &Reports, expected: DistrictSide) -> DistrictReport {
    eventually("the receiving district's figures", WAIT, || async {
        let r = reports
            .of(NATIONAL_AUTHORITY, &[Role::Supervisor], "VRC")
            .await
            .ok()?;
        (normalised(r.as_receiver.as_ref()) == expected).then_some(r)
    })
    .await
    .unwrap_or_else(|_| panic!("the report never showed {expected:?}"))
}

/// The same report as files: the flows as CSV line for line, and every table in one XLSX read back with
/// calamine (a reader nobody here wrote).
async fn exports_hold_the_same_figures(reports: &Reports, shown: &DistrictReport) {
    the_flows_as_csv(reports).await;
    the_whole_report_as_xlsx(reports, shown).await;
    bad_exports_name_the_field(reports).await;
}

async fn export(
    reports: &Reports,
    format: ReportFormat,
    table: ReportTable,
    region: &str,
) -> Result<ReportFile, tonic::Status> {
    let asked = ExportDistrictReportRequest {
        report: Some(GetDistrictReportRequest {
            region_code: region.into(),
            period_start: Some(timestamp(reports.period.0)),
            period_end: Some(timestamp(reports.period.1)),
        }),
        format: format as i32,
        table: table as i32,
    };
    reports
        .client
        .clone()
        .export_district_report(as_agency_with(
            NATIONAL_AUTHORITY,
            &[Role::Supervisor],
            asked,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn the_flows_as_csv(reports: &Reports) {
    let csv = export(reports, ReportFormat::Csv, ReportTable::Flows, "VRC")
        .await
        .expect("CSV");
    assert_eq!(csv.content_type, "text/csv; charset=utf-8");
    assert!(csv.file_name.starts_with("placement-VRC-") && csv.file_name.ends_with("-flows.csv"));
    let text = String::from_utf8(csv.content).expect("UTF-8");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "sender_region,receiving_region,submitted,accepted,declined,acceptance_rate",
            "SFO,VRC,4,1,1,0.5"
        ]
    );
}

/// Every table as a sheet of one workbook, holding the figures shown.
async fn the_whole_report_as_xlsx(reports: &Reports, shown: &DistrictReport) {
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    let xlsx = export(reports, ReportFormat::Xlsx, ReportTable::Unspecified, "VRC")
        .await
        .expect("XLSX");
    let mut book: Xlsx<_> =
        open_workbook_from_rs(std::io::Cursor::new(xlsx.content)).expect("an XLSX file");
    assert_eq!(
        book.sheet_names(),
        [
            "figures", "reasons", "flows", "services", "stalled", "places"
        ]
    );
    let places = book.worksheet_range("places").expect("places sheet");
    let free_in_vratsa: f64 = (places.rows().skip(1))
        .map(|row| match row.get(3) {
            Some(Data::Float(n)) => *n,
            other => panic!("free places {other:?}"),
        })
        .sum();
    let shown_free: u32 = shown.places.iter().map(|p| p.free_places).sum();
    assert_eq!(free_in_vratsa, f64::from(shown_free));
    let figures = book.worksheet_range("figures").expect("figures sheet");
    let received = |name: &str| {
        figures
            .rows()
            .find(|r| r[0] == Data::String(name.into()))
            .map(|r| r[2].clone())
            .unwrap_or_else(|| panic!("no row {name}"))
    };
    let side = shown.as_receiver.as_ref().expect("receiver");
    assert_eq!(received("placed"), Data::Float(f64::from(side.placed)));
    assert_eq!(
        received("submitted"),
        Data::Float(f64::from(side.submitted))
    );
    let stalled = book.worksheet_range("stalled").expect("stalled sheet");
    let ids: Vec<String> = stalled.rows().skip(1).map(|r| r[0].to_string()).collect();
    let shown_ids: Vec<String> = shown
        .stalled_now
        .iter()
        .map(|s| s.referral_id.clone())
        .collect();
    assert_eq!(ids, shown_ids);
}

/// An export without a format or a table, or of a region code not upper-case, is refused naming the field.
async fn bad_exports_name_the_field(reports: &Reports) {
    for (format, table, region, field) in [
        (
            ReportFormat::Unspecified,
            ReportTable::Flows,
            "VRC",
            "format",
        ),
        (ReportFormat::Csv, ReportTable::Unspecified, "VRC", "table"),
        (
            ReportFormat::Csv,
            ReportTable::Flows,
            "vrc",
            "report.region_code",
        ),
    ] {
        let refused = export(reports, format, table, region)
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().starts_with(field), "{refused:?}");
    }
}
