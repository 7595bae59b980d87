//! The directory filled from the national register: a generated register of 10,000 services with faults
//! in a known 3% of rows, imported through `placement-cli directory import`'s client; exactly those rows
//! refused with the right column, the rest present and searchable; the same file again changes nothing and
//! publishes nothing; a corrected file updates in place; a dry run changes nothing; Windows-1251 and XLSX
//! files read alike; an RDSA imports its own district only; an import never shrinks a service below the
//! children living there; missing services closed only when asked.

use std::collections::BTreeMap;
use std::time::Instant;

use placement_cli::{clients::as_agency, import};
use placement_proto::v1::{
    ImportOutcome, ImportServicesReport, SearchServicesRequest, ServiceStatus,
};
use sqlx::Connection;
use uuid::Uuid;

use crate::support::Fixture;

const HEADER: &str = "register_id,name,type,municipality_code,provider,provider_id,capacity,occupied,min_age,max_age,address";
const TYPES: [&str; 4] = ["ЦНСТДБУ", "ЦНСТДМУ", "КЦ", "FOSTER_CARE"];

/// Every municipality code with its district's, from the directory's own reference data.
fn municipalities() -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/directory/municipalities.csv"
    );
    std::fs::read_to_string(path)
        .expect("municipalities.csv")
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[3].to_string(), cells[0].to_string())
        })
        .collect()
}

/// The faults of the register: which rows and which column each names.
fn fault_of(i: usize) -> Option<(&'static str, &'static str)> {
    if i % 100 >= 3 {
        return None;
    }
    Some(match (i / 100) % 6 {
        0 => ("municipality_code", "XXX99"),
        1 => ("capacity", "-4"),
        2 => ("type", "orphanage"),
        3 => ("register_id", "duplicate"),
        4 => ("occupied", "99"),
        _ => ("min_age", "18"),
    })
}

/// The capacity row `i` has in the first file.
fn capacity_of(i: usize) -> u32 {
    4 + (i % 12) as u32
}

/// Row `i` of the register (its row number in the file is `i + 2`), with its fault if it has one.
fn register_line(i: usize, places: &[(String, String)], capacity_bonus: usize) -> String {
    let (municipality, _) = &places[i % places.len()];
    let mut cells = vec![
        format!("R-{i:05}"),
        format!("Услуга {i}"),
        TYPES[i % TYPES.len()].to_string(),
        municipality.clone(),
        format!("Доставчик {}", i % 40),
        String::new(),
        (capacity_of(i) as usize + capacity_bonus).to_string(),
        (i % 3).to_string(),
        (i % 6).to_string(),
        "17".to_string(),
        format!("ул. {i}"),
    ];
    if let Some((column, value)) = fault_of(i) {
        let at = HEADER
            .split(',')
            .position(|c| c == column)
            .expect("a column");
        cells[at] = if column == "register_id" {
            // The id of a good row three rows up.
            format!("R-{:05}", i - 3)
        } else {
            value.to_string()
        };
    }
    cells.join(",")
}

fn register(n: usize, places: &[(String, String)], changed: &dyn Fn(usize) -> usize) -> String {
    let mut text = String::from(HEADER);
    text.push('\n');
    for i in 0..n {
        text += &register_line(i, places, changed(i));
        text.push('\n');
    }
    text
}

async fn send(
    f: &Fixture,
    agency: Uuid,
    name: &str,
    bytes: &[u8],
    dry_run: bool,
    close: bool,
) -> ImportServicesReport {
    import::import(
        &mut f.clients.directory.clone(),
        agency,
        name,
        bytes,
        dry_run,
        close,
    )
    .await
    .unwrap_or_else(|e| panic!("ImportServices {name}: {e:?}"))
}

fn service_id(id: &str) -> Uuid {
    Uuid::parse_str(id).expect("a service id")
}

/// Each exported service's id, with the ids of its capacity and its location.
fn derived_ids(services: &[serde_json::Value]) -> BTreeMap<String, (String, String)> {
    let text = |v: &serde_json::Value| v.as_str().expect("an id").to_string();
    services
        .iter()
        .map(|s| {
            let location = &s["service_at_locations"][0]["location"]["id"];
            (
                text(&s["id"]),
                (text(&s["capacities"][0]["id"]), text(location)),
            )
        })
        .collect()
}

async fn count(f: &Fixture, sql: &str) -> i64 {
    let mut db = sqlx::PgConnection::connect(&f.stack.database_url)
        .await
        .expect("db");
    sqlx::query_scalar(sql).fetch_one(&mut db).await.expect(sql)
}

const REGISTERED: &str =
    "SELECT count(*) FROM directory.outbox WHERE event_type = 'service.registered'";
const EVENTS: &str = "SELECT count(*) FROM directory.outbox";
const NATIONAL: Uuid = placement_platform::caller::NATIONAL_AUTHORITY;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_services_imported_with_every_fault_refused_and_nothing_twice() {
    let f = Fixture::start().await;
    let places = municipalities();
    let n = 10_000;
    let file = register(n, &places, &|_| 0);
    let registered_before = count(&f, REGISTERED).await;
    let first = import_reporting_progress(&f, &file, n).await;
    let after_first =
        assert_exactly_the_faulty_rows_refused(&f, &first, n, registered_before).await;
    let service = assert_an_imported_service_is_searchable(&f, &first).await;
    let last_change = assert_hsds_export_holds_every_service_once(&f, &service).await;
    assert_the_same_file_again_changes_nothing(&f, &file, after_first).await;
    let corrected = register(n, &places, &|i| usize::from(i % 1000 == 5));
    assert_a_dry_run_changes_nothing(&f, &corrected, &first, after_first).await;
    let applied =
        assert_a_corrected_file_updates_in_place(&f, &corrected, &first, after_first).await;
    // An incremental export after the last change seen: exactly the ten services updated.
    let (changed, _) = import::export_hsds(&mut f.clients.directory.clone(), NATIONAL, last_change)
        .await
        .expect("incremental export");
    let changed: std::collections::BTreeSet<String> = changed
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    let updated_ids: std::collections::BTreeSet<String> = (applied.results.iter())
        .filter(|r| r.outcome == ImportOutcome::Updated as i32)
        .map(|r| r.service_id.clone())
        .collect();
    assert_eq!(changed, updated_ids);
    // The imports are in the directory's audit trail, with their counts.
    let audited = count(&f, "SELECT count(*) FROM directory.audit_trail WHERE record_type = 'service_import' AND outcome LIKE 'OK: 10000 rows, 9700 created, 0 updated%'").await;
    assert_eq!(audited, 1);
}

/// The register imported by the national authority; the progress came batch by batch, in order, ending
/// with every row.
async fn import_reporting_progress(f: &Fixture, file: &str, n: usize) -> ImportServicesReport {
    let started = Instant::now();
    let mut progress = Vec::new();
    let first = import::import_with_progress(
        &mut f.clients.directory.clone(),
        NATIONAL,
        "register.csv",
        file.as_bytes(),
        (false, false),
        |done, total| progress.push((done, total)),
    )
    .await
    .expect("ImportServices");
    assert!(progress.len() >= 3, "{progress:?}");
    assert!(
        progress.windows(2).all(|w| w[0].0 <= w[1].0),
        "{progress:?}"
    );
    assert!(progress.iter().all(|(_, total)| *total == 10_000));
    assert_eq!(progress.last(), Some(&(10_000, 10_000)));
    eprintln!(
        "imported {n} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    first
}

/// Exactly the faulty rows are refused, each at the right column; one event per service created. Returns
/// how many events the directory's outbox holds after the first import.
async fn assert_exactly_the_faulty_rows_refused(
    f: &Fixture,
    first: &ImportServicesReport,
    n: usize,
    registered_before: i64,
) -> i64 {
    let expected: BTreeMap<u32, &str> = (0..n)
        .filter_map(|i| fault_of(i).map(|(column, _)| ((i + 2) as u32, column)))
        .collect();
    let refused: BTreeMap<u32, &str> = (first.results.iter())
        .filter(|r| r.outcome == ImportOutcome::Refused as i32)
        .map(|r| (r.row, r.column.as_str()))
        .collect();
    assert_eq!(refused, expected);
    assert_eq!(expected.len(), 300);
    assert_eq!(
        (first.rows, first.created, first.refused),
        (10_000, 9_700, 300)
    );
    assert_eq!(
        first.providers_created,
        count(
            f,
            "SELECT count(*) FROM directory.agencies WHERE name LIKE 'Доставчик %'"
        )
        .await as u32
    );
    assert_eq!(
        count(
            f,
            "SELECT count(*) FROM directory.services WHERE external_id IS NOT NULL"
        )
        .await,
        9_700
    );
    let after_first = count(f, EVENTS).await;
    assert_eq!(
        count(f, REGISTERED).await - registered_before,
        9_700,
        "one event per service created"
    );
    after_first
}

/// An imported service (row 12, R-00010) is found by a search; returns it.
async fn assert_an_imported_service_is_searchable(
    f: &Fixture,
    first: &ImportServicesReport,
) -> placement_proto::v1::SocialService {
    let row = first
        .results
        .iter()
        .find(|r| r.register_id == "R-00010")
        .expect("row 12");
    let service = f.service(service_id(&row.service_id)).await;
    assert_eq!(
        (service.name.as_str(), service.capacity),
        ("Услуга 10", capacity_of(10))
    );
    let mut token = String::new();
    let mut found = false;
    loop {
        let page = f
            .clients
            .directory
            .clone()
            .search_services(as_agency(
                NATIONAL,
                SearchServicesRequest {
                    region_code: service.region_code.clone(),
                    service_type: service.r#type,
                    page: Some(placement_proto::v1::PageRequest {
                        page_size: 500,
                        page_token: token,
                    }),
                    ..Default::default()
                },
            ))
            .await
            .expect("SearchServices")
            .into_inner();
        found |= page.services.iter().any(|s| s.id == service.id);
        if found || page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(found, "the imported service is searchable");
    service
}

/// The whole directory in HSDS 3.0, page by page: every service once, with its organization, location
/// and capacity; the derived identifiers are the same in a second export. Returns the last change seen.
async fn assert_hsds_export_holds_every_service_once(
    f: &Fixture,
    service: &placement_proto::v1::SocialService,
) -> Option<placement_proto::prost_types::Timestamp> {
    let (exported, last_change) =
        import::export_hsds(&mut f.clients.directory.clone(), NATIONAL, None)
            .await
            .expect("ExportDirectory");
    assert_eq!(
        exported.len() as i64,
        count(f, "SELECT count(*) FROM directory.services").await
    );
    let ids = derived_ids(&exported);
    assert_eq!(ids.len(), exported.len(), "every service once");
    for s in &exported {
        assert!(
            ["active", "inactive", "defunct", "temporarily closed"]
                .contains(&s["status"].as_str().unwrap_or(""))
        );
        let capacity = &s["capacities"][0];
        assert!(
            capacity["available"].as_i64() <= capacity["maximum"].as_i64(),
            "{s}"
        );
    }
    let hsds = exported
        .iter()
        .find(|s| s["id"] == serde_json::json!(service.id))
        .expect("R-00010 exported");
    assert_eq!(hsds["organization"]["name"], "Доставчик 10");
    assert_eq!(
        hsds["service_at_locations"][0]["location"]["addresses"][0]["address_1"],
        "ул. 10"
    );
    assert_eq!(hsds["capacities"][0]["maximum"], capacity_of(10));
    let (again, _) = import::export_hsds(&mut f.clients.directory.clone(), NATIONAL, None)
        .await
        .expect("export");
    assert_eq!(
        derived_ids(&again),
        ids,
        "identifiers are stable across exports"
    );
    last_change
}

/// The same file again: nothing changes, nothing is published.
async fn assert_the_same_file_again_changes_nothing(f: &Fixture, file: &str, after_first: i64) {
    let second = send(f, NATIONAL, "register.csv", file.as_bytes(), false, false).await;
    assert_eq!(
        (
            second.created,
            second.updated,
            second.unchanged,
            second.refused
        ),
        (0, 0, 9_700, 300)
    );
    assert_eq!(
        count(f, EVENTS).await,
        after_first,
        "a second import publishes nothing"
    );
}

/// A dry run of a corrected file says what would change and changes nothing.
async fn assert_a_dry_run_changes_nothing(
    f: &Fixture,
    corrected: &str,
    first: &ImportServicesReport,
    after_first: i64,
) {
    let dry = send(
        f,
        NATIONAL,
        "register-2.csv",
        corrected.as_bytes(),
        true,
        false,
    )
    .await;
    assert_eq!((dry.updated, dry.import_id.as_str()), (10, ""));
    assert_eq!(
        count(f, EVENTS).await,
        after_first,
        "a dry run publishes nothing"
    );
    let unchanged = f.service(service_id(&first.results[5].service_id)).await;
    assert_eq!(
        unchanged.capacity,
        capacity_of(5),
        "a dry run changes nothing"
    );
}

/// The corrected file updates those services in place, with what changed; returns its report.
async fn assert_a_corrected_file_updates_in_place(
    f: &Fixture,
    corrected: &str,
    first: &ImportServicesReport,
    after_first: i64,
) -> ImportServicesReport {
    let applied = send(
        f,
        NATIONAL,
        "register-2.csv",
        corrected.as_bytes(),
        false,
        false,
    )
    .await;
    assert_eq!(
        (applied.created, applied.updated, applied.unchanged),
        (0, 10, 9_690)
    );
    let updated = &applied.results[5];
    assert_eq!(
        updated.service_id, first.results[5].service_id,
        "updated in place"
    );
    assert_eq!(
        updated.changes,
        vec![format!(
            "capacity: {} -> {}",
            capacity_of(5),
            capacity_of(5) + 1
        )]
    );
    assert_eq!(
        count(f, EVENTS).await,
        after_first + 10,
        "one event per changed service"
    );
    applied
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_1251_and_xlsx_files_an_rdsa_and_services_that_hold_children() {
    let f = Fixture::start().await;
    let rdsa = f.agency("rdsa-vratsa");
    assert_windows_1251_csv_imports_the_rdsas_district_only(&f, rdsa).await;
    assert_xlsx_refuses_shrinking_below_the_children(&f, rdsa).await;
    assert_a_renamed_service_is_named_anew_in_notices(&f, rdsa).await;
    let only_vr1 = assert_close_missing_closes_only_empty_services(&f, rdsa).await;
    assert_no_register_and_a_dsa_are_refused(&f, rdsa, &only_vr1).await;
}

async fn assert_windows_1251_csv_imports_the_rdsas_district_only(f: &Fixture, rdsa: Uuid) {
    // Bulgarian headers, `;`, Windows-1251, as a register exported from Excel in a Bulgarian locale.
    let text = "Рег. номер;Наименование;Вид;Код на общината;Доставчик;Капацитет;Заети места;Възраст от;Възраст до;Статус\n\
                VR-1;ЦНСТ „Надежда“ Враца;ЦНСТДБУ;VRC10;Фондация „Надежда“;10;6;3;17;активна\n\
                VR-2;Кризисен център Мездра;КЦ;VRC21;Фондация „Надежда“;6;0;7;17;\n\
                SF-1;Кризисен център София;КЦ;SOF46;Сдружение „Дом“;8;0;7;17;\n";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(text);
    assert!(!unmappable);
    let report = send(f, rdsa, "регистър.csv", &bytes, false, false).await;
    let outcomes: Vec<(String, i32, String)> = (report.results.iter())
        .map(|r| (r.register_id.clone(), r.outcome, r.column.clone()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("VR-1".into(), ImportOutcome::Created as i32, String::new()),
            ("VR-2".into(), ImportOutcome::Created as i32, String::new()),
            (
                "SF-1".into(),
                ImportOutcome::Refused as i32,
                "municipality_code".into()
            ),
        ],
        "an RDSA imports its own district only"
    );
    assert_eq!(report.providers_created, 1, "one provider, named twice");
    let vr1 = f.service(service_id(&report.results[0].service_id)).await;
    assert_eq!(
        (vr1.name.as_str(), vr1.occupied_places, vr1.free_places),
        ("ЦНСТ „Надежда“ Враца", 6, 4)
    );
}

/// The same services from an XLSX workbook with English headers: VR-1 shrunk below its six children
/// is refused; VR-2 grows.
async fn assert_xlsx_refuses_shrinking_below_the_children(f: &Fixture, rdsa: Uuid) {
    let xlsx = register_workbook();
    let report = send(f, rdsa, "register.xlsx", &xlsx, false, false).await;
    assert_eq!(report.results[0].outcome, ImportOutcome::Refused as i32);
    assert_eq!(
        report.results[0].column, "capacity",
        "{:?}",
        report.results[0]
    );
    assert_eq!(report.results[1].outcome, ImportOutcome::Updated as i32);
    assert_eq!(
        report.results[1].changes,
        vec!["capacity: 6 -> 9".to_string()]
    );
}

/// VR-2 renamed by the register: the notifications service, which takes registrations and not every
/// change of places, learns the new name (the name its notices will say).
async fn assert_a_renamed_service_is_named_anew_in_notices(f: &Fixture, rdsa: Uuid) {
    let renamed = "register_id,name,type,municipality_code,provider,capacity,min_age,max_age\nVR-2,Кризисен център „Мездра“,КЦ,VRC21,Фондация „Надежда“,9,7,17\n";
    let report = send(f, rdsa, "renamed.csv", renamed.as_bytes(), false, false).await;
    assert_eq!(report.results[0].outcome, ImportOutcome::Updated as i32);
    let id = service_id(&report.results[0].service_id);
    let mut db = sqlx::PgConnection::connect(&f.stack.database_url)
        .await
        .expect("db");
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let name: Option<String> =
            sqlx::query_scalar("SELECT name FROM notifications.directory_names WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut db)
                .await
                .expect("directory_names");
        if name.as_deref() == Some("Кризисен център „Мездра“") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "notifications still names VR-2 {name:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A file without VR-2, with --close-missing: VR-2 (empty) is closed; VR-1 (six children) would not be.
/// Returns the file of VR-1 alone.
async fn assert_close_missing_closes_only_empty_services(f: &Fixture, rdsa: Uuid) -> String {
    let only_vr1 = "register_id,name,type,municipality_code,provider,capacity,min_age,max_age\nVR-1,ЦНСТ „Надежда“ Враца,ЦНСТДБУ,VRC10,Фондация „Надежда“,10,3,17\n";
    let report = send(f, rdsa, "only-vr1.csv", only_vr1.as_bytes(), false, true).await;
    assert_eq!(report.missing.len(), 1);
    assert!(
        report.missing[0].closed && report.missing[0].register_id == "VR-2",
        "{:?}",
        report.missing
    );
    let vr2 = f.service(service_id(&report.missing[0].service_id)).await;
    assert_eq!(vr2.status, ServiceStatus::Closed as i32);
    let only_vr2 = "register_id,name,type,municipality_code,provider,capacity,min_age,max_age\nVR-2,Кризисен център Мездра,КЦ,VRC21,Фондация „Надежда“,9,7,17\n";
    let report = send(f, rdsa, "only-vr2.csv", only_vr2.as_bytes(), true, true).await;
    assert_eq!(report.missing.len(), 1);
    assert!(
        !report.missing[0].closed && report.missing[0].reason.contains("holds 6"),
        "{:?}",
        report.missing
    );
    only_vr1.to_string()
}

/// A file that is no register at all is refused as a whole, naming what is missing; a DSA may not
/// import at all.
async fn assert_no_register_and_a_dsa_are_refused(f: &Fixture, rdsa: Uuid, only_vr1: &str) {
    let err = import::import(
        &mut f.clients.directory.clone(),
        rdsa,
        "x.csv",
        b"name,capacity\nA,1\n",
        false,
        false,
    )
    .await
    .expect_err("no register");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("register_id"), "{}", err.message());
    // A DSA may not import at all.
    let err = import::import(
        &mut f.clients.directory.clone(),
        f.agency("dsa-pirdop"),
        "x.csv",
        only_vr1.as_bytes(),
        false,
        false,
    )
    .await
    .expect_err("a DSA");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
}

/// VR-1 and VR-2 as an XLSX workbook with English headers, VR-1 shrunk to 4 places and VR-2 grown to 9.
fn register_workbook() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let rows: [[&str; 9]; 3] = [
        [
            "register_id",
            "name",
            "type",
            "municipality_code",
            "provider",
            "capacity",
            "min_age",
            "max_age",
            "status",
        ],
        [
            "VR-1",
            "ЦНСТ „Надежда“ Враца",
            "ЦНСТДБУ",
            "VRC10",
            "Фондация „Надежда“",
            "4",
            "3",
            "17",
            "active",
        ],
        [
            "VR-2",
            "Кризисен център Мездра",
            "КЦ",
            "VRC21",
            "Фондация „Надежда“",
            "9",
            "7",
            "17",
            "active",
        ],
    ];
    for (r, cells) in rows.iter().enumerate() {
        for (c, cell) in cells.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            match cell.parse::<f64>() {
                Ok(n) if r > 0 => sheet.write_number(r, c, n).map(drop),
                _ => sheet.write_string(r, c, *cell).map(drop),
            }
            .expect("cell");
        }
    }
    book.save_to_buffer().expect("xlsx")
}
