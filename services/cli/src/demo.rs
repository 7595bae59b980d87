//! The demo data set: DSAs in Sofia Province (Pirdop, Pravets, Dragoman, Zlatitsa), Vratsa, Mezdra,
//! Stara Zagora and Haskovo; an RDSA and a foster-care team in each of their districts; family-type
//! placement centres with places in Vratsa, Mezdra, Stara Zagora and Haskovo (and a full one at home, in
//! Sofia Province, which is why the request crosses districts).
//!
//! Loaded through the directory's API, on behalf of the national Agency for Social Assistance. Loading
//! twice finds what is there and creates nothing twice.

use std::collections::BTreeMap;

use placement_proto::v1::{
    AgencyKind, ContactEndpoint, CreateAgencyRequest, CreateServiceRequest, ListAgenciesRequest,
    PageRequest, SearchServicesRequest, ServiceStatus, ServiceType,
};
use uuid::Uuid;

use crate::clients::{Clients, as_agency};

/// The Agency for Social Assistance, created by the directory's first migration.
pub const NATIONAL_AUTHORITY: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_000000000001);

struct AgencySpec {
    key: &'static str,
    kind: AgencyKind,
    /// In Bulgarian, as the agency is named; `name_en` for English readers.
    name: &'static str,
    name_en: &'static str,
    municipality: &'static str,
}

struct ServiceSpec {
    key: &'static str,
    provider: &'static str,
    service_type: ServiceType,
    name: &'static str,
    name_en: &'static str,
    municipality: &'static str,
    capacity: u32,
    occupied: u32,
    ages: (u32, u32),
}

const AGENCIES: &[AgencySpec] = &[
    // A national body beside the Agency for Social Assistance: it sees the country's figures, never a
    // case or a referral.
    AgencySpec {
        key: "sacp",
        kind: AgencyKind::NationalAuthority,
        name: "Държавна агенция за закрила на детето",
        name_en: "State Agency for Child Protection",
        municipality: "",
    },
    AgencySpec {
        key: "rdsa-sofia-province",
        kind: AgencyKind::Rdsa,
        name: "Регионална дирекция за социално подпомагане – София-област",
        name_en: "RDSA Sofia Province",
        municipality: "",
    },
    AgencySpec {
        key: "rdsa-vratsa",
        kind: AgencyKind::Rdsa,
        name: "Регионална дирекция за социално подпомагане – Враца",
        name_en: "RDSA Vratsa",
        municipality: "VRC10",
    },
    AgencySpec {
        key: "rdsa-stara-zagora",
        kind: AgencyKind::Rdsa,
        name: "Регионална дирекция за социално подпомагане – Стара Загора",
        name_en: "RDSA Stara Zagora",
        municipality: "SZR31",
    },
    AgencySpec {
        key: "rdsa-haskovo",
        kind: AgencyKind::Rdsa,
        name: "Регионална дирекция за социално подпомагане – Хасково",
        name_en: "RDSA Haskovo",
        municipality: "HKV34",
    },
    AgencySpec {
        key: "foster-sofia-province",
        kind: AgencyKind::FosterCareTeam,
        name: "Екип по приемна грижа – София-област",
        name_en: "Foster-care team Sofia Province",
        municipality: "",
    },
    AgencySpec {
        key: "foster-vratsa",
        kind: AgencyKind::FosterCareTeam,
        name: "Екип по приемна грижа – Враца",
        name_en: "Foster-care team Vratsa",
        municipality: "VRC10",
    },
    AgencySpec {
        key: "foster-stara-zagora",
        kind: AgencyKind::FosterCareTeam,
        name: "Екип по приемна грижа – Стара Загора",
        name_en: "Foster-care team Stara Zagora",
        municipality: "SZR31",
    },
    AgencySpec {
        key: "foster-haskovo",
        kind: AgencyKind::FosterCareTeam,
        name: "Екип по приемна грижа – Хасково",
        name_en: "Foster-care team Haskovo",
        municipality: "HKV34",
    },
    AgencySpec {
        key: "dsa-pirdop",
        kind: AgencyKind::Dsa,
        name: "Дирекция „Социално подпомагане“ – Пирдоп",
        name_en: "DSA Pirdop",
        municipality: "SFO55",
    },
    AgencySpec {
        key: "dsa-pravets",
        kind: AgencyKind::Dsa,
        name: "Дирекция „Социално подпомагане“ – Правец",
        name_en: "DSA Pravets",
        municipality: "SFO34",
    },
    AgencySpec {
        key: "dsa-dragoman",
        kind: AgencyKind::Dsa,
        name: "Дирекция „Социално подпомагане“ – Драгоман",
        name_en: "DSA Dragoman",
        municipality: "SFO16",
    },
    AgencySpec {
        key: "dsa-zlatitsa",
        kind: AgencyKind::Dsa,
        name: "Дирекция „Социално подпомагане“ – Златица",
        name_en: "DSA Zlatitsa",
        municipality: "SFO47",
    },
    AgencySpec {
        key: "dsa-vratsa",
        kind: AgencyKind::Dsa,
        name: "Дирекция „Социално подпомагане“ – Враца",
        name_en: "DSA Vratsa",
        municipality: "VRC10",
    },
    AgencySpec {
        key: "dsa-mezdra",
        kind: AgencyKind::Dsa,
        name: "Дирекция „Социално подпомагане“ – Мездра",
        name_en: "DSA Mezdra",
        municipality: "VRC27",
    },
    AgencySpec {
        key: "dsa-stara-zagora",
        kind: AgencyKind::Dsa,
        name: "Дирекция „Социално подпомагане“ – Стара Загора",
        name_en: "DSA Stara Zagora",
        municipality: "SZR31",
    },
    AgencySpec {
        key: "dsa-haskovo",
        kind: AgencyKind::Dsa,
        name: "Дирекция „Социално подпомагане“ – Хасково",
        name_en: "DSA Haskovo",
        municipality: "HKV34",
    },
    AgencySpec {
        key: "provider-zlatitsa",
        kind: AgencyKind::ServiceProvider,
        name: "Община Златица, социални услуги",
        name_en: "Municipality of Zlatitsa, social services",
        municipality: "SFO47",
    },
    AgencySpec {
        key: "provider-vratsa",
        kind: AgencyKind::ServiceProvider,
        name: "Община Враца, социални услуги",
        name_en: "Municipality of Vratsa, social services",
        municipality: "VRC10",
    },
    AgencySpec {
        key: "provider-mezdra",
        kind: AgencyKind::ServiceProvider,
        name: "Община Мездра, социални услуги",
        name_en: "Municipality of Mezdra, social services",
        municipality: "VRC27",
    },
    AgencySpec {
        key: "provider-stara-zagora",
        kind: AgencyKind::ServiceProvider,
        name: "Сдружение „Детски дом“ – Стара Загора",
        name_en: "Association Detski Dom Stara Zagora",
        municipality: "SZR31",
    },
    AgencySpec {
        key: "provider-haskovo",
        kind: AgencyKind::ServiceProvider,
        name: "Община Хасково, социални услуги",
        name_en: "Municipality of Haskovo, social services",
        municipality: "HKV34",
    },
];

const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        key: "ftpc-zlatitsa",
        provider: "provider-zlatitsa",
        service_type: ServiceType::FamilyTypePlacementCentre,
        name: "ЦНСТДБУ Златица",
        name_en: "FTPC Zlatitsa",
        municipality: "SFO47",
        capacity: 12,
        occupied: 12,
        ages: (3, 17),
    },
    ServiceSpec {
        key: "ftpc-vratsa",
        provider: "provider-vratsa",
        service_type: ServiceType::FamilyTypePlacementCentre,
        name: "ЦНСТДБУ Враца 1",
        name_en: "FTPC Vratsa 1",
        municipality: "VRC10",
        capacity: 12,
        occupied: 8,
        ages: (0, 17),
    },
    ServiceSpec {
        key: "ftpc-mezdra",
        provider: "provider-mezdra",
        service_type: ServiceType::FamilyTypePlacementCentre,
        name: "ЦНСТДБУ Мездра",
        name_en: "FTPC Mezdra",
        municipality: "VRC27",
        capacity: 10,
        occupied: 9,
        ages: (3, 17),
    },
    ServiceSpec {
        key: "ftpcd-mezdra",
        provider: "provider-mezdra",
        service_type: ServiceType::FamilyTypePlacementCentreDisabilities,
        name: "ЦНСТДМУ Мездра",
        name_en: "FTPC for children with disabilities Mezdra",
        municipality: "VRC27",
        capacity: 14,
        occupied: 11,
        ages: (0, 17),
    },
    ServiceSpec {
        key: "ftpc-stara-zagora",
        provider: "provider-stara-zagora",
        service_type: ServiceType::FamilyTypePlacementCentre,
        name: "ЦНСТДБУ Стара Загора 2",
        name_en: "FTPC Stara Zagora 2",
        municipality: "SZR31",
        capacity: 12,
        occupied: 9,
        ages: (6, 17),
    },
    ServiceSpec {
        key: "crisis-stara-zagora",
        provider: "provider-stara-zagora",
        service_type: ServiceType::CrisisCentre,
        name: "Кризисен център за деца – Стара Загора",
        name_en: "Crisis centre Stara Zagora",
        municipality: "SZR31",
        capacity: 8,
        occupied: 3,
        ages: (3, 17),
    },
    ServiceSpec {
        key: "ftpc-haskovo",
        provider: "provider-haskovo",
        service_type: ServiceType::FamilyTypePlacementCentre,
        name: "ЦНСТДБУ Хасково",
        name_en: "FTPC Haskovo",
        municipality: "HKV34",
        capacity: 15,
        occupied: 12,
        ages: (0, 17),
    },
    ServiceSpec {
        key: "foster-care-vratsa",
        provider: "foster-vratsa",
        service_type: ServiceType::FosterCare,
        name: "Приемна грижа – Враца",
        name_en: "Foster care Vratsa",
        municipality: "VRC10",
        capacity: 20,
        occupied: 17,
        ages: (0, 17),
    },
];

/// Ids of what the demo data set holds, by key (e.g. "dsa-pirdop", "ftpc-vratsa").
#[derive(Debug, Clone, Default)]
pub struct DemoDirectory {
    pub agencies: BTreeMap<&'static str, Uuid>,
    pub services: BTreeMap<&'static str, Uuid>,
}

impl DemoDirectory {
    pub fn agency(&self, key: &str) -> Uuid {
        *self
            .agencies
            .get(key)
            .unwrap_or_else(|| panic!("no demo agency {key}"))
    }

    pub fn service(&self, key: &str) -> Uuid {
        *self
            .services
            .get(key)
            .unwrap_or_else(|| panic!("no demo service {key}"))
    }
}

fn region_of(municipality: &str, key: &str) -> String {
    if !municipality.is_empty() {
        return municipality[..3].to_string();
    }
    match key {
        k if k.ends_with("sofia-province") => "SFO".into(),
        other => panic!("demo agency {other} has no district"),
    }
}

/// Loads the demo agencies and services, each unless it is there (found by name): safe to run again.
pub async fn seed(clients: &Clients) -> Result<DemoDirectory, tonic::Status> {
    let mut directory = clients.directory.clone();
    let mut out = DemoDirectory::default();
    for spec in AGENCIES {
        let id = ensure_agency(&mut directory, spec).await?;
        out.agencies.insert(spec.key, parse_id(&id)?);
    }
    for spec in SERVICES {
        let provider = out.agency(spec.provider);
        let id = ensure_service(&mut directory, spec, provider).await?;
        out.services.insert(spec.key, parse_id(&id)?);
    }
    Ok(out)
}

fn parse_id(id: &str) -> Result<Uuid, tonic::Status> {
    Uuid::parse_str(id).map_err(|_| tonic::Status::internal("bad id"))
}

type Directory = placement_proto::v1::directory_service_client::DirectoryServiceClient<
    tonic::transport::Channel,
>;

/// The id of the demo agency `spec`, registered first if it is not there.
async fn ensure_agency(
    directory: &mut Directory,
    spec: &AgencySpec,
) -> Result<String, tonic::Status> {
    let region = match spec.kind {
        AgencyKind::NationalAuthority => String::new(),
        _ => region_of(spec.municipality, spec.key),
    };
    let existing = directory
        .list_agencies(as_agency(
            NATIONAL_AUTHORITY,
            ListAgenciesRequest {
                region_code: region.clone(),
                kind: spec.kind as i32,
                page: Some(PageRequest {
                    page_size: 500,
                    page_token: String::new(),
                }),
            },
        ))
        .await?
        .into_inner()
        .agencies
        .into_iter()
        // A directory seeded before the demo was named in Bulgarian holds the English name.
        .find(|a| a.name == spec.name || a.name == spec.name_en);
    let id = match existing {
        Some(a) => a.id,
        None => {
            let slug = spec.key.replace('-', ".");
            directory
                .create_agency(as_agency(
                    NATIONAL_AUTHORITY,
                    CreateAgencyRequest {
                        kind: spec.kind as i32,
                        name: spec.name.into(),
                        name_en: spec.name_en.into(),
                        region_code: region,
                        municipality_code: spec.municipality.into(),
                        contacts: vec![ContactEndpoint {
                            kind: "email".into(),
                            value: format!("{slug}@demo.placement.invalid"),
                        }],
                    },
                ))
                .await?
                .into_inner()
                .id
        }
    };
    Ok(id)
}

/// The id of the demo service `spec`, registered first if it is not there.
async fn ensure_service(
    directory: &mut Directory,
    spec: &ServiceSpec,
    provider: Uuid,
) -> Result<String, tonic::Status> {
    let region = &spec.municipality[..3];
    let existing = directory
        .search_services(as_agency(
            NATIONAL_AUTHORITY,
            SearchServicesRequest {
                region_code: region.into(),
                status: ServiceStatus::Active as i32,
                page: Some(PageRequest {
                    page_size: 500,
                    page_token: String::new(),
                }),
                ..Default::default()
            },
        ))
        .await?
        .into_inner()
        .services
        .into_iter()
        .find(|s| s.name == spec.name || s.name == spec.name_en);
    let id = match existing {
        Some(s) => s.id,
        None => {
            directory
                .create_service(as_agency(
                    NATIONAL_AUTHORITY,
                    CreateServiceRequest {
                        provider_agency_id: provider.to_string(),
                        r#type: spec.service_type as i32,
                        name: spec.name.into(),
                        municipality_code: spec.municipality.into(),
                        capacity: spec.capacity,
                        occupied_places: spec.occupied,
                        min_age: spec.ages.0,
                        max_age: spec.ages.1,
                        name_en: spec.name_en.into(),
                    },
                ))
                .await?
                .into_inner()
                .id
        }
    };
    Ok(id)
}

/// The demo's people, who sign in to the web app: their login at the demo's OpenID provider, their agency
/// (a demo key) and roles.
pub const PEOPLE: &[(&str, &str, &[&str])] = &[
    ("pirdop-caseworker", "dsa-pirdop", &["caseworker"]),
    ("pirdop-supervisor", "dsa-pirdop", &["supervisor"]),
    ("vratsa-provider", "provider-vratsa", &["caseworker"]),
    (
        "vratsa-director",
        "provider-vratsa",
        &["supervisor", "directory_admin"],
    ),
    ("vratsa-foster-team", "foster-vratsa", &["caseworker"]),
    ("vratsa-dsa", "dsa-vratsa", &["caseworker", "supervisor"]),
    (
        "vratsa-rdsa",
        "rdsa-vratsa",
        &["supervisor", "directory_admin"],
    ),
    ("sacp-analyst", "sacp", &["caseworker"]),
];

/// The accounts of [`PEOPLE`] as the demo's OpenID provider reads them (`deploy/oidc/provider.mjs`).
pub fn accounts(directory: &DemoDirectory) -> serde_json::Value {
    PEOPLE
        .iter()
        .map(|(login, agency, roles)| {
            let account = serde_json::json!({
                "agency_id": directory.agency(agency).to_string(),
                "roles": roles,
            });
            (login.to_string(), account)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
