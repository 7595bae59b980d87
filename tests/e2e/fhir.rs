//! The FHIR view of a referral, validated by a FHIR library no one here wrote (the Python package
//! fhir.resources, R4B models: R4 with its technical corrections; Task and ServiceRequest are the same).
//! A search is one ServiceRequest with a Task for each of its requests, based on it. A step that waits
//! carries its coded waiting reason, with the holder's comment, as the Task's businessStatus.

use placement_cli::clients::as_agency;
use placement_proto::v1::{
    AcceptReferralRequest, ConfirmPlacementRequest, DeclineReason, DeclineReferralRequest,
    ExportReferralFhirRequest, PostponeStepRequest, SubmitSearchRequest, WaitingReason,
};
use uuid::Uuid;

use crate::support::Fixture;

const VALIDATE: &str = r#"
import json, sys
from fhir.resources.R4B.bundle import Bundle
text = open(sys.argv[1]).read()
bundle = Bundle.model_validate_json(text) if hasattr(Bundle, "model_validate_json") else Bundle.parse_raw(text)
task = next(e.resource for e in bundle.entry if e.resource.__resource_type__ == "Task")
request = next(e.resource for e in bundle.entry if e.resource.__resource_type__ == "ServiceRequest")
# fhir.resources checks structure, types, formats and required elements, not the codes of required
# bindings: check those against the R4 value sets here.
TASK_STATUS = {"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
               "on-hold", "failed", "completed", "entered-in-error"}
REQUEST_STATUS = {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
INTENT = {"unknown", "proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
          "instance-order", "option", "directive"}
assert task.status in TASK_STATUS, task.status
assert request.status in REQUEST_STATUS, request.status
assert task.intent in INTENT and request.intent in INTENT
assert task.focus.reference in {e.fullUrl for e in bundle.entry}, "the Task's focus is in the bundle"
requests = {e.fullUrl for e in bundle.entry if e.resource.__resource_type__ == "ServiceRequest"}
tasks = [e.resource for e in bundle.entry if e.resource.__resource_type__ == "Task"]
for t in tasks:
    assert t.status in TASK_STATUS and t.intent in INTENT, t.status
    assert t.focus.reference in requests, "every Task's focus is a ServiceRequest of the bundle"
    for b in t.basedOn or []:
        assert b.reference in requests, "a Task is based on a ServiceRequest of the bundle"
def reason(t):
    return t.statusReason.coding[0].code if t.statusReason and t.statusReason.coding else None
def business(t):
    b = t.businessStatus
    return {"system": b.coding[0].system, "code": b.coding[0].code, "text": b.text} if b and b.coding else None
print(json.dumps({"task": task.status, "request": request.status, "focus": task.focus.reference,
                  "owner": task.owner.reference, "requests": sorted(requests),
                  "business": business(task), "reason": reason(task),
                  "tasks": [{"status": t.status, "owner": t.owner.reference, "reason": reason(t),
                             "based_on": [b.reference for b in t.basedOn or []]} for t in tasks]}))
"#;

fn validate(json: &str) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("placement-fhir-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (bundle, script) = (dir.join("bundle.json"), dir.join("validate.py"));
    std::fs::write(&bundle, json).unwrap();
    std::fs::write(&script, VALIDATE).unwrap();
    let out = std::process::Command::new(placement_e2e::python())
        .arg(&script)
        .arg(&bundle)
        .output()
        .expect("a Python with fhir.resources (`bash deploy/infra.sh python` makes one)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "fhir.resources rejected the bundle:\n{}\n{json}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("validator output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrals_export_as_valid_fhir_task_bundles() {
    let f = Fixture::start().await;
    let pirdop = f.agency("dsa-pirdop");
    let provider = f.agency("provider-vratsa");
    let case = f.open_twins_case(pirdop).await;
    let r = f.submit(pirdop, &case, f.demo.service("ftpc-vratsa")).await;
    let mut referrals = f.clients.referrals.clone();
    let export = |agency| {
        let mut referrals = f.clients.referrals.clone();
        let id = r.id.clone();
        async move {
            referrals
                .export_referral_fhir(as_agency(
                    agency,
                    ExportReferralFhirRequest { referral_id: id },
                ))
                .await
        }
    };

    let submitted = export(pirdop).await.expect("export").into_inner();
    assert!(submitted.content_type.starts_with("application/fhir+json"));
    let v = validate(&submitted.json);
    assert_eq!(v["task"], "requested");
    assert_eq!(v["request"], "active");
    assert_eq!(v["owner"], format!("Organization/{provider}"));
    assert!(!submitted.json.contains("Twin") && !submitted.json.contains(&r.reason));

    f.acknowledge(&r.id, &["provider-vratsa", "foster-vratsa"])
        .await;
    assert_eq!(
        validate(&export(provider).await.unwrap().into_inner().json)["task"],
        "received"
    );
    a_waiting_decision_exports_its_reason(&f, &r.id).await;
    referrals
        .accept_referral(as_agency(
            provider,
            AcceptReferralRequest {
                referral_id: r.id.clone(),
            },
        ))
        .await
        .unwrap();
    let accepted = validate(&export(pirdop).await.unwrap().into_inner().json);
    assert_eq!(accepted["task"], "accepted");
    // A new step: the decision's wait is over, and the business status is the status again.
    assert_eq!(accepted["business"]["code"], "ACCEPTED", "{accepted}");
    referrals
        .confirm_placement(as_agency(
            pirdop,
            ConfirmPlacementRequest {
                referral_id: r.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let placed = validate(&export(pirdop).await.unwrap().into_inner().json);
    assert_eq!(
        (placed["task"].as_str(), placed["request"].as_str()),
        (Some("completed"), Some("completed"))
    );

    // The same authorization as GetReferral: another agency's referral does not exist for it.
    let err = export(f.agency("dsa-pravets")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    a_search_exports_as_one_service_request_with_a_task_per_request(&f).await;
}

/// The provider says its decision waits for documents: the sender's export before and after are both
/// valid; before, the Task's businessStatus is the status; after, the coded reason with the comment as its
/// text, and statusReason stays empty (the referral has not ended).
async fn a_waiting_decision_exports_its_reason(f: &Fixture, referral_id: &str) {
    let before = exported(f, f.agency("dsa-pirdop"), referral_id).await;
    assert_eq!(before["business"]["code"], "ACKNOWLEDGED", "{before}");
    let comment = "The school's records are on their way.";
    (f.clients.referrals.clone())
        .postpone_step(as_agency(
            f.agency("provider-vratsa"),
            PostponeStepRequest {
                referral_id: referral_id.to_string(),
                reason: WaitingReason::DocumentsMissing as i32,
                comment: comment.into(),
                until: None,
            },
        ))
        .await
        .expect("PostponeStep");
    let waiting = exported(f, f.agency("dsa-pirdop"), referral_id).await;
    assert_eq!(waiting["task"], "received");
    assert_eq!(
        waiting["business"],
        serde_json::json!({
            "system": "urn:placement-exchange:codesystem:waiting-reason",
            "code": "DOCUMENTS_MISSING",
            "text": comment,
        })
    );
    assert_eq!(waiting["reason"], serde_json::Value::Null);
}

/// The export `agency` may see of `referral`, validated.
async fn exported(f: &Fixture, agency: Uuid, referral: &str) -> serde_json::Value {
    let asked = ExportReferralFhirRequest {
        referral_id: referral.to_string(),
    };
    let document = (f.clients.referrals.clone())
        .export_referral_fhir(as_agency(agency, asked))
        .await
        .expect("ExportReferralFhir")
        .into_inner();
    validate(&document.json)
}

/// A search to three services: Haskovo declines at once, Vratsa accepts and is chosen, Mezdra (not
/// answered by its provider) is closed as placed elsewhere. The sender's export of any of them is the
/// search: one ServiceRequest, completed, and three Tasks based on it, each owned by the organisation
/// asked, with its status and coded reason; a receiving party's export shows its own Task, based on the
/// same ServiceRequest.
async fn a_search_exports_as_one_service_request_with_a_task_per_request(f: &Fixture) {
    let pirdop = f.agency("dsa-pirdop");
    let case = f.open_twins_case(pirdop).await;
    let services = ["ftpc-haskovo", "ftpc-vratsa", "ftpcd-mezdra"];
    let one = f.submission(&case, Uuid::nil(), &Uuid::new_v4().to_string());
    let asked = SubmitSearchRequest {
        case_id: one.case_id,
        service_ids: (services.iter())
            .map(|s| f.demo.service(s).to_string())
            .collect(),
        legal_basis: one.legal_basis,
        reason: one.reason,
        idempotency_key: one.idempotency_key,
        ..Default::default()
    };
    let mut referrals = f.clients.referrals.clone();
    let search = referrals
        .submit_search(as_agency(pirdop, asked))
        .await
        .expect("SubmitSearch")
        .into_inner();
    let ids: Vec<String> = search.referrals.iter().map(|r| r.id.clone()).collect();
    let submitted = exported(f, pirdop, &ids[2]).await;
    assert_eq!(submitted["request"], "active");
    assert_eq!(submitted["tasks"].as_array().map(Vec::len), Some(3));

    let haskovo = f.agency("provider-haskovo");
    answer_haskovo_no_vratsa_yes(f, &ids).await;

    let placed = exported(f, pirdop, &ids[2]).await;
    let requests = placed["requests"].as_array().expect("requests").clone();
    assert_eq!(requests.len(), 1, "one ServiceRequest: {placed}");
    assert_eq!(placed["request"], "completed");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let tasks: Vec<[String; 3]> = (placed["tasks"].as_array().expect("tasks").iter())
        .map(|t| {
            assert_eq!(t["based_on"], serde_json::json!(requests), "{t}");
            [text(&t["status"]), text(&t["owner"]), text(&t["reason"])]
        })
        .collect();
    let owner = |key: &str| format!("Organization/{}", f.agency(key));
    let expected = [
        ["rejected", &owner("provider-haskovo"), "AT_CAPACITY"],
        ["completed", &owner("provider-vratsa"), ""],
        ["cancelled", &owner("provider-mezdra"), "PLACED_ELSEWHERE"],
    ]
    .map(|row| row.map(String::from));
    assert_eq!(tasks, expected);
    // A receiving party sees its own request of the search, based on the same ServiceRequest.
    let own = exported(f, haskovo, &ids[0]).await;
    assert_eq!(own["requests"], serde_json::json!(requests));
    assert_eq!(own["tasks"].as_array().map(Vec::len), Some(1));
    assert_eq!(own["owner"], owner("provider-haskovo"));
    assert_eq!(own["request"], "completed");
}

/// Haskovo declines its request of the search at once; Vratsa's is acknowledged, accepted and confirmed.
async fn answer_haskovo_no_vratsa_yes(f: &Fixture, ids: &[String]) {
    let (pirdop, haskovo) = (f.agency("dsa-pirdop"), f.agency("provider-haskovo"));
    let mut referrals = f.clients.referrals.clone();
    referrals
        .decline_referral(as_agency(
            haskovo,
            DeclineReferralRequest {
                referral_id: ids[0].clone(),
                reason: DeclineReason::AtCapacity as i32,
                comment: String::new(),
            },
        ))
        .await
        .expect("a decline at once");
    f.acknowledge(&ids[1], &["provider-vratsa", "foster-vratsa"])
        .await;
    referrals
        .accept_referral(as_agency(
            f.agency("provider-vratsa"),
            AcceptReferralRequest {
                referral_id: ids[1].clone(),
            },
        ))
        .await
        .expect("AcceptReferral");
    referrals
        .confirm_placement(as_agency(
            pirdop,
            ConfirmPlacementRequest {
                referral_id: ids[1].clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("ConfirmPlacement");
}
