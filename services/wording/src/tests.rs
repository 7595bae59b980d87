//! The catalogue: complete in both languages, and a notice worded for its reader, with no id, code or
//! English word on a Bulgarian page.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use placement_proto::{prost_types::Timestamp, v1::Date};

use super::*;

/// Every message of a catalogue file, with the variables it takes.
fn messages(language: &str) -> BTreeMap<String, BTreeSet<String>> {
    let path = format!(
        "{}/locales/{language}/notices.ftl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).expect("catalogue");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some((key, _)) = line.split_once(" =")
            && !line.starts_with(' ')
        {
            current = Some(key.trim().to_string());
        }
        let Some(key) = &current else { continue };
        let variables = out.entry(key.clone()).or_default();
        for piece in line.split('$').skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            variables.insert(name);
        }
    }
    out
}

#[test]
fn every_message_is_in_both_languages_with_the_same_variables() {
    let (bg, en) = (messages("bg"), messages("en"));
    assert!(bg.len() >= 30, "{} messages", bg.len());
    assert_eq!(
        bg.keys().collect::<Vec<_>>(),
        en.keys().collect::<Vec<_>>(),
        "the same keys"
    );
    for (key, variables) in &bg {
        assert_eq!(Some(variables), en.get(key), "{key}: the same variables");
        for language in [Language::Bg, Language::En] {
            assert!(
                try_lookup(language, key, &every_variable(language)).is_some(),
                "{key} does not load in {language:?}"
            );
        }
    }
}

/// A value for every variable of the catalogue: a referral's notice's, and those of the notices about
/// no referral's step (a digest, a search that ran out, an endpoint disabled).
fn every_variable(language: Language) -> Args {
    let mut all = arguments(language, 1, &facts(), &names());
    all.extend(args([
        ("stalled", 2.into()),
        ("start", "23 ноември 2026 г.".into()),
        ("end", "30 ноември 2026 г.".into()),
        ("median", "1 ч".into()),
        ("p90", "2 ч".into()),
        ("slowest", "3 ч".into()),
        ("count", 3.into()),
        ("to", "област Враца".into()),
        ("holders", "ДСП Пирдоп".into()),
        ("free", 4.into()),
        ("first", "Н-ВРЦ-2026-00042".into()),
        ("others", 1.into()),
        ("references", "Н-ВРЦ-2026-00042, Н-ВРЦ-2026-00043".into()),
        ("round", 2.into()),
        ("fitting", 3.into()),
        ("address", "it@example.bg".into()),
    ]));
    all
}

const REFERRAL: &str = "01a23b88-cc04-7781-ba33-d459de1294cb";
const SERVICE: &str = "01a23b88-2f93-74af-b698-8925d7747791";
const SENDER: &str = "01a23b88-0000-7000-8000-000000000001";
const PROVIDER: &str = "01a23b88-0000-7000-8000-000000000002";

fn facts() -> NoticeFacts {
    NoticeFacts {
        referral_id: REFERRAL.into(),
        reference: "ВРЦ-2026-00042".into(),
        places: 2,
        service_id: SERVICE.into(),
        receiving_region_code: "VRC".into(),
        sender_region_code: "SFO".into(),
        sender_agency_id: SENDER.into(),
        actor_agency_id: PROVIDER.into(),
        reason_code: 1,
        acknowledgement_deadline: Some(Timestamp {
            seconds: "2026-12-06T10:52:00Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                .timestamp(),
            nanos: 0,
        }),
        order_issued_on: Some(Date {
            year: 2026,
            month: 11,
            day: 2,
        }),
        court_application_due: Some(Date {
            year: 2026,
            month: 12,
            day: 2,
        }),
        status: 1,
        ..Default::default()
    }
}

fn names() -> HashMap<String, String> {
    HashMap::from([
        (SERVICE.to_string(), "ЦНСТДБУ Враца 1".to_string()),
        (SENDER.to_string(), "ДСП Пирдоп".to_string()),
        (PROVIDER.to_string(), "Община Враца".to_string()),
    ])
}

/// Every kind of notice about a referral, and one this release does not know.
const KINDS: [i32; 13] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 21, 99];

/// Whether `text` shows a district's code as a word (e.g. «VRC»).
pub(crate) fn has_district_code(text: &str) -> bool {
    let words = latin_words(text);
    districts::codes().any(|code| words.iter().any(|w| w == code))
}

/// Words of two Latin letters or more in `text`.
fn latin_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 2)
        .map(str::to_string)
        .collect()
}

pub(crate) fn has_uuid(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .any(|w| w.len() == 36 && w.matches('-').count() == 4)
}

#[test]
fn a_bulgarian_notice_has_no_english_word_id_or_district_code() {
    let english_words: BTreeSet<String> = (messages("en").keys())
        .flat_map(|key| latin_words(&text(Language::En, key)))
        .map(|w| w.to_lowercase())
        .collect();
    assert!(english_words.contains("referral"));
    for kind in KINDS {
        for reason in 0..7 {
            let f = NoticeFacts {
                reason_code: reason,
                step: reason % 5,
                waiting_reason: reason,
                waiting_until: (reason % 2 == 0).then_some(Date {
                    year: 2027,
                    month: 1,
                    day: 5,
                }),
                ..facts()
            };
            let (title, body) = notice(Language::Bg, kind, &f, &names());
            let all = format!("{title}\n{body}");
            let english: Vec<_> = (latin_words(&all).into_iter())
                .filter(|w| english_words.contains(&w.to_lowercase()))
                .collect();
            assert!(english.is_empty(), "{kind}: {english:?} in {all}");
            assert!(!has_uuid(&all), "{kind}: {all}");
            for code in districts::codes() {
                assert!(
                    !latin_words(&all).iter().any(|w| w == code),
                    "{code} in {all}"
                );
            }
            // Nothing left unworded: no Latin letter at all, with Cyrillic names and reference.
            assert!(latin_words(&all).is_empty(), "{kind}: {all}");
            assert!(!all.contains('{') && !all.contains('$'), "{all}");
        }
    }
}

#[test]
fn a_notice_names_its_parties_the_districts_and_the_deadline_in_sofia_time() {
    let (title, body) = notice(
        Language::Bg,
        NotificationKind::ReferralSubmitted as i32,
        &facts(),
        &names(),
    );
    assert_eq!(
        title,
        "Ново направление № ВРЦ-2026-00042: потвърдете получаването до 6 декември 2026 г., 12:52"
    );
    assert_eq!(
        body,
        "Направление № ВРЦ-2026-00042 от ДСП Пирдоп (Софийска област) иска 2 места в ЦНСТДБУ Враца 1 \
         (област Враца). Моля, потвърдете получаването до 6 декември 2026 г., 12:52; след това \
         доставчикът приема или отказва."
    );
    let (title, body) = notice(
        Language::En,
        NotificationKind::ReferralSubmitted as i32,
        &NoticeFacts {
            places: 1,
            ..facts()
        },
        &names(),
    );
    assert_eq!(
        title,
        "New placement request ВРЦ-2026-00042: acknowledge by 6 December 2026, 12:52"
    );
    assert!(
        body.contains("asks for one place at ЦНСТДБУ Враца 1 (Vratsa Province)"),
        "{body}"
    );
    let (_, body) = notice(
        Language::En,
        NotificationKind::CourtDecisionDue as i32,
        &facts(),
        &names(),
    );
    assert!(body.contains("order of 2 November 2026"), "{body}");
    assert!(body.contains("by 2 December 2026."), "{body}");
}

#[test]
fn reasons_are_words_and_an_unknown_reason_is_another_reason() {
    let declined = |code, language| {
        let f = NoticeFacts {
            reason_code: code,
            ..facts()
        };
        notice(
            language,
            NotificationKind::ReferralDeclined as i32,
            &f,
            &names(),
        )
        .1
    };
    assert!(declined(1, Language::Bg).contains("Причина: няма свободни места."));
    assert!(declined(1, Language::En).contains("Reason: no free places."));
    assert!(declined(77, Language::En).contains("Reason: another reason."));
    let withdrawn = notice(
        Language::Bg,
        NotificationKind::ReferralWithdrawn as i32,
        &NoticeFacts {
            reason_code: WithdrawReason::Reintegrated as i32,
            ..facts()
        },
        &names(),
    );
    assert!(
        withdrawn.1.starts_with("ДСП Пирдоп оттегли направление № ВРЦ-2026-00042. Причина: децата са върнати в семейството."),
        "{withdrawn:?}"
    );
}

#[test]
fn without_names_or_a_reference_a_notice_still_reads() {
    let f = NoticeFacts {
        reference: String::new(),
        ..facts()
    };
    let nobody: HashMap<String, String> = HashMap::new();
    let (title, body) = notice(
        Language::Bg,
        NotificationKind::ReferralAccepted as i32,
        &f,
        &nobody,
    );
    assert_eq!(title, "Направление № de1294cb е прието");
    assert!(
        body.starts_with("Услугата прие направление № de1294cb"),
        "{body}"
    );
    let (_, body) = notice(
        Language::En,
        NotificationKind::ReferralAcknowledged as i32,
        &f,
        &nobody,
    );
    assert_eq!(body, "One of the parties acknowledged referral de1294cb.");
    assert!(!has_uuid(&body));
}

#[test]
fn a_kind_this_release_does_not_know_is_a_new_step() {
    let (title, _) = notice(Language::En, 99, &facts(), &names());
    assert_eq!(title, "Referral ВРЦ-2026-00042: a new step");
}

#[test]
fn a_postponement_names_the_step_the_reason_the_day_and_the_new_deadline() {
    let moved = Timestamp {
        seconds: "2027-01-07T08:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            .timestamp(),
        nanos: 0,
    };
    let f = NoticeFacts {
        step: ReferralStepName::Decision as i32,
        step_deadline: Some(moved),
        waiting_reason: WaitingReason::PlaceFreeing as i32,
        waiting_until: Some(Date {
            year: 2027,
            month: 1,
            day: 5,
        }),
        ..facts()
    };
    let kind = NotificationKind::ReferralPostponed as i32;
    let (title, body) = notice(Language::Bg, kind, &f, &names());
    assert_eq!(
        title,
        "Направление № ВРЦ-2026-00042: решението (приемане или отказ) е отложено до 7 януари 2027 г., 10:00"
    );
    assert_eq!(
        body,
        "Община Враца отложи решението (приемане или отказ) по направление № ВРЦ-2026-00042. Причина за \
         изчакване: място ще се освободи (до 5 януари 2027 г.). Нов срок: 7 януари 2027 г., 10:00."
    );
    let without_day = NoticeFacts {
        waiting_reason: 77,
        waiting_until: None,
        ..f
    };
    let (_, body) = notice(Language::En, kind, &without_day, &names());
    assert!(
        body.contains("Waiting reason: another reason. New deadline: 7 January 2027, 10:00."),
        "{body}"
    );
}
