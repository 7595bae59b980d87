//! `placement-cli report`: one district's figures from the reports service, as text for an operator or a
//! meeting's notes (ids, counts and durations only).

use chrono::{Duration, Utc};
use placement_platform::{
    caller::Role,
    services,
    time::{from_timestamp, timestamp},
};
use placement_proto::v1::{
    DeclineReason, DistrictReport, DistrictSide, DurationFigures, GetDistrictReportRequest,
    ReferralStatus, WithdrawReason, report_service_client::ReportServiceClient,
};

use crate::{
    clients::{Endpoints, as_agency_with, channel},
    demo::NATIONAL_AUTHORITY,
};

/// The district's report for the last `days` days, asked as the national authority.
pub async fn district(
    endpoints: &Endpoints,
    region: &str,
    days: u32,
) -> Result<DistrictReport, tonic::Status> {
    let end = Utc::now();
    let asked = GetDistrictReportRequest {
        region_code: region.to_string(),
        period_start: Some(timestamp(end - Duration::days(i64::from(days)))),
        period_end: Some(timestamp(end)),
    };
    let channel = channel(endpoints.url(services::REPORTS))
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    ReportServiceClient::new(channel)
        .get_district_report(as_agency_with(
            NATIONAL_AUTHORITY,
            &[Role::Supervisor],
            asked,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Sends the district's RDSA its digest now (as the national authority); returns the digest's id.
pub async fn send_digest(endpoints: &Endpoints, region: &str) -> Result<String, tonic::Status> {
    let channel = channel(endpoints.url(services::REPORTS))
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    ReportServiceClient::new(channel)
        .send_district_digest(as_agency_with(
            NATIONAL_AUTHORITY,
            &[Role::Supervisor],
            placement_proto::v1::SendDistrictDigestRequest {
                region_code: region.to_string(),
            },
        ))
        .await
        .map(|r| r.into_inner().digest_id)
}

type Count = fn(&DistrictSide) -> u32;
type Durations = fn(&DistrictSide) -> Option<&DurationFigures>;

/// The report as text: the two sides next to each other, reasons and flows, then the stalled referrals.
pub fn text(r: &DistrictReport, days: u32) -> String {
    let (s, v) = (
        r.as_sender.clone().unwrap_or_default(),
        r.as_receiver.clone().unwrap_or_default(),
    );
    let mut out = format!(
        "District {}, the last {days} days (as of {})\n{:<34}{:>14}{:>14}\n",
        r.region_code,
        time(r.as_of.as_ref()),
        "",
        "as sender",
        "as receiver"
    );
    sides(&mut out, &s, &v);
    reasons_and_flows(&mut out, r, &s, &v);
    out += &format!(
        "Stalled now (past the acknowledgement deadline): {}\n",
        r.stalled_now.len()
    );
    for x in &r.stalled_now {
        out += &format!(
            "  {} {} -> {}  deadline {}  not answered: {}\n",
            x.referral_id,
            x.sender_region_code,
            x.receiving_region_code,
            time(x.acknowledgement_deadline.as_ref()),
            x.not_answered_agency_ids.join(", ")
        );
    }
    out
}

fn time(t: Option<&placement_proto::prost_types::Timestamp>) -> String {
    t.and_then(from_timestamp)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// The rows of both sides: statuses now, steps in the period, durations.
fn sides(out: &mut String, s: &DistrictSide, v: &DistrictSide) {
    let mut row =
        |name: &str, a: String, b: String| *out += &format!("  {name:<32}{a:>14}{b:>14}\n");
    for status in [
        ReferralStatus::Submitted,
        ReferralStatus::Acknowledged,
        ReferralStatus::Accepted,
        ReferralStatus::Declined,
        ReferralStatus::Withdrawn,
        ReferralStatus::Placed,
    ] {
        let name = status.as_str_name().trim_start_matches("REFERRAL_STATUS_");
        row(
            &format!("now {}", name.to_lowercase()),
            now(s, status),
            now(v, status),
        );
    }
    let counts: [(&str, Count); 8] = [
        ("submitted in the period", |x| x.submitted),
        ("fully acknowledged", |x| x.acknowledged),
        ("accepted", |x| x.accepted),
        ("declined", |x| x.declined),
        ("withdrawn", |x| x.withdrawn),
        ("placed", |x| x.placed),
        ("escalated", |x| x.escalated),
        ("not answered by anyone", |x| x.unanswered),
    ];
    for (name, of) in counts {
        row(name, of(s).to_string(), of(v).to_string());
    }
    let times: [(&str, Durations); 6] = [
        ("first response (median/p90)", |x| {
            x.time_to_first_response.as_ref()
        }),
        ("all acknowledgements", |x| {
            x.time_to_all_acknowledgements.as_ref()
        }),
        ("decision", |x| x.time_to_decision.as_ref()),
        ("placement", |x| x.time_to_placement.as_ref()),
        ("first response, working time", |x| {
            x.working_time_to_first_response.as_ref()
        }),
        ("decision, working time", |x| {
            x.working_time_to_decision.as_ref()
        }),
    ];
    for (name, of) in times {
        row(name, spans(of(s)), spans(of(v)));
    }
}

fn reasons_and_flows(out: &mut String, r: &DistrictReport, s: &DistrictSide, v: &DistrictSide) {
    for (name, side) in [("sent", s), ("received", v)] {
        for d in &side.decline_reasons {
            let reason = DeclineReason::try_from(d.reason).unwrap_or_default();
            *out += &format!(
                "  {name}, declined: {} x{}\n",
                reason.as_str_name(),
                d.count
            );
        }
        for w in &side.withdraw_reasons {
            let reason = WithdrawReason::try_from(w.reason).unwrap_or_default();
            *out += &format!(
                "  {name}, withdrawn: {} x{}\n",
                reason.as_str_name(),
                w.count
            );
        }
    }
    *out += "Flows (sent in the period: accepted / declined, acceptance rate):\n";
    for f in &r.flows {
        *out += &format!(
            "  {} -> {}  {} sent: {} / {}  {:.0}%\n",
            f.sender_region_code,
            f.receiving_region_code,
            f.submitted,
            f.accepted,
            f.declined,
            100.0 * f.acceptance_rate
        );
    }
}

fn now(side: &DistrictSide, status: ReferralStatus) -> String {
    (side.by_status_now.iter())
        .find(|c| c.status == status as i32)
        .map_or(0, |c| c.count)
        .to_string()
}

fn spans(f: Option<&DurationFigures>) -> String {
    match f {
        Some(f) if f.count > 0 => format!("{}/{}", span(f.median.as_ref()), span(f.p90.as_ref())),
        _ => "-".into(),
    }
}

/// A duration as people read it: "40 ms", "2.4 s", "12 min", "3 h 5 min", "2 d 4 h".
fn span(d: Option<&placement_proto::prost_types::Duration>) -> String {
    let Some(d) = d else { return "-".into() };
    let s = d.seconds;
    match s {
        ..1 => format!("{} ms", d.nanos / 1_000_000),
        1..60 => format!("{s}.{} s", d.nanos / 100_000_000),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_write_them() {
        let d = |seconds, nanos| Some(placement_proto::prost_types::Duration { seconds, nanos });
        assert_eq!(span(d(0, 40_000_000).as_ref()), "40 ms");
        assert_eq!(span(d(2, 400_000_000).as_ref()), "2.4 s");
        assert_eq!(span(d(720, 0).as_ref()), "12 min");
        assert_eq!(span(d(3 * 3600 + 300, 0).as_ref()), "3 h 5 min");
        assert_eq!(span(d(2 * 86400 + 4 * 3600, 0).as_ref()), "2 d 4 h");
        assert_eq!(span(None), "-");
    }
}
