//! The digest an RDSA gets before its coordination mechanism meets: the district's figures of the week
//! and the referrals stalled now, as the reports service sent them (`report.digest_ready`). Counts,
//! durations and referral references only, like the report itself. Pure, so the wording is tested alone.

use chrono::{DateTime, Utc};
use placement_model::figures::{FIGURES, FigureValue, duration_text};
use placement_platform::time::from_timestamp;
use placement_proto::v1::{
    DistrictDigestReady, DistrictReport, DistrictSide, DurationFigures, Language,
};

use placement_proto::prost_types::{Duration, Timestamp};

use crate::{
    referrals::model::short_ref,
    signature::{SIGNATURE_BG, SIGNATURE_EN},
};

/// Stalled referrals listed in the digest; the rest are counted and found on the figures page.
const STALLED_LISTED: usize = 20;

/// Subject and text of the digest e-mail, in the endpoint's language (Bulgarian unless it asks for
/// English).
pub fn digest_email(
    d: &DistrictDigestReady,
    language: Language,
    public_url: &str,
) -> (String, String) {
    let link = format!("{}/figures", public_url.trim_end_matches('/'));
    let (subject, text) = digest_text(d, language);
    let (open, signature) = if language == Language::En {
        ("Open the district's figures", SIGNATURE_EN)
    } else {
        ("Отворете показателите на областта", SIGNATURE_BG)
    };
    (
        subject,
        format!("{text}\n\n{open}: {link}\n\n{signature}\n"),
    )
}

/// Title and text of the digest: the in-app notice is the Bulgarian one.
pub fn digest_text(d: &DistrictDigestReady, language: Language) -> (String, String) {
    let w = if language == Language::En { &EN } else { &BG };
    let (no_report, no_side) = (DistrictReport::default(), DistrictSide::default());
    let report = d.report.as_ref().unwrap_or(&no_report);
    let stalled = &report.stalled_now;
    let region = &d.region_code;
    let subject = format!(
        "{} {region}: {} {}",
        w.subject,
        stalled.len(),
        w.stalled_count
    );
    let mut text = format!(
        "{} {region}, {} – {}.\n\n",
        w.district,
        day(d.period_start.as_ref()),
        day(d.period_end.as_ref())
    );
    let receiver = report.as_receiver.as_ref().unwrap_or(&no_side);
    let sender = report.as_sender.as_ref().unwrap_or(&no_side);
    for (heading, side) in [(w.as_receiver, receiver), (w.as_sender, sender)] {
        text += &side_lines(heading, side, language, w);
    }
    text += "\n";
    if stalled.is_empty() {
        text += w.none_stalled;
        return (subject, text);
    }
    text += w.stalled_heading;
    for s in stalled.iter().take(STALLED_LISTED) {
        text += &format!(
            "\n- {} ({} → {}), {} {}; {}: {}",
            short_ref(&s.referral_id),
            s.sender_region_code,
            s.receiving_region_code,
            w.deadline,
            when(s.acknowledgement_deadline.as_ref()),
            w.not_answered,
            s.not_answered_agency_ids.join(", ")
        );
        if !s.free_elsewhere.is_empty() {
            let free: Vec<String> = (s.free_elsewhere.iter())
                .map(|f| format!("{} {}", f.region_code, f.free_places))
                .collect();
            text += &format!("; {}: {}", w.free_elsewhere, free.join(", "));
        }
    }
    if stalled.len() > STALLED_LISTED {
        text += &format!("\n{} {}", stalled.len() - STALLED_LISTED, w.more);
    }
    (subject, text)
}

/// A side's heading, then every figure of the catalogue on a line of its own.
fn side_lines(heading: &str, s: &DistrictSide, language: Language, w: &Words) -> String {
    let mut lines = format!("{heading}:\n");
    for figure in &FIGURES {
        let value = match figure.value(s) {
            FigureValue::Count(n) => n.to_string(),
            FigureValue::Durations(f) => durations(f, language, w),
        };
        lines += &format!("  {}: {value}\n", figure.label(language));
    }
    lines
}

fn durations(f: &DurationFigures, language: Language, w: &Words) -> String {
    if f.count == 0 {
        return w.none_yet.to_string();
    }
    let span = |d: Option<&Duration>| duration_text(d.map_or(0, |d| d.seconds), language);
    format!(
        "{} {}, {} {}, {} {} ({} {})",
        w.median,
        span(f.median.as_ref()),
        w.p90,
        span(f.p90.as_ref()),
        w.slowest,
        span(f.slowest.as_ref()),
        f.count,
        w.referrals
    )
}

fn day(t: Option<&Timestamp>) -> String {
    local(t, "%d.%m.%Y")
}

fn when(t: Option<&Timestamp>) -> String {
    local(t, "%d.%m.%Y %H:%M")
}

/// Sofia time, as the meeting reads it.
fn local(t: Option<&Timestamp>, format: &str) -> String {
    t.and_then(from_timestamp)
        .map(|t: DateTime<Utc>| {
            t.with_timezone(&chrono_tz::Europe::Sofia)
                .format(format)
                .to_string()
        })
        .unwrap_or_default()
}

struct Words {
    subject: &'static str,
    stalled_count: &'static str,
    district: &'static str,
    as_receiver: &'static str,
    as_sender: &'static str,
    median: &'static str,
    p90: &'static str,
    slowest: &'static str,
    referrals: &'static str,
    none_yet: &'static str,
    none_stalled: &'static str,
    stalled_heading: &'static str,
    deadline: &'static str,
    not_answered: &'static str,
    free_elsewhere: &'static str,
    more: &'static str,
}

const BG: Words = Words {
    subject: "Обобщение преди заседанието на механизма, област",
    stalled_count: "блокирани направления",
    district: "Област",
    as_receiver: "Към услуги в областта",
    as_sender: "Изпратени от областта",
    median: "медиана",
    p90: "9 от 10 до",
    slowest: "най-бавно",
    referrals: "направления",
    none_yet: "още няма",
    none_stalled: "Няма блокирани направления.",
    stalled_heading: "Блокирани сега (срокът за потвърждение е изтекъл), най-старите първо:",
    deadline: "срок",
    not_answered: "не са отговорили",
    free_elsewhere: "свободни места другаде",
    more: "още — вижте показателите.",
};

const EN: Words = Words {
    subject: "Digest before the coordination mechanism meets, district",
    stalled_count: "stalled referrals",
    district: "District",
    as_receiver: "To services in the district",
    as_sender: "Sent from the district",
    median: "median",
    p90: "9 in 10 within",
    slowest: "slowest",
    referrals: "referrals",
    none_yet: "none yet",
    none_stalled: "No referral is stalled.",
    stalled_heading: "Stalled now (acknowledgement deadline passed), oldest first:",
    deadline: "deadline",
    not_answered: "not answered by",
    free_elsewhere: "free places elsewhere",
    more: "more: see the figures.",
};

#[cfg(test)]
mod tests {
    use super::*;
    use placement_platform::time::timestamp;
    use placement_proto::v1::{DistrictReport, StalledReferral};

    fn digest(stalled: usize) -> DistrictDigestReady {
        let at = |s: &str| Some(timestamp(s.parse::<DateTime<Utc>>().unwrap()));
        DistrictDigestReady {
            digest_id: "d".into(),
            region_code: "VRC".into(),
            rdsa_agency_id: "r".into(),
            period_start: at("2026-11-23T05:00:00Z"),
            period_end: at("2026-11-30T05:00:00Z"),
            report: Some(DistrictReport {
                as_receiver: Some(DistrictSide {
                    submitted: 7,
                    accepted: 3,
                    unanswered: 2,
                    time_to_first_response: Some(DurationFigures {
                        count: 6,
                        median: Some(Duration {
                            seconds: 5400,
                            nanos: 0,
                        }),
                        p90: Some(Duration {
                            seconds: 3 * 86400 + 7200,
                            nanos: 0,
                        }),
                        slowest: Some(Duration {
                            seconds: 600,
                            nanos: 0,
                        }),
                    }),
                    ..Default::default()
                }),
                stalled_now: (0..stalled)
                    .map(|i| StalledReferral {
                        referral_id: format!("0193c0de-0000-7000-8000-0000000000{i:02}"),
                        sender_region_code: "SFO".into(),
                        receiving_region_code: "VRC".into(),
                        acknowledgement_deadline: at("2026-11-28T09:30:00Z"),
                        not_answered_agency_ids: vec!["foster".into()],
                        free_elsewhere: vec![placement_proto::v1::FreePlaces {
                            region_code: "SFO".into(),
                            free_places: 4,
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_digest_says_the_weeks_figures_in_bulgarian() {
        let (subject, text) = digest_text(&digest(2), Language::Bg);
        assert_eq!(
            subject,
            format!("{} VRC: 2 блокирани направления", BG.subject)
        );
        assert!(
            text.starts_with("Област VRC, 23.11.2026 – 30.11.2026."),
            "{text}"
        );
        assert!(
            text.contains(
                "Към услуги в областта:\n  Изпратени през периода: 7\n  \
                 Потвърдени от всички: 0\n  Приети: 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  Време до първия отговор: медиана 1 ч 30 мин, 9 от 10 до 3 д 2 ч, \
                 най-бавно 10 мин (6 направления)\n"
            ),
            "{text}"
        );
        // Sofia time: 11:30 in winter.
        assert!(
            text.contains(
                "- 00000000 (SFO → VRC), срок 28.11.2026 11:30; не са отговорили: foster; \
                 свободни места другаде: SFO 4"
            ),
            "{text}"
        );
        assert!(text.contains("- 00000001 "), "{text}");
    }

    #[test]
    fn every_figure_is_told_for_both_sides_in_both_languages() {
        for language in [Language::Bg, Language::En] {
            let (_, text) = digest_text(&digest(0), language);
            for figure in &FIGURES {
                let line = format!("\n  {}: ", figure.label(language));
                assert_eq!(text.matches(&line).count(), 2, "{line} in {text}");
            }
        }
        let (_, text) = digest_text(&digest(0), Language::En);
        assert!(
            text.contains("\n  Working time to the first response: none yet\n"),
            "{text}"
        );
        assert!(text.contains("\n  Not answered by anyone: 2\n"), "{text}");
    }

    #[test]
    fn a_long_stalled_list_is_cut_and_counted() {
        let (_, text) = digest_text(&digest(STALLED_LISTED + 3), Language::En);
        assert_eq!(text.matches("\n- ").count(), STALLED_LISTED);
        assert!(text.ends_with("\n3 more: see the figures."), "{text}");
    }

    #[test]
    fn the_email_links_to_the_figures() {
        let (_, body) = digest_email(&digest(0), Language::Bg, "https://x.example/");
        assert!(body.contains("Няма блокирани направления."));
        assert!(body.contains("https://x.example/figures"));
    }
}
