//! The digest an RDSA gets before its coordination mechanism meets, in words: the district's figures of
//! the week (their names from the figures' catalogue, `placement_model::figures`, as the figures page
//! shows them) and the referrals stalled now, each by its reference, with the districts, agencies and
//! services by name and the deadlines in Sofia time.

use fluent_templates::fluent_bundle::FluentValue;
use placement_model::figures::{FIGURES, FigureValue, duration_text};
use placement_proto::{
    prost_types::Duration,
    v1::{
        DistrictDigestReady, DistrictReport, DistrictSide, DurationFigures, FreePlaces, Language,
        StalledReferral,
    },
};

use crate::{Names, args, calendar, capitalised, district, lookup, referral_reference, step, text};

/// Stalled referrals listed in the digest; the rest are counted and found on the figures page.
pub const STALLED_LISTED: usize = 20;

/// The ids of the agencies and services the digest may name, for the caller to look up before wording.
pub fn digest_named_ids(d: &DistrictDigestReady) -> Vec<&str> {
    let stalled = d.report.iter().flat_map(|r| &r.stalled_now);
    stalled
        .flat_map(|s| {
            let services = s.free_elsewhere.iter().map(|f| f.service_id.as_str());
            (s.not_answered_agency_ids.iter().map(String::as_str)).chain(services)
        })
        .filter(|id| !id.is_empty())
        .collect()
}

/// The title and text of the digest in `language`.
pub fn district_digest(
    language: Language,
    d: &DistrictDigestReady,
    names: &impl Names,
) -> (String, String) {
    let (no_report, no_side) = (DistrictReport::default(), DistrictSide::default());
    let report = d.report.as_ref().unwrap_or(&no_report);
    let stalled = &report.stalled_now;
    let region = district(&d.region_code, language);
    let title = lookup(
        language,
        "digest-title",
        &args([
            ("district", region.clone().into()),
            ("stalled", stalled.len().into()),
        ]),
    );
    let period = lookup(
        language,
        "digest-period",
        &args([
            ("district", region.into()),
            (
                "start",
                calendar::day_of(d.period_start.as_ref(), language).into(),
            ),
            (
                "end",
                calendar::day_of(d.period_end.as_ref(), language).into(),
            ),
        ]),
    );
    let mut body = format!("{}\n\n", capitalised(&period));
    let receiver = report.as_receiver.as_ref().unwrap_or(&no_side);
    let sender = report.as_sender.as_ref().unwrap_or(&no_side);
    for (heading, side) in [
        ("digest-as-receiver", receiver),
        ("digest-as-sender", sender),
    ] {
        body += &side_lines(&text(language, heading), side, language);
    }
    body += "\n";
    body += &stalled_lines(language, stalled, names);
    (capitalised(&title), body)
}

/// The stalled referrals, oldest first, at most [`STALLED_LISTED`] of them, or that there are none.
fn stalled_lines(language: Language, stalled: &[StalledReferral], names: &impl Names) -> String {
    if stalled.is_empty() {
        return text(language, "digest-none-stalled");
    }
    let mut lines = text(language, "digest-stalled-heading");
    for s in stalled.iter().take(STALLED_LISTED) {
        lines += &format!("\n- {}", stalled_line(language, s, names));
    }
    if stalled.len() > STALLED_LISTED {
        let more = args([("count", (stalled.len() - STALLED_LISTED).into())]);
        lines += &format!("\n{}", lookup(language, "digest-more", &more));
    }
    lines
}

/// One stalled referral: its reference, where from and to, the step past its deadline and who holds it,
/// and the places free elsewhere.
fn stalled_line(language: Language, s: &StalledReferral, names: &impl Names) -> String {
    let deadline = s
        .step_deadline
        .as_ref()
        .or(s.acknowledgement_deadline.as_ref());
    let line = lookup(
        language,
        "digest-stalled",
        &args([
            (
                "reference",
                referral_reference(&s.reference, &s.referral_id)
                    .to_string()
                    .into(),
            ),
            ("from", district(&s.sender_region_code, language).into()),
            ("to", district(&s.receiving_region_code, language).into()),
            ("step", step(language, s.step).into()),
            ("deadline", calendar::moment(deadline, language).into()),
            (
                "holders",
                holders(language, &s.not_answered_agency_ids, names).into(),
            ),
        ]),
    );
    if s.free_elsewhere.is_empty() {
        return line;
    }
    let free: Vec<String> = (s.free_elsewhere.iter())
        .map(|f| free_place(language, f, names))
        .collect();
    let elsewhere = args([("places", free.join(", ").into())]);
    format!(
        "{line}; {}",
        lookup(language, "digest-free-elsewhere", &elsewhere)
    )
}

/// The agencies a step waits for, by name; those whose names are not known are counted. "none" when the
/// digest names none (the catalogue then says nothing of them).
fn holders(language: Language, ids: &[String], names: &impl Names) -> String {
    let named: Vec<String> = (ids.iter())
        .filter_map(|id| names.name(id, language))
        .collect();
    let unnamed = ids.len() - named.len();
    let mut all = named;
    if unnamed > 0 {
        let count = args([("count", unnamed.into())]);
        all.push(lookup(language, "digest-unnamed-agencies", &count));
    }
    if all.is_empty() {
        return "none".into();
    }
    all.join(", ")
}

/// A service with free places, by name (when known) and district.
fn free_place(language: Language, f: &FreePlaces, names: &impl Names) -> String {
    let service = names
        .name(&f.service_id, language)
        .unwrap_or_else(|| "none".into());
    lookup(
        language,
        "digest-free-place",
        &args([
            ("service", service.into()),
            ("district", district(&f.region_code, language).into()),
            ("free", f.free_places.into()),
        ]),
    )
}

/// A side's heading, then every figure of the catalogue on a line of its own.
fn side_lines(heading: &str, s: &DistrictSide, language: Language) -> String {
    let mut lines = format!("{heading}:\n");
    for figure in &FIGURES {
        let value = match figure.value(s) {
            FigureValue::Count(n) => n.to_string(),
            FigureValue::Durations(f) => durations(f, language),
        };
        lines += &format!("  {}: {value}\n", figure.label(language));
    }
    lines
}

fn durations(f: &DurationFigures, language: Language) -> String {
    if f.count == 0 {
        return text(language, "digest-none-yet");
    }
    let span = |d: Option<&Duration>| duration_text(d.map_or(0, |d| d.seconds), language);
    lookup(
        language,
        "digest-durations",
        &args([
            ("median", span(f.median.as_ref()).into()),
            ("p90", span(f.p90.as_ref()).into()),
            ("slowest", span(f.slowest.as_ref()).into()),
            ("count", FluentValue::from(f.count)),
        ]),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::tests::{has_district_code, has_uuid};
    use placement_proto::{prost_types::Timestamp, v1::ReferralStepName};

    const PIRDOP: &str = "0193c0de-0000-7000-8000-00000000a001";
    const UNNAMED: &str = "0193c0de-0000-7000-8000-00000000a002";
    const SVOGE: &str = "0193c0de-0000-7000-8000-00000000b001";

    fn at(s: &str) -> Option<Timestamp> {
        let t: chrono::DateTime<chrono::Utc> = s.parse().unwrap();
        Some(Timestamp {
            seconds: t.timestamp(),
            nanos: 0,
        })
    }

    fn names() -> HashMap<String, String> {
        HashMap::from([
            (PIRDOP.to_string(), "ДСП Пирдоп".to_string()),
            (SVOGE.to_string(), "ЦНСТ Своге".to_string()),
        ])
    }

    fn stalled(i: usize) -> StalledReferral {
        StalledReferral {
            referral_id: format!("0193c0de-0000-7000-8000-0000000000{i:02}"),
            reference: format!("Н-ВРЦ-2026-000{i:02}"),
            sender_region_code: "SFO".into(),
            receiving_region_code: "VRC".into(),
            acknowledgement_deadline: at("2026-11-28T09:30:00Z"),
            not_answered_agency_ids: vec![PIRDOP.into(), UNNAMED.into()],
            free_elsewhere: vec![FreePlaces {
                service_id: SVOGE.into(),
                region_code: "SFO".into(),
                free_places: 4,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn digest(count: usize) -> DistrictDigestReady {
        let minutes = |m: i64| {
            Some(Duration {
                seconds: m * 60,
                nanos: 0,
            })
        };
        DistrictDigestReady {
            digest_id: "d".into(),
            region_code: "VRC".into(),
            rdsa_agency_id: "0193c0de-0000-7000-8000-00000000c001".into(),
            period_start: at("2026-11-23T05:00:00Z"),
            period_end: at("2026-11-30T05:00:00Z"),
            report: Some(DistrictReport {
                as_receiver: Some(DistrictSide {
                    submitted: 7,
                    accepted: 3,
                    unanswered: 2,
                    time_to_first_response: Some(DurationFigures {
                        count: 6,
                        median: minutes(90),
                        p90: minutes(3 * 1440 + 120),
                        slowest: minutes(10),
                    }),
                    ..Default::default()
                }),
                stalled_now: (0..count).map(stalled).collect(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_digest_names_the_district_the_referrals_and_the_agencies_in_bulgarian() {
        let (title, body) = district_digest(Language::Bg, &digest(2), &names());
        assert_eq!(
            title,
            "Обобщение за област Враца преди заседанието на механизма: 2 блокирани направления"
        );
        assert!(
            body.starts_with("Област Враца, 23 ноември 2026 г. – 30 ноември 2026 г.\n\n"),
            "{body}"
        );
        assert!(
            body.contains(
                "Към услуги в областта:\n  Изпратени през периода: 7\n  \
                 Потвърдени от всички: 0\n  Приети: 3\n"
            ),
            "{body}"
        );
        assert!(
            body.contains(
                "  Време до първия отговор: медиана 1 ч 30 мин, 9 от 10 до 3 д 2 ч, \
                 най-бавно 10 мин (6 направления)\n"
            ),
            "{body}"
        );
        // Sofia time: 11:30 in winter.
        assert!(
            body.contains(
                "\n- № Н-ВРЦ-2026-00000 (Софийска област → област Враца): потвърждението за \
                 получаване, срок 28 ноември 2026 г., 11:30; чака се: ДСП Пирдоп, една агенция; \
                 свободни места другаде: ЦНСТ Своге (Софийска област): 4"
            ),
            "{body}"
        );
        assert!(body.contains("\n- № Н-ВРЦ-2026-00001 "), "{body}");
        let (one, _) = district_digest(Language::Bg, &digest(1), &names());
        assert!(one.ends_with(": 1 блокирано направление"), "{one}");
    }

    #[test]
    fn the_digest_reads_in_english_with_no_id_or_district_code() {
        let (title, body) = district_digest(Language::En, &digest(1), &names());
        assert_eq!(
            title,
            "Digest for Vratsa Province before the coordination mechanism meets: 1 stalled referral"
        );
        assert!(
            body.contains(
                "\n- Н-ВРЦ-2026-00000 (Sofia Province → Vratsa Province): the acknowledgement, \
                 deadline 28 November 2026, 11:30; waiting for ДСП Пирдоп, one agency; \
                 free places elsewhere: ЦНСТ Своге (Sofia Province): 4"
            ),
            "{body}"
        );
        for language in [Language::Bg, Language::En] {
            let (title, body) = district_digest(language, &digest(3), &names());
            let all = format!("{title}\n{body}");
            assert!(!has_uuid(&all), "{all}");
            assert!(!has_district_code(&all), "{all}");
            assert!(!all.contains('{') && !all.contains('$'), "{all}");
            assert!(all.contains("Н-ВРЦ-2026-00002"), "{all}");
        }
    }

    #[test]
    fn every_figure_is_told_for_both_sides_in_both_languages() {
        for language in [Language::Bg, Language::En] {
            let (_, body) = district_digest(language, &digest(0), &names());
            for figure in &FIGURES {
                let line = format!("\n  {}: ", figure.label(language));
                assert_eq!(body.matches(&line).count(), 2, "{line} in {body}");
            }
        }
        let (_, body) = district_digest(Language::En, &digest(0), &names());
        assert!(
            body.contains("\n  Working time to the first response: none yet\n"),
            "{body}"
        );
        assert!(body.ends_with("\n\nNo referral is stalled."), "{body}");
    }

    #[test]
    fn a_long_list_is_cut_and_a_later_step_and_a_referral_without_reference_are_said() {
        let (_, body) = district_digest(Language::En, &digest(STALLED_LISTED + 3), &names());
        assert_eq!(body.matches("\n- ").count(), STALLED_LISTED);
        assert!(body.ends_with("\n3 more: see the figures."), "{body}");
        let mut d = digest(1);
        let report = d.report.as_mut().unwrap();
        report.stalled_now[0] = StalledReferral {
            reference: String::new(),
            step: ReferralStepName::Decision as i32,
            step_deadline: at("2026-11-29T08:00:00Z"),
            not_answered_agency_ids: Vec::new(),
            free_elsewhere: Vec::new(),
            ..stalled(0)
        };
        let (_, body) = district_digest(Language::Bg, &d, &names());
        assert!(
            body.ends_with(
                "\n- № 00000000 (Софийска област → област Враца): решението (приемане или \
                 отказ), срок 29 ноември 2026 г., 10:00"
            ),
            "{body}"
        );
        assert_eq!(
            digest_named_ids(&digest(1)),
            [PIRDOP, UNNAMED, SVOGE].to_vec()
        );
    }
}
