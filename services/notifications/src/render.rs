//! What an e-mail and a webhook call say. They name the referral, the step and the deadline, and link to
//! the referral; never a child. Pure, so the wording is tested alone.

use chrono::{DateTime, Utc};
use placement_platform::time::{court_application_due, from_date, from_timestamp};
use placement_proto::v1::{Language, NotificationKind, ReferralEvent};
use uuid::Uuid;

pub(crate) const SIGNATURE_EN: &str = "This message holds no data about the child; the details are in the system, \
     for those entitled to them.\n-- Placement Exchange";
pub(crate) const SIGNATURE_BG: &str = "Съобщението не съдържа данни за детето; подробностите са в системата, \
     достъпни за оправомощените.\n-- Обмен за настаняване";

/// The short reference of a referral in titles and subjects: the last 8 hex digits of its id. Ids are
/// UUIDv7, whose first digits are a timestamp shared by referrals made in the same minute; the last are
/// random.
pub fn short_ref(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

/// What an e-mail about a referral event may say, formatted.
pub(crate) struct Facts<'a> {
    pub id: &'a str,
    pub short: &'a str,
    pub deadline: String,
    pub order_on: String,
    pub court_due: String,
    pub places: u32,
    pub service: &'a str,
    pub region: &'a str,
    pub from: &'a str,
    pub code: i32,
    pub actor: &'a str,
}

impl<'a> Facts<'a> {
    pub fn of(e: &'a ReferralEvent) -> Self {
        let order = e.order_issued_on.as_ref().and_then(from_date);
        Facts {
            id: &e.referral_id,
            short: short_ref(&e.referral_id),
            deadline: e
                .acknowledgement_deadline
                .as_ref()
                .and_then(from_timestamp)
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            order_on: order.map(|d| d.to_string()).unwrap_or_default(),
            court_due: order
                .map(|d| court_application_due(d).to_string())
                .unwrap_or_default(),
            places: e.places,
            service: &e.service_id,
            region: &e.receiving_region_code,
            from: &e.sender_region_code,
            code: e.reason_code,
            actor: &e.actor_agency_id,
        }
    }
}

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

/// Subject and text of the e-mail telling an agency one of its endpoints was disabled.
pub fn endpoint_disabled_email(
    address: &str,
    reason: &str,
    language: Language,
) -> (String, String) {
    if language == Language::En {
        (
            "A notification endpoint was disabled".into(),
            format!(
                "Deliveries to {address} kept failing (last error: {reason}), so it was disabled.\n\
                 Fix it, then enable it again in the directory (UpdateNotificationEndpoint); an operator can \
                 retry the failed deliveries.\n\n{SIGNATURE_EN}\n"
            ),
        )
    } else {
        (
            "Канал за известяване е изключен".into(),
            format!(
                "Доставките до {address} не успяваха (последна грешка: {reason}), затова каналът е изключен.\n\
                 Отстранете проблема и го включете отново в регистъра (UpdateNotificationEndpoint); операторът \
                 може да изпрати неуспелите доставки повторно.\n\n{SIGNATURE_BG}\n"
            ),
        )
    }
}

/// The in-app title and text of the disabled-endpoint notice.
pub fn endpoint_disabled_notice(address: &str, reason: &str) -> (String, String) {
    endpoint_disabled_email(address, reason, Language::En)
}

/// The webhook body: notify, then the receiver fetches the details through the API with its own credentials.
pub fn webhook_body(
    event_type: &str,
    occurred_at: DateTime<Utc>,
    event_id: Uuid,
    referral_id: Option<Uuid>,
    notification_id: Uuid,
    agency_id: Uuid,
) -> String {
    serde_json::json!({
        "type": event_type,
        "timestamp": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "event_id": event_id,
            "referral_id": referral_id,
            "notification_id": notification_id,
            "agency_id": agency_id,
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_platform::time::{date, timestamp};

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

    #[test]
    fn the_webhook_body_is_small_and_names_the_event() {
        let (event_id, referral, notification, agency) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let body = webhook_body(
            "referral.submitted",
            Utc::now(),
            event_id,
            Some(referral),
            notification,
            agency,
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["type"], "referral.submitted");
        assert_eq!(json["data"]["event_id"], event_id.to_string());
        assert_eq!(json["data"]["referral_id"], referral.to_string());
        assert!(body.len() < 400);
    }
}
