//! The FHIR view of a referral, validated by a FHIR library no one here wrote (the Python package
//! fhir.resources, R4B models: R4 with its technical corrections; Task and ServiceRequest are the same).

use placement_cli::clients::as_agency;
use placement_proto::v1::{
    AcceptReferralRequest, ConfirmPlacementRequest, ExportReferralFhirRequest,
};

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
print(json.dumps({"task": task.status, "request": request.status, "focus": task.focus.reference, "owner": task.owner.reference}))
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
    referrals
        .accept_referral(as_agency(
            provider,
            AcceptReferralRequest {
                referral_id: r.id.clone(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        validate(&export(pirdop).await.unwrap().into_inner().json)["task"],
        "accepted"
    );
    referrals
        .confirm_placement(as_agency(
            pirdop,
            ConfirmPlacementRequest {
                referral_id: r.id.clone(),
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
}
