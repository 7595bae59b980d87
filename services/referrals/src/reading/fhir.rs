//! A referral as HL7 FHIR R4: a Bundle with the Task that tracks the request and the ServiceRequest that is
//! its focus. Only identifiers and codes go in: no free text, nothing about a child.

use placement_proto::v1::{
    DeclineReason, LegalBasisKind, Referral, ReferralStatus, WithdrawReason,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Code systems of this project (URNs: they identify, they are not fetched).
const SYSTEM_REFERRAL: &str = "urn:placement-exchange:referral";
const SYSTEM_AGENCY: &str = "urn:placement-exchange:agency";
const SYSTEM_DECLINE: &str = "urn:placement-exchange:codesystem:decline-reason";
const SYSTEM_WITHDRAW: &str = "urn:placement-exchange:codesystem:withdraw-reason";
const SYSTEM_LEGAL_BASIS: &str = "urn:placement-exchange:codesystem:legal-basis";
const SYSTEM_STATUS: &str = "urn:placement-exchange:codesystem:referral-status";

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
            coded(
                SYSTEM_WITHDRAW,
                w.as_str_name().trim_start_matches("WITHDRAW_REASON_"),
            )
        }),
        _ => None,
    }
}

pub fn bundle(r: &Referral) -> Value {
    let status = ReferralStatus::try_from(r.status).unwrap_or(ReferralStatus::Unspecified);
    let referral_id = Uuid::parse_str(&r.id).unwrap_or_default();
    // A stable id of its own for the ServiceRequest, derived from the referral's.
    let service_request_id = Uuid::new_v5(&referral_id, b"ServiceRequest");
    let subject = json!({ "reference": format!("Group/{}", r.case_id) });
    let identifier = json!([{ "system": SYSTEM_REFERRAL, "value": r.id }]);
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
        "businessStatus": coded(SYSTEM_STATUS, status.as_str_name().trim_start_matches("REFERRAL_STATUS_")),
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
            ..Default::default()
        };
        let b = bundle(&r);
        let task = &b["entry"][0]["resource"];
        let sr_url = b["entry"][1]["fullUrl"].as_str().unwrap();
        assert_eq!(task["focus"]["reference"], sr_url);
        assert_eq!(task["status"], "rejected");
        assert_eq!(task["statusReason"]["coding"][0]["code"], "AT_CAPACITY");
        assert_eq!(b["entry"][1]["resource"]["status"], "revoked");
        assert!(!b.to_string().contains("free text"));
    }
}
