//! Who is told of which referral event: the agencies concerned by each step (what they are told is the
//! event's facts, see [`super::facts`]). Pure, so the rules are tested alone.

use placement_messaging::EventType;
use placement_proto::v1::{Language, NotificationKind, ReferralEvent, ReferralStepName};
use uuid::Uuid;

use crate::{channel::Channel, inbox::model::NotificationRow};

/// Whether a reminder or escalation is about a step after the acknowledgement (events from before every
/// step was timed name none: the acknowledgement's).
fn later_step(e: &ReferralEvent) -> bool {
    !matches!(
        ReferralStepName::try_from(e.step),
        Ok(ReferralStepName::Unspecified | ReferralStepName::Acknowledgement) | Err(_)
    )
}

/// Who hears of an escalation: the sender and the receiving district's RDSA, and a later step's holders
/// too (the acknowledgement's were reminded already, and its escalation goes where it always went).
fn escalated_to(e: &ReferralEvent) -> Vec<&String> {
    let mut told = vec![&e.sender_agency_id, &e.receiving_rdsa_agency_id];
    if later_step(e) {
        told.extend(&e.outstanding_agency_ids);
    }
    told
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
        EventType::ReferralDeclined => {
            // The district's foster-care team follows every request there, answered or not; a team that
            // runs the service and declined knows already.
            let mut told = vec![&e.sender_agency_id];
            if e.foster_care_team_agency_id != e.actor_agency_id {
                told.push(&e.foster_care_team_agency_id);
            }
            (NotificationKind::ReferralDeclined, told)
        }
        EventType::ReferralWithdrawn => (NotificationKind::ReferralWithdrawn, receiving_side()),
        EventType::ReferralPlaced => (NotificationKind::ReferralPlaced, receiving_side()),
        EventType::ReferralEscalated => (NotificationKind::ReferralEscalated, escalated_to(e)),
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
        EventType::ReferralArrived => (
            NotificationKind::ReferralArrived,
            vec![&e.sender_agency_id, &e.foster_care_team_agency_id],
        ),
        // The sender and the receiving district's RDSA see why a step waits; its holder knows.
        EventType::ReferralPostponed => (
            NotificationKind::ReferralPostponed,
            [&e.sender_agency_id, &e.receiving_rdsa_agency_id]
                .into_iter()
                .filter(|id| **id != e.actor_agency_id)
                .collect(),
        ),
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
        | EventType::DistrictDigestReady
        | EventType::SearchExhausted => return None,
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

/// One event's notifications: one for each recipient.
pub struct EventNotifications<'a> {
    pub ids: &'a [Uuid],
    pub agencies: &'a [Uuid],
    pub kind: NotificationKind,
    pub referral_id: Uuid,
    pub event_id: Uuid,
    /// What the notices tell (a `NoticeFacts`, encoded): they are worded when shown or sent.
    pub facts: &'a [u8],
    pub event_type: &'a str,
    /// The referral's reference, as the event told it (empty if it told none).
    pub reference: &'a str,
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
            (EventType::ReferralDeclined, vec![sender, foster]),
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
    fn a_foster_team_that_declined_as_the_provider_is_not_told_of_its_own_decline() {
        let (mut e, [sender, provider, ..]) = event(true);
        e.actor_agency_id = provider.to_string();
        assert_eq!(
            recipients(EventType::ReferralDeclined, &e).unwrap().1,
            vec![sender]
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
    fn later_steps_tell_their_holders_and_a_postponement_the_sender_and_the_rdsa() {
        use placement_proto::v1::ReferralStepName as Step;
        let (mut e, [sender, provider, foster, rdsa]) = event(false);
        e.outstanding_agency_ids = vec![provider.to_string()];
        // The acknowledgement's escalation goes where it always went.
        e.step = Step::Acknowledgement as i32;
        assert_eq!(
            recipients(EventType::ReferralEscalated, &e).unwrap().1,
            vec![sender, rdsa]
        );
        e.step = Step::Decision as i32;
        assert_eq!(
            recipients(EventType::ReferralEscalated, &e).unwrap().1,
            vec![sender, rdsa, provider]
        );
        assert_eq!(
            recipients(EventType::ReferralReminded, &e).unwrap(),
            (NotificationKind::ReferralReminder, vec![provider])
        );
        // The sender holds the confirmation: told once.
        e.step = Step::Confirmation as i32;
        e.outstanding_agency_ids = vec![sender.to_string()];
        assert_eq!(
            recipients(EventType::ReferralEscalated, &e).unwrap().1,
            vec![sender, rdsa]
        );
        e.actor_agency_id = provider.to_string();
        assert_eq!(
            recipients(EventType::ReferralPostponed, &e).unwrap(),
            (NotificationKind::ReferralPostponed, vec![sender, rdsa])
        );
        e.actor_agency_id = sender.to_string();
        assert_eq!(
            recipients(EventType::ReferralPostponed, &e).unwrap().1,
            vec![rdsa]
        );
        assert_eq!(
            recipients(EventType::ReferralArrived, &e).unwrap(),
            (NotificationKind::ReferralArrived, vec![sender, foster])
        );
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

            /// A referral event with any content is routed and worded without panicking.
            #[test]
            fn random_referral_events(bytes in proptest::collection::vec(any::<u8>(), 0..1024), t in 0usize..11) {
                if let Ok(e) = ReferralEvent::decode(bytes.as_slice())
                    && let Some((kind, _)) = recipients(EventType::NOTIFIED[t], &e)
                {
                    let (facts, names) = (crate::referrals::facts::of(&e), crate::names::NameBook::default());
                    let _ = referral_email(kind, &facts, &names, Language::Bg, "https://x");
                    let _ = referral_email(kind, &facts, &names, Language::En, "https://x");
                }
            }
        }
    }
}
