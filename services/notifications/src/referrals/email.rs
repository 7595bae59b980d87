//! What an e-mail about a referral event says, in the endpoint's language. It names the referral, the
//! step and the deadline, and links to the referral; never a child. Pure, so the wording is tested alone.

use placement_proto::v1::{Language, NotificationKind, ReferralEvent};

use super::model::Facts;
use crate::signature::{SIGNATURE_BG, SIGNATURE_EN};

/// Subject and text of the e-mail about a referral event.
pub fn referral_email(
    kind: NotificationKind,
    e: &ReferralEvent,
    language: Language,
    public_url: &str,
) -> (String, String) {
    let facts = Facts::of(e);
    let link = format!(
        "{}/referrals/{}",
        public_url.trim_end_matches('/'),
        facts.id
    );
    let (subject, text, open, signature) = if language == Language::En {
        let (subject, text) = english(kind, &facts);
        (subject, text, "Open the referral", SIGNATURE_EN)
    } else {
        let (subject, text) = bulgarian(kind, &facts);
        (subject, text, "Отворете направлението", SIGNATURE_BG)
    };
    (
        subject,
        format!("{text}\n\n{open}: {link}\n\n{signature}\n"),
    )
}

fn english(kind: NotificationKind, f: &Facts<'_>) -> (String, String) {
    let (id, short, deadline, order_on) = (f.id, f.short, &f.deadline, &f.order_on);
    let (court_due, places, service, region) = (&f.court_due, f.places, f.service, f.region);
    let (from, code, actor) = (f.from, f.code, f.actor);
    use NotificationKind as K;
    match kind {
        K::ReferralSubmitted => (
            format!("New placement request {short}: acknowledge by {deadline}"),
            format!(
                "Referral {id} asks for {places} place(s) at service {service} (district {region}), \
                 from district {from}.\nPlease acknowledge it by {deadline}; then the service accepts or declines it."
            ),
        ),
        K::ReferralAcknowledged => (
            format!("Referral {short} acknowledged"),
            format!("Agency {actor} acknowledged referral {id}."),
        ),
        K::ReferralAccepted => (
            format!("Referral {short} accepted"),
            format!(
                "Service {service} accepted referral {id} and holds {places} place(s).\n\
                 Confirm the placement when the children arrive."
            ),
        ),
        K::ReferralDeclined => (
            format!("Referral {short} declined"),
            format!(
                "Service {service} declined referral {id} (reason code {code}).\n\
                 You may refer the case to another service."
            ),
        ),
        K::ReferralWithdrawn => (
            format!("Referral {short} withdrawn"),
            format!(
                "The sender withdrew referral {id} (reason code {code}); any held places are released."
            ),
        ),
        K::ReferralPlaced => (
            format!("Referral {short}: children placed"),
            format!(
                "The sender confirmed the placement of referral {id} at service {service}; \
                 {places} place(s) are now occupied."
            ),
        ),
        K::ReferralReminder => (
            format!("Reminder: acknowledge referral {short} by {deadline}"),
            format!(
                "Half the time to acknowledge referral {id} (service {service}, district {region}) has passed \
                 and your agency has not acknowledged it yet.\nDeadline: {deadline}."
            ),
        ),
        K::CourtDecisionDue => (
            format!("Referral {short}: apply to the court by {court_due}"),
            format!(
                "The director's order of {order_on} behind referral {id} is three weeks old and no court \
                 decision is recorded.\nThe law gives one month to apply to the court: by {court_due}.\n\
                 Record the decision on the referral once the court has ruled."
            ),
        ),
        K::CourtDecisionRecorded => (
            format!("Referral {short}: court decision recorded"),
            format!("The sender recorded the court decision on referral {id}."),
        ),
        K::ReferralEscalated | K::EndpointDisabled | K::DistrictDigest | K::Unspecified => (
            format!("Referral {short} escalated: acknowledgements overdue"),
            format!(
                "Referral {id} to service {service} (district {region}) was not acknowledged by every \
                 party by {deadline}."
            ),
        ),
    }
}

fn bulgarian(kind: NotificationKind, f: &Facts<'_>) -> (String, String) {
    let (id, short, deadline, order_on) = (f.id, f.short, &f.deadline, &f.order_on);
    let (court_due, places, service, region) = (&f.court_due, f.places, f.service, f.region);
    let (from, code, actor) = (f.from, f.code, f.actor);
    use NotificationKind as K;
    match kind {
        K::ReferralSubmitted => (
            format!("Ново искане за настаняване {short}: потвърдете до {deadline}"),
            format!(
                "Направление {id} иска {places} място(а) в услуга {service} (област {region}) \
                 от област {from}.\nМоля, потвърдете получаването до {deadline}; след това доставчикът \
                 приема или отказва."
            ),
        ),
        K::ReferralAcknowledged => (
            format!("Направление {short}: получаването е потвърдено"),
            format!("Агенция {actor} потвърди получаването на направление {id}."),
        ),
        K::ReferralAccepted => (
            format!("Направление {short} е прието"),
            format!(
                "Услуга {service} прие направление {id} и задържа {places} място(а).\n\
                 Потвърдете настаняването, когато децата пристигнат."
            ),
        ),
        K::ReferralDeclined => (
            format!("Направление {short} е отказано"),
            format!(
                "Услуга {service} отказа направление {id} (код на причината {code}).\n\
                 Можете да насочите случая към друга услуга."
            ),
        ),
        K::ReferralWithdrawn => (
            format!("Направление {short} е оттеглено"),
            format!(
                "Изпращачът оттегли направление {id} (код на причината {code}); задържаните места се освобождават."
            ),
        ),
        K::ReferralPlaced => (
            format!("Направление {short}: децата са настанени"),
            format!(
                "Изпращачът потвърди настаняването по направление {id} в услуга {service}; \
                 {places} място(а) вече са заети."
            ),
        ),
        K::ReferralReminder => (
            format!("Напомняне: потвърдете направление {short} до {deadline}"),
            format!(
                "Изтече половината от срока за потвърждение на направление {id} (услуга {service}, \
                 област {region}), а вашата агенция още не го е потвърдила.\nСрок: {deadline}."
            ),
        ),
        K::CourtDecisionDue => (
            format!("Направление {short}: подайте молба до съда до {court_due}"),
            format!(
                "Заповедта на директора от {order_on}, на която се основава направление {id}, е на три \
                 седмици, а съдебно решение не е вписано.\nЗаконът дава един месец за молба до съда: \
                 до {court_due}.\nВпишете решението в направлението, когато съдът се произнесе."
            ),
        ),
        K::CourtDecisionRecorded => (
            format!("Направление {short}: вписано е съдебно решение"),
            format!("Изпращачът вписа съдебното решение по направление {id}."),
        ),
        K::ReferralEscalated | K::EndpointDisabled | K::DistrictDigest | K::Unspecified => (
            format!("Направление {short} е ескалирано: потвърждението е просрочено"),
            format!(
                "Направление {id} до услуга {service} (област {region}) не беше потвърдено от всички \
                 страни до {deadline}."
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::referrals::model::short_ref;
    use chrono::DateTime;
    use placement_platform::time::{date, timestamp};
    use uuid::Uuid;

    fn event() -> ReferralEvent {
        ReferralEvent {
            referral_id: Uuid::new_v4().to_string(),
            service_id: Uuid::new_v4().to_string(),
            receiving_region_code: "VRC".into(),
            sender_region_code: "SFO".into(),
            places: 2,
            acknowledgement_deadline: Some(timestamp(
                DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
                    .unwrap()
                    .into(),
            )),
            order_issued_on: Some(date(chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap())),
            ..Default::default()
        }
    }

    #[test]
    fn every_email_names_the_referral_and_links_to_it_in_both_languages() {
        let e = event();
        for kind in [
            NotificationKind::ReferralSubmitted,
            NotificationKind::ReferralAcknowledged,
            NotificationKind::ReferralAccepted,
            NotificationKind::ReferralDeclined,
            NotificationKind::ReferralWithdrawn,
            NotificationKind::ReferralPlaced,
            NotificationKind::ReferralEscalated,
            NotificationKind::ReferralReminder,
            NotificationKind::CourtDecisionDue,
            NotificationKind::CourtDecisionRecorded,
        ] {
            let (bg_subject, bg) = referral_email(kind, &e, Language::Bg, "https://pe.example/");
            let (en_subject, en) = referral_email(kind, &e, Language::En, "https://pe.example/");
            for (subject, text) in [(&bg_subject, &bg), (&en_subject, &en)] {
                assert!(
                    subject.contains(short_ref(&e.referral_id)),
                    "{kind:?}: {subject}"
                );
                assert!(text.contains(&format!("https://pe.example/referrals/{}", e.referral_id)));
            }
            assert_ne!(bg_subject, en_subject, "{kind:?}");
            assert!(
                bg_subject.chars().any(|c| ('а'..='я').contains(&c)),
                "{bg_subject}"
            );
        }
    }

    #[test]
    fn deadlines_are_named() {
        let e = event();
        let (subject, _) =
            referral_email(NotificationKind::ReferralSubmitted, &e, Language::En, "x");
        assert!(subject.contains("2026-11-30 12:00 UTC"), "{subject}");
        let (subject, text) =
            referral_email(NotificationKind::CourtDecisionDue, &e, Language::Bg, "x");
        assert!(subject.contains("2026-12-02"), "{subject}");
        assert!(text.contains("2026-11-02"));
    }
}
