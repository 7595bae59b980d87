//! How values are shown: times in Europe/Sofia, enumerations by their catalogue keys, deadlines counting
//! down.

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Sofia;
use placement_model::figures::duration_text;
use placement_platform::time::from_timestamp;
use placement_proto::v1::{ChildNeed, Date, Referral, WaitingReason};
use prost_types::Timestamp;

use crate::i18n::Lang;

/// The catalogue key of a proto enumeration value: `REFERRAL_STATUS_SUBMITTED` → `referral-status-submitted`.
pub fn key(proto_name: &str) -> String {
    proto_name.to_ascii_lowercase().replace('_', "-")
}

pub fn time(t: Option<&Timestamp>) -> String {
    t.and_then(from_timestamp)
        .map(|t| t.with_timezone(&Sofia).format("%d.%m.%Y %H:%M").to_string())
        .unwrap_or_default()
}

/// A date as people write it here: `02.12.2026`.
pub fn date(d: &Date) -> String {
    format!("{:02}.{:02}.{}", d.day, d.month, d.year)
}

/// A child's needs, named in `lang`, comma-separated.
pub fn needs(lang: Lang, needs: &[i32]) -> String {
    needs
        .iter()
        .filter_map(|n| ChildNeed::try_from(*n).ok())
        .map(|n| lang.t(&key(n.as_str_name())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How long until `deadline`, or how long it is overdue: "in 2 h 5 min", "overdue by 1 d 3 h".
pub fn countdown(lang: Lang, deadline: Option<&Timestamp>, now: DateTime<Utc>) -> (String, bool) {
    let Some(deadline) = deadline.and_then(from_timestamp) else {
        return (String::new(), false);
    };
    let overdue = deadline <= now;
    let left = if overdue {
        now - deadline
    } else {
        deadline - now
    };
    let span = duration_text(left.num_seconds(), lang.language());
    if overdue {
        (lang.t1("deadline-overdue", "span", span), true)
    } else {
        (lang.t1("deadline-in", "span", span), false)
    }
}

/// A duration of the figures as people say it: "under a minute", "12 min", "3 h 5 min", "2 d 4 h".
pub fn span_of(lang: Lang, d: Option<&prost_types::Duration>) -> String {
    d.map(|d| duration_text(d.seconds, lang.language()))
        .unwrap_or_default()
}

/// The first eight characters of an id: what people read aloud ("referral 3f2a91c0").
pub fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

/// How a case or referral is named to people: its reference («Н-ВРЦ-2026-00042»), the same on every page
/// and in every language; the short id only for a record without one (a stalled referral the reports
/// learnt before references).
pub fn named(reference: &str, id: &str) -> String {
    if reference.is_empty() {
        short(id)
    } else {
        reference.to_string()
    }
}

pub fn parse_date(s: &str) -> Option<placement_proto::v1::Date> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .map(placement_platform::time::date)
}

pub const WAITING_REASONS: [WaitingReason; 5] = [
    WaitingReason::AssessmentUnderWay,
    WaitingReason::DocumentsMissing,
    WaitingReason::PlaceFreeing,
    WaitingReason::AwaitingCourt,
    WaitingReason::Other,
];

/// Why the current step waits, as its holder said: the reason, its comment and the day it expects to go
/// on; empty when it was not postponed.
pub fn waiting_text(lang: Lang, r: &Referral) -> String {
    let reason = WaitingReason::try_from(r.waiting_reason).unwrap_or(WaitingReason::Unspecified);
    if reason == WaitingReason::Unspecified {
        return String::new();
    }
    let mut text = lang.t(&key(reason.as_str_name()));
    if !r.waiting_comment.is_empty() {
        text = format!("{text}: {}", r.waiting_comment);
    }
    if let Some(until) = &r.waiting_until {
        text = format!("{text} ({})", lang.t1("waiting-until", "span", date(until)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_named_by_its_reference() {
        let id = "01a23b88-cc04-7781-ba33-d459de1294cb";
        assert_eq!(named("Н-ВРЦ-2026-00042", id), "Н-ВРЦ-2026-00042");
        assert_eq!(named("", id), "01a23b88");
    }

    #[test]
    fn keys_follow_the_proto_names() {
        assert_eq!(
            key("REFERRAL_STATUS_SUBMITTED"),
            "referral-status-submitted"
        );
    }

    #[test]
    fn a_deadline_counts_down_then_is_overdue() {
        let now = Utc::now();
        let ts = |d: chrono::Duration| Some(placement_platform::time::timestamp(now + d));
        let (text, overdue) = countdown(Lang::En, ts(chrono::Duration::minutes(125)).as_ref(), now);
        assert_eq!((text.as_str(), overdue), ("in 2 h 5 min", false));
        let (text, overdue) = countdown(Lang::En, ts(-chrono::Duration::hours(27)).as_ref(), now);
        assert_eq!((text.as_str(), overdue), ("overdue by 1 d 3 h", true));
    }
}
