//! The figures counted from the read model. The district report: one district's figures as sender and as
//! receiver over a period, its flows, its services' answers, its places and its stalled referrals now (the
//! gRPC layer shows it, the export writes it, the digest sends it); the agency report, which borrows its
//! sides and its stalled referrals; and the country's totals by district.

pub mod model;
mod searches;
pub mod store;
/// The Bulgarian working calendar lives in the pure model, which dates the referrals' step deadlines by it.
pub use placement_model::working;

use chrono::{DateTime, Utc};
use placement_platform::{error::ServiceResult, time::timestamp};
use placement_proto::v1::{
    AgencyReport, DistrictFlow, DistrictReport, DistrictSide, DistrictTotals, FreePlaces,
    NationalReport, PlacesByType, ReasonCount, ReferralAction, ServiceAcceptance, StalledReferral,
    StatusCount, WeekFigures,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::steps::model::Side;
use model::{StepCounts, acceptance_rate, count, durations, shown};
use store::{StalledOf, Whose};

/// Stalled referrals listed at most.
const STALLED_SHOWN: i64 = 200;

pub async fn district_report(
    pool: &PgPool,
    region: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> ServiceResult<DistrictReport> {
    let as_of = Utc::now();
    // The parts each on its own connection at once: a year of a district is tens of thousands of
    // referrals on each side, and the parts do not wait for each other.
    let sides = |side| async move {
        side_of(
            &mut *pool.acquire().await?,
            Whose::District(side, region),
            period,
        )
        .await
    };
    let now = async {
        let mut conn = pool.acquire().await?;
        let stalled = stalled_with_free_places(&mut conn, StalledOf::District(region)).await?;
        let places = store::places(&mut conn, region).await?;
        ServiceResult::Ok((stalled, places.into_iter().map(places_by_type).collect()))
    };
    // The weeks' referrals are among the period's when it spans them; else they are read.
    let weeks = async {
        if period.1 - period.0 >= week() * WEEKS {
            return Ok(None);
        }
        let whose = Whose::District(Side::Receiver, region);
        let weeks = (period.1 - week() * WEEKS, period.1);
        ServiceResult::Ok(Some(
            store::milestones(&mut *pool.acquire().await?, whose, weeks).await?,
        ))
    };
    let ((as_sender, sent), (as_receiver, received), (stalled_now, places), weeks) =
        tokio::try_join!(sides(Side::Sender), sides(Side::Receiver), now, weeks)?;
    Ok(DistrictReport {
        region_code: region.to_string(),
        as_sender: Some(as_sender),
        as_receiver: Some(as_receiver),
        stalled_now,
        as_of: Some(timestamp(as_of)),
        flows: flows(region, &sent, &received),
        services: acceptance(&received),
        places,
        weeks: weeks_before(weeks.as_deref().unwrap_or(&received), period.1),
    })
}

fn places_by_type(p: store::PlacesOfType) -> PlacesByType {
    PlacesByType {
        service_type: p.service_type as i32,
        services: count(p.services),
        capacity: count(p.capacity),
        free_places: count(p.free_places),
        held_places: count(p.held_places),
        occupied_places: count(p.occupied_places),
    }
}

/// Every (sender district, receiving district) pair with the district on a side, of the referrals
/// submitted in the period: those it sent, and those it received from elsewhere.
fn flows(
    region: &str,
    sent: &[store::Milestones],
    received: &[store::Milestones],
) -> Vec<DistrictFlow> {
    fn pair(m: &store::Milestones) -> ((&str, &str), bool, bool) {
        let key = (
            m.sender_region_code.as_str(),
            m.receiving_region_code.as_str(),
        );
        (key, m.accepted, m.declined)
    }
    let from_elsewhere = received.iter().filter(|m| m.sender_region_code != region);
    (model::outcomes(sent.iter().chain(from_elsewhere).map(pair)).into_iter())
        .map(|o| DistrictFlow {
            acceptance_rate: acceptance_rate(o.accepted, o.declined),
            sender_region_code: o.key.0.to_string(),
            receiving_region_code: o.key.1.to_string(),
            submitted: count(o.submitted),
            accepted: count(o.accepted),
            declined: count(o.declined),
        })
        .collect()
}

/// The district's services that were asked in the period, what they answered, and why they declined.
fn acceptance(received: &[store::Milestones]) -> Vec<ServiceAcceptance> {
    let each = received
        .iter()
        .map(|m| (m.service_id, m.accepted, m.declined));
    let mut reasons = decline_reasons(received);
    (model::outcomes(each).into_iter())
        .map(|o| ServiceAcceptance {
            acceptance_rate: acceptance_rate(o.accepted, o.declined),
            decline_reasons: reasons.remove(&o.key).unwrap_or_default(),
            service_id: o.key.to_string(),
            submitted: count(o.submitted),
            accepted: count(o.accepted),
            declined: count(o.declined),
        })
        .collect()
}

/// The declines among `received` by service, each service's by reason in the reasons' order: counted in
/// one pass, as a district has dozens of services and a year tens of thousands of referrals.
fn decline_reasons(
    received: &[store::Milestones],
) -> std::collections::HashMap<Uuid, Vec<ReasonCount>> {
    let mut by_reason = std::collections::BTreeMap::<(Uuid, i32), i64>::new();
    for m in received.iter().filter(|m| m.declined) {
        *by_reason
            .entry((m.service_id, m.end_reason.unwrap_or_default()))
            .or_default() += 1;
    }
    let mut out = std::collections::HashMap::<Uuid, Vec<ReasonCount>>::new();
    for ((service, reason), n) in by_reason {
        out.entry(service).or_default().push(ReasonCount {
            reason,
            count: count(n),
        });
    }
    out
}

/// Weeks shown before a period's end.
const WEEKS: i32 = 8;

fn week() -> chrono::Duration {
    chrono::Duration::weeks(1)
}

/// The receiving side's submissions and first responses in each of the [`WEEKS`] weeks before `end`,
/// from the received referrals' milestones (those of the weeks at least).
fn weeks_before(received: &[store::Milestones], end: DateTime<Utc>) -> Vec<WeekFigures> {
    let start = end - week() * WEEKS;
    let figures = |from: DateTime<Utc>| {
        let of_week: Vec<&store::Milestones> = (received.iter())
            .filter(|m| m.submitted_at >= from && m.submitted_at < from + week())
            .collect();
        let first = |working| {
            let each = (of_week.iter()).map(|m| {
                m.first_answer_at
                    .map(|at| span(m.submitted_at, at, working))
            });
            Some(durations(each))
        };
        WeekFigures {
            week_start: Some(timestamp(from)),
            submitted: u32::try_from(of_week.len()).unwrap_or(u32::MAX),
            time_to_first_response: first(false),
            working_time_to_first_response: first(true),
        }
    };
    (0..WEEKS).map(|i| figures(start + week() * i)).collect()
}

/// The district's stalled referrals, each with the services elsewhere that could take it now.
async fn stalled_with_free_places(
    conn: &mut PgConnection,
    of: StalledOf<'_>,
) -> ServiceResult<Vec<StalledReferral>> {
    let rows = store::stalled(conn, of, STALLED_SHOWN).await?;
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
    let mut free: std::collections::HashMap<uuid::Uuid, Vec<FreePlaces>> = Default::default();
    for f in store::free_elsewhere(conn, &ids).await? {
        free.entry(f.referral_id).or_default().push(FreePlaces {
            service_id: f.service_id.to_string(),
            region_code: f.region_code,
            service_type: f.service_type as i32,
            free_places: u32::try_from(f.free_places).unwrap_or(0),
        });
    }
    let out = (rows.into_iter())
        .map(|r| {
            let free_elsewhere = free.remove(&r.id).unwrap_or_default();
            StalledReferral {
                free_elsewhere,
                ..stalled(r)
            }
        })
        .collect();
    Ok(out)
}

/// One side's figures — statuses now, steps in the period, durations of the referrals submitted in it —
/// with those referrals' milestones.
async fn side_of(
    conn: &mut PgConnection,
    whose: Whose<'_>,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> ServiceResult<(DistrictSide, Vec<store::Milestones>)> {
    let by_status_now = store::by_status(conn, whose)
        .await?
        .into_iter()
        .map(|(status, n)| StatusCount {
            status: status as i32,
            count: count(n),
        })
        .collect();
    let steps = StepCounts(store::steps_in(conn, whose, period).await?);
    let of = |action| steps.of(action);
    let milestones = store::milestones(conn, whose, period).await?;
    let spans = |working: bool, of: Reached| {
        let each = milestones
            .iter()
            .map(|m| of(m).map(|at| span(m.submitted_at, at, working)));
        Some(durations(each))
    };
    let (first, all, decided, placed): (Reached, Reached, Reached, Reached) = (
        |m| m.first_answer_at,
        |m| m.all_acks_at,
        |m| m.decided_at,
        |m| m.placed_at,
    );
    let side = DistrictSide {
        by_status_now,
        submitted: of(ReferralAction::Submitted),
        acknowledged: of(ReferralAction::Acknowledged),
        accepted: of(ReferralAction::Accepted),
        declined: of(ReferralAction::Declined),
        withdrawn: of(ReferralAction::Withdrawn),
        placed: of(ReferralAction::Placed),
        escalated: of(ReferralAction::Escalated),
        time_to_first_response: spans(false, first),
        time_to_all_acknowledgements: spans(false, all),
        time_to_decision: spans(false, decided),
        time_to_placement: spans(false, placed),
        working_time_to_first_response: spans(true, first),
        working_time_to_all_acknowledgements: spans(true, all),
        working_time_to_decision: spans(true, decided),
        working_time_to_placement: spans(true, placed),
        unanswered: u32::try_from(
            milestones
                .iter()
                .filter(|m| m.first_answer_at.is_none())
                .count(),
        )
        .unwrap_or(u32::MAX),
        decline_reasons: steps.reasons(ReferralAction::Declined),
        withdraw_reasons: steps.reasons(ReferralAction::Withdrawn),
        placed_elsewhere: steps.placed_elsewhere(),
        ..searches::figures(&milestones)
    };
    Ok((side, milestones))
}

/// When a referral reached a milestone, if it has.
type Reached = fn(&store::Milestones) -> Option<DateTime<Utc>>;

/// Microseconds from `from` to `to`, in calendar or in working time.
fn span(from: DateTime<Utc>, to: DateTime<Utc>, working: bool) -> i64 {
    let d = if working {
        working::between(from, to)
    } else {
        to - from
    };
    d.num_microseconds().unwrap_or(i64::MAX)
}

fn stalled(s: store::Stalled) -> StalledReferral {
    let holders = model::holders(
        s.step,
        &model::Parties {
            sender: s.sender_agency_id,
            receiving: s.receiving_agency_id,
            foster_team: s.foster_team_agency_id,
            acknowledged_by: &s.acknowledged_by,
        },
    );
    StalledReferral {
        referral_id: s.id.to_string(),
        reference: s.reference,
        sender_region_code: s.sender_region_code,
        receiving_region_code: s.receiving_region_code,
        status: s.status as i32,
        submitted_at: s.submitted_at.map(timestamp),
        acknowledgement_deadline: s.ack_deadline.map(timestamp),
        not_answered_agency_ids: holders.iter().map(Uuid::to_string).collect(),
        step: s.step as i32,
        step_deadline: Some(timestamp(s.step_deadline)),
        waiting_reason: s.waiting_reason.map_or(0, |w| w as i32),
        free_elsewhere: Vec::new(),
    }
}

/// One agency's figures as a sender over a period, and its stalled referrals now.
pub async fn agency_report(
    conn: &mut PgConnection,
    agency: Uuid,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> ServiceResult<AgencyReport> {
    let as_of = Utc::now();
    Ok(AgencyReport {
        agency_id: agency.to_string(),
        as_sender: Some(side_of(conn, Whose::Sender(agency), period).await?.0),
        stalled_now: stalled_with_free_places(conn, StalledOf::Sender(agency)).await?,
        as_of: Some(timestamp(as_of)),
    })
}

/// The country's figures over a period, by receiving district; small counts suppressed when `published`.
pub async fn national_report(
    conn: &mut PgConnection,
    period: (DateTime<Utc>, DateTime<Utc>),
    published: bool,
) -> ServiceResult<NationalReport> {
    let rows = store::national(conn, period).await?;
    Ok(national_totals(&rows, published))
}

fn national_totals(rows: &[store::Totals], published: bool) -> NationalReport {
    let totals = |region: &str, t: [i64; 5]| DistrictTotals {
        region_code: region.to_string(),
        submitted: Some(shown(t[0], published)),
        accepted: Some(shown(t[1], published)),
        declined: Some(shown(t[2], published)),
        placed: Some(shown(t[3], published)),
        stalled_now: Some(shown(t[4], published)),
    };
    let of = |r: &store::Totals| [r.submitted, r.accepted, r.declined, r.placed, r.stalled_now];
    let country = rows.iter().map(of).fold([0i64; 5], |mut acc, t| {
        for (a, b) in acc.iter_mut().zip(t) {
            *a += b;
        }
        acc
    });
    NationalReport {
        districts: rows.iter().map(|r| totals(&r.region_code, of(r))).collect(),
        country: Some(totals("", country)),
        small_counts_suppressed: published,
        as_of: Some(timestamp(Utc::now())),
    }
}
