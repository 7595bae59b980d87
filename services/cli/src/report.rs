//! `placement-cli report`: one district's figures from the reports service, as text for an operator or a
//! meeting's notes (ids, counts and durations only).

use chrono::{Duration, Utc};
use placement_model::figures::{FIGURES, FigureValue, STATUSES_NOW, count_now, median_and_p90};
use placement_platform::{
    caller::Role,
    services,
    time::{from_timestamp, timestamp},
};
use placement_proto::v1::{
    DeclineReason, DistrictReport, DistrictSide, GetDistrictReportRequest, Language,
    WithdrawReason, report_service_client::ReportServiceClient,
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

/// The report as text: the two sides next to each other, reasons and flows, then the stalled referrals.
pub fn text(r: &DistrictReport, days: u32) -> String {
    let (s, v) = (
        r.as_sender.clone().unwrap_or_default(),
        r.as_receiver.clone().unwrap_or_default(),
    );
    let mut out = format!(
        "District {}, the last {days} days (as of {}); times as median / nine in ten within\n\
         {:<42}{:>22}{:>22}\n",
        r.region_code,
        time(r.as_of.as_ref()),
        "",
        "as sender",
        "as receiver"
    );
    sides(&mut out, &s, &v);
    reasons_and_flows(&mut out, r, &s, &v);
    out += &format!(
        "Stalled now (a step past its deadline): {}\n",
        r.stalled_now.len()
    );
    for x in &r.stalled_now {
        // The reference people say; the id for a referral the reports learnt before references.
        let named = if x.reference.is_empty() {
            &x.referral_id
        } else {
            &x.reference
        };
        let step = placement_proto::v1::ReferralStepName::try_from(x.step).map_or("", |s| {
            s.as_str_name().trim_start_matches("REFERRAL_STEP_NAME_")
        });
        let waiting = placement_proto::v1::WaitingReason::try_from(x.waiting_reason)
            .ok()
            .filter(|w| *w != placement_proto::v1::WaitingReason::Unspecified)
            .map_or(String::new(), |w| {
                format!(
                    "  waiting: {}",
                    w.as_str_name().trim_start_matches("WAITING_REASON_")
                )
            });
        out += &format!(
            "  {} {} -> {}  {} due {}  waiting for: {}{}\n",
            named,
            x.sender_region_code,
            x.receiving_region_code,
            step,
            time(x.step_deadline.as_ref()),
            x.not_answered_agency_ids.join(", "),
            waiting
        );
    }
    out
}

fn time(t: Option<&placement_proto::prost_types::Timestamp>) -> String {
    t.and_then(from_timestamp)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// The rows of both sides: statuses now, then every figure of the catalogue.
fn sides(out: &mut String, s: &DistrictSide, v: &DistrictSide) {
    let mut row =
        |name: &str, a: String, b: String| *out += &format!("  {name:<40}{a:>22}{b:>22}\n");
    for status in STATUSES_NOW {
        let name = status.as_str_name().trim_start_matches("REFERRAL_STATUS_");
        row(
            &format!("now {}", name.to_lowercase()),
            count_now(s, status).to_string(),
            count_now(v, status).to_string(),
        );
    }
    for figure in &FIGURES {
        row(
            figure.label(Language::En),
            shown(figure.value(s)),
            shown(figure.value(v)),
        );
    }
}

fn shown(value: FigureValue) -> String {
    match value {
        FigureValue::Count(n) => n.to_string(),
        FigureValue::Durations(f) => median_and_p90(f, Language::En).unwrap_or_else(|| "-".into()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::v1::DurationFigures;

    #[test]
    fn every_figure_has_its_row_on_both_sides() {
        let receiver = DistrictSide {
            unanswered: 5,
            working_time_to_placement: Some(DurationFigures {
                count: 2,
                median: Some(placement_proto::prost_types::Duration {
                    seconds: 5400,
                    nanos: 0,
                }),
                p90: Some(placement_proto::prost_types::Duration {
                    seconds: 2 * 86400 + 4 * 3600,
                    nanos: 0,
                }),
                slowest: None,
            }),
            ..Default::default()
        };
        let report = DistrictReport {
            region_code: "VRC".into(),
            as_receiver: Some(receiver),
            ..Default::default()
        };
        let text = text(&report, 30);
        for figure in &FIGURES {
            let label = figure.label(Language::En);
            assert_eq!(
                text.lines()
                    .filter(|l| l.trim_start().starts_with(label))
                    .count(),
                1,
                "{label} in\n{text}"
            );
        }
        let row = |label: &str| {
            (text.lines())
                .find(|l| l.trim_start().starts_with(label))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        };
        assert_eq!(
            row("Not answered by anyone").as_deref(),
            Some("Not answered by anyone 0 5")
        );
        assert_eq!(
            row("Working time to the placement").as_deref(),
            Some("Working time to the placement - 1 h 30 min / 2 d 4 h")
        );
    }
}
