//! What a notice about a referral's step keeps: the event's facts (ids, codes, numbers, times), worded
//! for each reader when shown or sent (see `placement_wording`).

use placement_platform::time::{court_application_due, date, from_date};
use placement_proto::v1::{NoticeFacts, ReferralEvent};

/// The facts of a referral event that its notices word.
pub fn of(e: &ReferralEvent) -> NoticeFacts {
    let due = (e.order_issued_on.as_ref())
        .and_then(from_date)
        .map(|order| date(court_application_due(order)));
    NoticeFacts {
        referral_id: e.referral_id.clone(),
        reference: e.reference.clone(),
        places: e.places,
        service_id: e.service_id.clone(),
        receiving_region_code: e.receiving_region_code.clone(),
        sender_region_code: e.sender_region_code.clone(),
        sender_agency_id: e.sender_agency_id.clone(),
        actor_agency_id: e.actor_agency_id.clone(),
        reason_code: e.reason_code,
        acknowledgement_deadline: e.acknowledgement_deadline,
        order_issued_on: e.order_issued_on,
        court_application_due: due,
        status: e.status,
        step: e.step,
        step_deadline: e.step_deadline,
        waiting_reason: e.waiting_reason,
        waiting_until: e.waiting_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::v1::Date;

    #[test]
    fn the_court_is_due_a_month_after_the_order() {
        let e = ReferralEvent {
            referral_id: "r".into(),
            reference: "ВРЦ-2026-00042".into(),
            order_issued_on: Some(Date {
                year: 2026,
                month: 11,
                day: 2,
            }),
            ..Default::default()
        };
        let f = of(&e);
        assert_eq!(f.reference, "ВРЦ-2026-00042");
        assert_eq!(
            f.court_application_due,
            Some(Date {
                year: 2026,
                month: 12,
                day: 2
            })
        );
    }
}
