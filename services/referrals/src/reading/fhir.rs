//! A referral as HL7 FHIR R4: a Bundle with the Task that tracks the request and the ServiceRequest that is
//! its focus. A search (one request to several services at once) is one ServiceRequest, and each of its
//! referrals a Task based on it, owned by the organisation asked. Only identifiers and codes go in, nothing
//! about a child; the one free text is the comment the holder of a waiting step gave with its coded reason,
//! which every caller allowed an export may read on the referral itself.

use placement_proto::v1::{
    DeclineReason, LegalBasisKind, Referral, ReferralStatus, WaitingReason, WithdrawReason,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Code systems of this project (URNs: they identify, they are not fetched).
const SYSTEM_REFERRAL: &str = "urn:placement-exchange:referral";
const SYSTEM_SEARCH: &str = "urn:placement-exchange:search";
/// The references people say («Н-ВРЦ-2026-00042», see `placement_model::reference`).
const SYSTEM_REFERENCE: &str = "urn:placement-exchange:referral-reference";
const SYSTEM_AGENCY: &str = "urn:placement-exchange:agency";
const SYSTEM_DECLINE: &str = "urn:placement-exchange:codesystem:decline-reason";
const SYSTEM_WITHDRAW: &str = "urn:placement-exchange:codesystem:withdraw-reason";
const SYSTEM_LEGAL_BASIS: &str = "urn:placement-exchange:codesystem:legal-basis";
const SYSTEM_STATUS: &str = "urn:placement-exchange:codesystem:referral-status";
const SYSTEM_WAITING: &str = "urn:placement-exchange:codesystem:waiting-reason";

pub const CONTENT_TYPE: &str = "application/fhir+json; fhirVersion=4.0";

/// The FHIR Task status for a referral status.
pub fn task_status(status: ReferralStatus) -> &'static str {
    match status {
        ReferralStatus::Submitted | ReferralStatus::Unspecified => "requested",
        ReferralStatus::Acknowledged => "received",
        ReferralStatus::Accepted => "accepted",
        ReferralStatus::Declined => "rejected",
        ReferralStatus::Withdrawn => "cancelled",
        ReferralStatus::Placed => "completed",
    }
}

fn service_request_status(status: ReferralStatus) -> &'static str {
    match status {
        ReferralStatus::Placed => "completed",
        ReferralStatus::Declined | ReferralStatus::Withdrawn => "revoked",
        _ => "active",
    }
}

fn instant(t: &Option<placement_proto::prost_types::Timestamp>) -> Option<String> {
    t.as_ref()
        .and_then(placement_platform::time::from_timestamp)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn organization(id: &str) -> Value {
    json!({ "reference": format!("Organization/{id}"), "identifier": { "system": SYSTEM_AGENCY, "value": id } })
}

fn coded(system: &str, code: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code }] })
}

/// Why the referral ended, for a declined or withdrawn one.
fn status_reason(status: ReferralStatus, r: &Referral) -> Option<Value> {
    match status {
        ReferralStatus::Declined => DeclineReason::try_from(r.decline_reason).ok().map(|d| {
            coded(
                SYSTEM_DECLINE,
                d.as_str_name().trim_start_matches("DECLINE_REASON_"),
            )
        }),
        ReferralStatus::Withdrawn => WithdrawReason::try_from(r.withdraw_reason).ok().map(|w| {
            let mut reason = coded(
                SYSTEM_WITHDRAW,
                w.as_str_name().trim_start_matches("WITHDRAW_REASON_"),
            );
            // Closed because another request of its search was placed: its own code, and no decline.
            if w == WithdrawReason::PlacedElsewhere {
                reason["text"] = json!("Placed elsewhere");
            }
            reason
        }),
        _ => None,
    }
}

/// The Task's `businessStatus`: where the referral stands in the exchange's own terms. While its open step
/// waits (its holder postponed it), why: the coded waiting reason, with the holder's comment as its text;
/// otherwise the referral's status. (`statusReason` stays for why a referral ended: its decline or
/// withdrawal.)
fn business_status(status: ReferralStatus, r: &Referral) -> Value {
    let waiting = WaitingReason::try_from(r.waiting_reason)
        .ok()
        .filter(|w| *w != WaitingReason::Unspecified);
    let Some(waiting) = waiting else {
        return coded(
            SYSTEM_STATUS,
            status.as_str_name().trim_start_matches("REFERRAL_STATUS_"),
        );
    };
    let mut reason = coded(
        SYSTEM_WAITING,
        waiting.as_str_name().trim_start_matches("WAITING_REASON_"),
    );
    if !r.waiting_comment.trim().is_empty() {
        reason["text"] = json!(r.waiting_comment.trim());
    }
    reason
}

/// A search's ServiceRequest, from every referral of it: completed once one is placed, revoked once every
/// one is closed without, active while any is open.
pub fn search_request_status(referrals: &[Referral]) -> &'static str {
    let statuses = || {
        (referrals.iter())
            .map(|r| ReferralStatus::try_from(r.status).unwrap_or(ReferralStatus::Unspecified))
    };
    if statuses().any(|s| s == ReferralStatus::Placed) {
        "completed"
    } else if statuses().all(|s| service_request_status(s) == "revoked") {
        "revoked"
    } else {
        "active"
    }
}

/// What one export holds: a referral sent alone, or the referrals of a search the caller may see (every
/// one for the search's sender; a receiving party sees only its own), with the search's id and the
/// status of its ServiceRequest (from every referral of it, see [`search_request_status`]).
pub enum Export {
    Alone(Box<Referral>),
    Search {
        id: Uuid,
        referrals: Vec<Referral>,
        status: &'static str,
    },
}

impl Export {
    /// The referrals it shows, whose reads are recorded.
    pub fn referrals(&self) -> &[Referral] {
        match self {
            Export::Alone(r) => std::slice::from_ref(r.as_ref()),
            Export::Search { referrals, .. } => referrals,
        }
    }

    pub fn bundle(&self) -> Value {
        match self {
            Export::Alone(r) => bundle(r),
            Export::Search {
                id,
                referrals,
                status,
            } => search_bundle(*id, referrals, status),
        }
    }
}

/// A search: one ServiceRequest in `status`, and a Task for each of `referrals` (in the order their
/// services were asked) based on it and focused on it, each owned by the organisation asked. Each Task is
/// the referral's own, as [`bundle`] makes it; the ServiceRequest is the first referral's, named after the
/// search and asked of every organisation among them.
pub fn search_bundle(search_id: Uuid, referrals: &[Referral], status: &str) -> Value {
    // The same id in every export of the search, whoever asks and whichever referral it starts from.
    let request_id = Uuid::new_v5(&search_id, b"ServiceRequest");
    let based_on = json!({ "reference": format!("urn:uuid:{request_id}") });
    let (mut entries, mut performers, mut request) = (Vec::new(), Vec::<Value>::new(), None);
    for r in referrals {
        let mut alone = bundle(r);
        let mut task = alone["entry"][0]["resource"].take();
        task["focus"] = based_on.clone();
        task["basedOn"] = json!([based_on]);
        let asked = task["owner"].clone();
        if !performers.contains(&asked) {
            performers.push(asked);
        }
        entries.push(json!({ "fullUrl": format!("urn:uuid:{}", r.id), "resource": task }));
        request.get_or_insert_with(|| alone["entry"][1]["resource"].take());
    }
    if let Some(mut request) = request {
        request["id"] = json!(request_id.to_string());
        request["identifier"] =
            json!([{ "system": SYSTEM_SEARCH, "value": search_id.to_string() }]);
        request["status"] = json!(status);
        request["performer"] = json!(performers);
        entries.push(json!({ "fullUrl": based_on["reference"], "resource": request }));
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "entry": entries,
    })
}

/// A referral sent alone: its Task and the ServiceRequest it is the only request of.
pub fn bundle(r: &Referral) -> Value {
    let status = ReferralStatus::try_from(r.status).unwrap_or(ReferralStatus::Unspecified);
    let referral_id = Uuid::parse_str(&r.id).unwrap_or_default();
    // A stable id of its own for the ServiceRequest, derived from the referral's.
    let service_request_id = Uuid::new_v5(&referral_id, b"ServiceRequest");
    let subject = json!({ "reference": format!("Group/{}", r.case_id) });
    let mut identifier = vec![json!({ "system": SYSTEM_REFERRAL, "value": r.id })];
    if !r.reference.is_empty() {
        // The one people quote: FHIR's "usual" identifier.
        identifier
            .push(json!({ "use": "usual", "system": SYSTEM_REFERENCE, "value": r.reference }));
    }
    let identifier = Value::Array(identifier);
    let legal_basis = r
        .legal_basis
        .as_ref()
        .and_then(|b| LegalBasisKind::try_from(b.kind).ok())
        .map(|k| k.as_str_name().trim_start_matches("LEGAL_BASIS_KIND_"))
        .unwrap_or("UNSPECIFIED");

    let mut service_request = json!({
        "resourceType": "ServiceRequest",
        "id": service_request_id.to_string(),
        "identifier": identifier,
        "status": service_request_status(status),
        "intent": "order",
        "code": { "text": "Placement of a child in a social service" },
        "quantityQuantity": { "value": r.places, "unit": "places" },
        "subject": subject,
        "requester": organization(&r.sender_agency_id),
        "performer": [organization(&r.receiving_agency_id)],
        "reasonCode": [coded(SYSTEM_LEGAL_BASIS, legal_basis)],
    });
    if let Some(at) = instant(&r.created_at) {
        service_request["authoredOn"] = json!(at);
    }

    let mut task = json!({
        "resourceType": "Task",
        "id": r.id,
        "identifier": identifier,
        "status": task_status(status),
        "businessStatus": business_status(status, r),
        "intent": "order",
        "focus": { "reference": format!("urn:uuid:{service_request_id}") },
        "for": subject,
        "requester": organization(&r.sender_agency_id),
        "owner": organization(&r.receiving_agency_id),
    });
    if let Some(at) = instant(&r.created_at) {
        task["authoredOn"] = json!(at);
    }
    if let Some(at) = instant(&r.updated_at) {
        task["lastModified"] = json!(at);
    }
    if let Some(end) = instant(&r.acknowledgement_deadline) {
        // The acknowledgement deadline: when the request must have been taken up.
        task["restriction"] = json!({ "period": { "end": end } });
    }
    let reason = status_reason(status, r);
    if let Some(reason) = reason {
        task["statusReason"] = reason;
    }

    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "entry": [
            { "fullUrl": format!("urn:uuid:{}", r.id), "resource": task },
            { "fullUrl": format!("urn:uuid:{service_request_id}"), "resource": service_request },
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_maps_onto_a_task_status() {
        let pairs = [
            (ReferralStatus::Submitted, "requested"),
            (ReferralStatus::Acknowledged, "received"),
            (ReferralStatus::Accepted, "accepted"),
            (ReferralStatus::Declined, "rejected"),
            (ReferralStatus::Withdrawn, "cancelled"),
            (ReferralStatus::Placed, "completed"),
        ];
        for (status, expected) in pairs {
            assert_eq!(task_status(status), expected);
        }
    }

    #[test]
    fn the_bundle_links_task_and_service_request_and_codes_the_reason() {
        let r = Referral {
            id: Uuid::new_v4().to_string(),
            case_id: Uuid::new_v4().to_string(),
            sender_agency_id: Uuid::new_v4().to_string(),
            receiving_agency_id: Uuid::new_v4().to_string(),
            status: ReferralStatus::Declined as i32,
            decline_reason: DeclineReason::AtCapacity as i32,
            reason: "free text that must not appear".into(),
            places: 2,
            reference: "Н-ВРЦ-2026-00042".into(),
            ..Default::default()
        };
        let b = bundle(&r);
        let task = &b["entry"][0]["resource"];
        for resource in [task, &b["entry"][1]["resource"]] {
            assert_eq!(resource["identifier"][1]["system"], SYSTEM_REFERENCE);
            assert_eq!(resource["identifier"][1]["value"], "Н-ВРЦ-2026-00042");
        }
        let sr_url = b["entry"][1]["fullUrl"].as_str().unwrap();
        assert_eq!(task["focus"]["reference"], sr_url);
        assert_eq!(task["status"], "rejected");
        assert_eq!(task["statusReason"]["coding"][0]["code"], "AT_CAPACITY");
        assert_eq!(b["entry"][1]["resource"]["status"], "revoked");
        assert!(!b.to_string().contains("free text"));
    }
    #[test]
    fn a_waiting_step_s_reason_is_the_business_status_and_an_end_s_the_status_reason() {
        let waiting = Referral {
            id: Uuid::new_v4().to_string(),
            status: ReferralStatus::Acknowledged as i32,
            waiting_reason: WaitingReason::DocumentsMissing as i32,
            waiting_comment: " the court's order ".into(),
            ..Default::default()
        };
        let task = bundle(&waiting)["entry"][0]["resource"].take();
        assert_eq!(
            task["businessStatus"]["coding"][0]["system"],
            SYSTEM_WAITING
        );
        assert_eq!(
            task["businessStatus"]["coding"][0]["code"],
            "DOCUMENTS_MISSING"
        );
        assert_eq!(task["businessStatus"]["text"], "the court's order");
        assert!(task.get("statusReason").is_none());
        let going_on = Referral {
            waiting_reason: WaitingReason::Unspecified as i32,
            ..waiting
        };
        let task = bundle(&going_on)["entry"][0]["resource"].take();
        assert_eq!(task["businessStatus"]["coding"][0]["code"], "ACKNOWLEDGED");
        assert!(task["businessStatus"].get("text").is_none());
    }

    fn of_search(search: Uuid, status: ReferralStatus, withdraw: WithdrawReason) -> Referral {
        Referral {
            id: Uuid::new_v4().to_string(),
            case_id: Uuid::new_v4().to_string(),
            sender_agency_id: Uuid::new_v4().to_string(),
            receiving_agency_id: Uuid::new_v4().to_string(),
            status: status as i32,
            withdraw_reason: withdraw as i32,
            search_id: search.to_string(),
            places: 2,
            ..Default::default()
        }
    }

    #[test]
    fn a_search_is_one_service_request_with_a_task_for_each_request() {
        use ReferralStatus as S;
        let search = Uuid::new_v4();
        let referrals = [
            of_search(search, S::Placed, WithdrawReason::Unspecified),
            of_search(search, S::Withdrawn, WithdrawReason::PlacedElsewhere),
            of_search(search, S::Declined, WithdrawReason::Unspecified),
        ];
        let status = search_request_status(&referrals);
        let b = search_bundle(search, &referrals, status);
        let entries = b["entry"].as_array().expect("entries");
        assert_eq!(entries.len(), 4);
        let request = &entries[3];
        assert_eq!(request["resource"]["resourceType"], "ServiceRequest");
        assert_eq!(request["resource"]["status"], "completed");
        assert_eq!(
            request["resource"]["identifier"][0]["value"],
            search.to_string()
        );
        assert_eq!(
            request["resource"]["performer"].as_array().map(Vec::len),
            Some(3)
        );
        for (entry, r) in entries.iter().zip(&referrals) {
            let task = &entry["resource"];
            assert_eq!(task["basedOn"][0]["reference"], request["fullUrl"]);
            assert_eq!(task["focus"]["reference"], request["fullUrl"]);
            assert_eq!(
                task["owner"]["reference"],
                format!("Organization/{}", r.receiving_agency_id)
            );
        }
        let closed = &entries[1]["resource"];
        assert_eq!(closed["status"], "cancelled");
        assert_eq!(
            closed["statusReason"]["coding"][0]["code"],
            "PLACED_ELSEWHERE"
        );
        // Every export of the search names the same ServiceRequest, whichever of its requests it shows.
        let one = search_bundle(search, &referrals[1..2], status);
        assert_eq!(one["entry"][1]["fullUrl"], request["fullUrl"]);
        assert_eq!(one["entry"][1]["resource"]["status"], "completed");
        assert_eq!(search_request_status(&referrals[1..]), "revoked");
        assert_eq!(
            search_request_status(&[of_search(search, S::Accepted, WithdrawReason::Unspecified)]),
            "active"
        );
        assert!(
            bundle(&referrals[0])["entry"][0]["resource"]
                .get("basedOn")
                .is_none()
        );
    }
}
