//! Who is told of which referral event, and what their inbox says: the agencies concerned by each step,
//! and a title and body that name the referral and the step, never a child. Pure, so the rules are tested
//! alone.

use placement_messaging::EventType;
use placement_platform::time::{court_application_due, from_date, from_timestamp};
use placement_proto::v1::{Language, NotificationKind, ReferralEvent};
use uuid::Uuid;

use crate::{channel::Channel, inbox::model::NotificationRow};

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

/// The agencies concerned by a referral event, each once.
pub fn recipients(
    event_type: EventType,
    e: &ReferralEvent,
) -> Option<(NotificationKind, Vec<Uuid>)> {
    let receiving_side = || vec![&e.receiving_agency_id, &e.foster_care_team_agency_id];
    let (kind, ids) = match event_type {
        EventType::ReferralSubmitted => (NotificationKind::ReferralSubmitted, receiving_side()),
        EventType::ReferralAcknowledged => (
            NotificationKind::ReferralAcknowledged,
            vec![&e.sender_agency_id],
        ),
        EventType::ReferralAccepted => (
            NotificationKind::ReferralAccepted,
            vec![&e.sender_agency_id],
        ),
        EventType::ReferralDeclined => (
            NotificationKind::ReferralDeclined,
            vec![&e.sender_agency_id],
        ),
        EventType::ReferralWithdrawn => (NotificationKind::ReferralWithdrawn, receiving_side()),
        EventType::ReferralPlaced => (NotificationKind::ReferralPlaced, receiving_side()),
        EventType::ReferralEscalated => (
            NotificationKind::ReferralEscalated,
            vec![&e.sender_agency_id, &e.receiving_rdsa_agency_id],
        ),
        EventType::ReferralReminded => (
            NotificationKind::ReferralReminder,
            e.outstanding_agency_ids.iter().collect(),
        ),
        EventType::ReferralCourtDecisionDue => (
            NotificationKind::CourtDecisionDue,
            vec![&e.sender_agency_id],
        ),
        EventType::ReferralCourtDecisionRecorded => {
            (NotificationKind::CourtDecisionRecorded, receiving_side())
        }
        // Not about a referral: nobody is told of these here. Listed one by one, so that a new event
        // type does not compile until someone decides who hears of it.
        EventType::AgencyRegistered
        | EventType::ServiceRegistered
        | EventType::ServiceCapacityChanged
        | EventType::CaseOpened
        | EventType::CasePlaced
        | EventType::CaseClosed
        | EventType::AgencyEndpointsChanged
        | EventType::NotificationEndpointDisabled
        | EventType::DistrictDigestReady => return None,
    };
    let mut out: Vec<Uuid> = Vec::with_capacity(ids.len());
    for id in ids {
        if let Ok(id) = Uuid::parse_str(id)
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    Some((kind, out))
}

/// Title and body: they name the referral and the step, never a child.
pub fn message(kind: NotificationKind, e: &ReferralEvent) -> (String, String) {
    let f = Facts::of(e);
    let (id, short, deadline, places) = (f.id, f.short, &f.deadline, e.places);
    match kind {
        NotificationKind::ReferralSubmitted => (
            format!("New placement request {short}: please acknowledge"),
            format!(
                "Referral {} asks for {places} place(s) at service {} (district {}), from district {}. \
                 Please acknowledge it by {deadline}, then the service accepts or declines it.",
                e.referral_id, e.service_id, e.receiving_region_code, e.sender_region_code
            ),
        ),
        NotificationKind::ReferralAcknowledged => (
            format!("Referral {short} acknowledged"),
            format!(
                "Agency {} acknowledged referral {}.",
                e.actor_agency_id, e.referral_id
            ),
        ),
        NotificationKind::ReferralAccepted => (
            format!("Referral {short} accepted"),
            format!(
                "Service {} accepted referral {} and holds {places} place(s). Confirm the placement when the children arrive.",
                e.service_id, e.referral_id
            ),
        ),
        NotificationKind::ReferralDeclined => (
            format!("Referral {short} declined"),
            format!(
                "Service {} declined referral {} (reason code {}). You may refer the case to another service.",
                e.service_id, e.referral_id, e.reason_code
            ),
        ),
        NotificationKind::ReferralWithdrawn => (
            format!("Referral {short} withdrawn"),
            format!(
                "The sender withdrew referral {} (reason code {}); any held places are released.",
                e.referral_id, e.reason_code
            ),
        ),
        NotificationKind::ReferralPlaced => (
            format!("Referral {short}: children placed"),
            format!(
                "The sender confirmed the placement of referral {} at service {}; {places} place(s) are now occupied.",
                e.referral_id, e.service_id
            ),
        ),
        NotificationKind::ReferralReminder => (
            format!("Reminder: acknowledge referral {short} by {deadline}"),
            format!(
                "Half the time to acknowledge referral {} has passed and your agency has not acknowledged it yet. \
                 Please acknowledge it by {deadline}.",
                e.referral_id
            ),
        ),
        NotificationKind::CourtDecisionDue => (
            format!("Referral {short}: apply to the court by {}", f.court_due),
            format!(
                "The director's order of {} behind referral {} is three weeks old and no court decision is \
                 recorded. The law gives one month to apply to the court: by {}.",
                f.order_on, e.referral_id, f.court_due
            ),
        ),
        NotificationKind::CourtDecisionRecorded => (
            format!("Referral {short}: court decision recorded"),
            format!("The sender recorded the court decision on referral {id}."),
        ),
        NotificationKind::ReferralEscalated
        | NotificationKind::EndpointDisabled
        | NotificationKind::DistrictDigest
        | NotificationKind::Unspecified => (
            format!("Referral {short} escalated: acknowledgements overdue"),
            format!(
                "Referral {} to service {} (district {}) was not acknowledged by every party by {deadline}.",
                e.referral_id, e.service_id, e.receiving_region_code
            ),
        ),
    }
}

/// One event's notifications: one for each recipient.
pub struct EventNotifications<'a> {
    pub ids: &'a [Uuid],
    pub agencies: &'a [Uuid],
    pub kind: NotificationKind,
    pub referral_id: Uuid,
    pub event_id: Uuid,
    pub title: &'a str,
    pub body: &'a str,
    pub event_type: &'a str,
}

/// A notification just created, with one of its recipient's endpoints (none: no row of `endpoints`).
#[derive(sqlx::FromRow)]
pub(crate) struct CreatedRow {
    #[sqlx(flatten)]
    pub notification: NotificationRow,
    pub position: i64,
    pub endpoint_id: Option<Uuid>,
    pub channel: Option<Channel>,
    pub address: Option<String>,
    pub language: Option<Language>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(foster_is_provider: bool) -> (ReferralEvent, [Uuid; 4]) {
        let ids = [
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        ];
        let [sender, provider, foster, rdsa] = ids;
        let foster = if foster_is_provider { provider } else { foster };
        (
            ReferralEvent {
                referral_id: Uuid::new_v4().to_string(),
                sender_agency_id: sender.to_string(),
                receiving_agency_id: provider.to_string(),
                foster_care_team_agency_id: foster.to_string(),
                receiving_rdsa_agency_id: rdsa.to_string(),
                places: 2,
                ..Default::default()
            },
            ids,
        )
    }

    #[test]
    fn each_event_reaches_exactly_the_agencies_concerned() {
        let (e, [sender, provider, foster, rdsa]) = event(false);
        let cases = [
            (EventType::ReferralSubmitted, vec![provider, foster]),
            (EventType::ReferralAcknowledged, vec![sender]),
            (EventType::ReferralAccepted, vec![sender]),
            (EventType::ReferralDeclined, vec![sender]),
            (EventType::ReferralWithdrawn, vec![provider, foster]),
            (EventType::ReferralPlaced, vec![provider, foster]),
            (EventType::ReferralEscalated, vec![sender, rdsa]),
            (EventType::ReferralCourtDecisionDue, vec![sender]),
            (
                EventType::ReferralCourtDecisionRecorded,
                vec![provider, foster],
            ),
        ];
        for (t, expected) in cases {
            assert_eq!(recipients(t, &e).unwrap().1, expected, "{t}");
        }
        assert!(recipients(EventType::CaseOpened, &e).is_none());
    }

    #[test]
    fn reminders_go_to_the_parties_that_have_not_acknowledged() {
        let (mut e, [_, _, foster, _]) = event(false);
        e.outstanding_agency_ids = vec![foster.to_string()];
        assert_eq!(
            recipients(EventType::ReferralReminded, &e).unwrap().1,
            vec![foster]
        );
    }

    #[test]
    fn one_agency_in_two_roles_is_told_once() {
        let (e, [_, provider, _, _]) = event(true);
        assert_eq!(
            recipients(EventType::ReferralSubmitted, &e).unwrap().1,
            vec![provider]
        );
    }

    #[test]
    fn escalation_without_an_rdsa_tells_the_sender() {
        let (mut e, [sender, ..]) = event(false);
        e.receiving_rdsa_agency_id.clear();
        assert_eq!(
            recipients(EventType::ReferralEscalated, &e).unwrap().1,
            vec![sender]
        );
    }

    #[test]
    fn messages_name_the_referral() {
        let (e, _) = event(false);
        let (title, body) = message(NotificationKind::ReferralSubmitted, &e);
        assert!(title.contains(short_ref(&e.referral_id)));
        assert!(body.contains(&e.referral_id));
    }

    mod fuzz {
        use super::super::*;
        use crate::referrals::email::referral_email;
        use placement_messaging::EventType;
        use placement_proto::v1::Language;
        use proptest::prelude::*;
        use prost::Message;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// A referral event with any content is routed and rendered without panicking.
            #[test]
            fn random_referral_events(bytes in proptest::collection::vec(any::<u8>(), 0..1024), t in 0usize..11) {
                if let Ok(e) = ReferralEvent::decode(bytes.as_slice())
                    && let Some((kind, _)) = recipients(EventType::NOTIFIED[t], &e)
                {
                    let _ = message(kind, &e);
                    let _ = referral_email(kind, &e, Language::Bg, "https://x");
                    let _ = referral_email(kind, &e, Language::En, "https://x");
                }
            }
        }
    }
}
