//! The directory's HSDS export validated by a library no one here wrote: every page of
//! DirectoryService.ExportDirectory against Open Referral's HSDS 3.0 JSON schemas (tests/tools/hsds-3.0,
//! copied from the specification with its licence), with Python's jsonschema resolving the schemas'
//! references over those files (tests/tools/check_hsds.py). A page with a wrong field is refused, naming it.

use std::path::PathBuf;

use placement_cli::{clients::as_agency, import};
use placement_proto::v1::{ExportDirectoryRequest, PageRequest};
use serde_json::{Value, json};

use crate::support::Fixture;

/// Services of every kind the export shows: with and without an address, a provider with and without
/// an EIK, each status, foster care.
const REGISTER: &str = "register_id,name,type,municipality_code,provider,provider_id,capacity,occupied,min_age,max_age,status,address
H-1,Услуга H1,ЦНСТДБУ,SFO55,Доставчик H,175074752,8,3,3,17,active,ул. Първа 1
H-2,Услуга H2,ЦНСТДМУ,SOF46,Доставчик H,175074752,6,0,0,17,suspended,
H-3,Услуга H3,КЦ,VRC10,Доставчик без ЕИК,,4,4,7,17,closed,бул. Втори 2
H-4,Приемна грижа H4,FOSTER_CARE,PDV22,Доставчик без ЕИК,,2,1,0,17,,
H-5,Услуга H5,КЦ,VAR06,Доставчик H5,831641791,10,2,7,17,active,ул. Пета 5
";

/// Every page of the export, as the service sent them, `size` services a page.
async fn pages(f: &Fixture, agency: uuid::Uuid, size: u32) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = f
            .clients
            .directory
            .clone()
            .export_directory(as_agency(
                agency,
                ExportDirectoryRequest {
                    format: "hsds".into(),
                    page: Some(PageRequest {
                        page_size: size,
                        page_token: token,
                    }),
                    modified_after: None,
                },
            ))
            .await
            .expect("ExportDirectory")
            .into_inner();
        pages.push(serde_json::from_str(&page.json).expect("a page is JSON"));
        if page.next_page_token.is_empty() {
            return pages;
        }
        token = page.next_page_token;
    }
}

/// (valid, what check_hsds.py said) of `pages`.
fn check(pages: &[Value]) -> (bool, Value) {
    let dir = std::env::temp_dir().join(format!("placement-hsds-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let files: Vec<PathBuf> = (pages.iter().enumerate())
        .map(|(i, page)| {
            let file = dir.join(format!("page-{}.json", i + 1));
            std::fs::write(&file, page.to_string()).expect("write a page");
            file
        })
        .collect();
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools");
    let out = std::process::Command::new(placement_e2e::python())
        .arg(tools.join("check_hsds.py"))
        .arg(tools.join("hsds-3.0"))
        .args(&files)
        .output()
        .expect("a Python with jsonschema (`bash deploy/infra.sh python` makes one)");
    let _ = std::fs::remove_dir_all(&dir);
    let said = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check_hsds.py said no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_the_hsds_export_follows_the_hsds_schemas() {
    let f = Fixture::start().await;
    let national = placement_platform::caller::NATIONAL_AUTHORITY;
    let report = import::import(
        &mut f.clients.directory.clone(),
        national,
        "hsds.csv",
        REGISTER.as_bytes(),
        false,
        false,
    )
    .await
    .expect("ImportServices");
    assert_eq!((report.created, report.refused), (5, 0), "{report:?}");

    let pages = pages(&f, national, 3).await;
    let services: Vec<&Value> = (pages.iter())
        .flat_map(|p| p["contents"].as_array().expect("contents").iter())
        .collect();
    assert!(pages.len() >= 3, "{} pages", pages.len());
    // The objects the schemas are to check are all there: an organization's EIK and an address.
    let has = |f: &dyn Fn(&Value) -> bool| services.iter().any(|s| f(s));
    assert!(has(
        &|s| s["organization"]["organization_identifiers"][0]["identifier"] == "175074752"
    ));
    assert!(has(
        &|s| s["service_at_locations"][0]["location"]["addresses"][0]["address_1"] == "ул. Пета 5"
    ));
    assert!(has(&|s| s["status"] == "temporarily closed") && has(&|s| s["status"] == "defunct"));

    let (valid, said) = check(&pages);
    assert!(valid, "the export breaks HSDS 3.0: {said:#}");
    assert_eq!(said["pages"], json!(pages.len()));
    assert_eq!(said["services"], json!(services.len()));
    assert_eq!(said["errors"], json!([]));
    // HSDS lets an export add fields; the one this export adds is the free places (`capacities`, HSDS
    // 3.1's service_capacity, which 3.0 lacks). Any other field the schemas do not know is a mistake.
    assert_eq!(said["extensions"], json!(["capacities"]), "{said:#}");

    // One exported service with a status HSDS does not have and an EIK that is a number, not text: the
    // validator refuses both, naming where, through the organization's schema (a reference resolved).
    let mut wrong = (services.iter())
        .find(|s| s["organization"]["organization_identifiers"].is_array())
        .map(|s| (*s).clone())
        .expect("a service whose provider has an EIK");
    wrong["status"] = json!("open");
    wrong["organization"]["organization_identifiers"][0]["identifier"] = json!(175_074_752);
    let mut page = pages[0].clone();
    page["contents"] = json!([wrong]);
    let (valid, said) = check(&[pages[0].clone(), page]);
    assert!(!valid, "a wrong field passes: {said:#}");
    let errors: Vec<&str> = (said["errors"].as_array().expect("errors").iter())
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let eik = "page 2: contents/0/organization/organization_identifiers/0/identifier";
    assert_eq!(
        errors[0],
        format!("{eik}: 175074752 is not of type 'string'"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("page 2: contents/0/status: 'open' is not one of"),
        "{errors:#?}"
    );
}
