//! Cases: opening one (one child or a sibling group), and a case's page, where the directory is searched
//! (district, type, age, free places) and a request is sent to the service chosen.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::Datelike;
use placement_proto::v1::{
    Case, Child, ChildNeed, GetCaseRequest, GetServiceRequest, LegalBasisKind, ListRegionsRequest,
    OpenCaseRequest, PageRequest, SearchServicesRequest, ServiceStatus, ServiceType, Sex,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, check_csrf, field_errors, render};
use crate::{AppState, WebError, i18n::Lang, names::Names, session::Session, views};

/// Rows for children on the form (no script needed to add one); empty rows are left out.
const CHILD_ROWS: usize = 4;
const NEEDS: [ChildNeed; 4] = [
    ChildNeed::Disability,
    ChildNeed::Medical,
    ChildNeed::Psychological,
    ChildNeed::Educational,
];

#[derive(Template)]
#[template(path = "case_new.html")]
struct NewCaseView {
    c: Chrome,
    rows: Vec<usize>,
    needs: Vec<(String, String)>,
    errors: HashMap<String, String>,
}

impl NewCaseView {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

fn needs(lang: Lang) -> Vec<(String, String)> {
    NEEDS
        .iter()
        .map(|n| {
            (
                n.as_str_name().to_string(),
                lang.t(&views::key(n.as_str_name())),
            )
        })
        .collect()
}

pub async fn new_form(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
) -> Result<Response, WebError> {
    render(&NewCaseView {
        c: Chrome::of(&app, &session, lang, "/cases/new").await,
        rows: (1..=CHILD_ROWS).collect(),
        needs: needs(lang),
        errors: HashMap::new(),
    })
}

/// The children typed in: fields `pseudonym_N`, `birth_year_N`, `sex_N`, `need_N` (repeated).
fn children_of(fields: &[(String, String)]) -> Vec<Child> {
    let mut rows: Vec<Child> = vec![Child::default(); CHILD_ROWS];
    for (name, value) in fields {
        let Some((field, n)) = name.rsplit_once('_') else {
            continue;
        };
        let Some(child) = n
            .parse::<usize>()
            .ok()
            .and_then(|n| rows.get_mut(n.wrapping_sub(1)))
        else {
            continue;
        };
        match field {
            "pseudonym" => child.pseudonym = value.trim().to_string(),
            "birth_year" => child.birth_year = value.trim().parse().unwrap_or(0),
            "sex" => child.sex = Sex::from_str_name(value).unwrap_or(Sex::Unspecified) as i32,
            "need" => child
                .needs
                .extend(ChildNeed::from_str_name(value).map(|n| n as i32)),
            _ => {}
        }
    }
    rows.into_iter()
        .filter(|c| !c.pseudonym.is_empty() || c.birth_year != 0)
        .collect()
}

pub async fn open(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let value = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    check_csrf(&session, &value("csrf"))?;
    let asked = OpenCaseRequest {
        children: children_of(&fields),
        current_setting: value("current_setting"),
    };
    match app
        .clients
        .cases
        .clone()
        .open_case(session.request(asked))
        .await
    {
        Ok(case) => Ok(Redirect::to(&format!("/cases/{}", case.into_inner().id)).into_response()),
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            let view = NewCaseView {
                c: Chrome::of(&app, &session, lang, "/cases/new").await,
                rows: (1..=CHILD_ROWS).collect(),
                needs: needs(lang),
                errors: field_errors(&status),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)?).into_response())
        }
        Err(status) => Err(status.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    region: String,
    #[serde(default)]
    service_type: String,
    #[serde(default)]
    age: String,
    #[serde(default)]
    places: String,
    /// The service chosen from the results: the request form is shown for it.
    #[serde(default)]
    service: String,
}

pub struct ServiceRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub region: String,
    pub free: u32,
    pub ages: String,
}

/// The request form on a case's page, as shown and as sent (to `/referrals`).
#[derive(Deserialize)]
pub struct SubmitForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub case_id: String,
    #[serde(default)]
    pub service_id: String,
    #[serde(default)]
    pub basis_kind: i32,
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub issued_on: String,
    #[serde(default)]
    pub court: String,
    #[serde(default)]
    pub reason: String,
    /// Made when the form was shown: sending the form twice submits once.
    #[serde(default)]
    pub idempotency_key: String,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CaseView {
    c: Chrome,
    id: String,
    short: String,
    status: String,
    children: Vec<(String, i32, String)>,
    /// The case's searches: their pages' ids and how they are named.
    searches: Vec<(String, String)>,
    regions: Vec<(String, String)>,
    types: Vec<(String, String)>,
    q: SearchQuery,
    results: Vec<ServiceRow>,
    chosen: Option<ServiceRow>,
    basis_kinds: Vec<(i32, String)>,
    idempotency_key: String,
    form: SubmitForm,
    errors: HashMap<String, String>,
}

impl CaseView {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, WebError> {
    let id = Uuid::parse_str(&id).map_err(|_| WebError::NotFound)?;
    let view = case_view(&app, &session, lang, &id.to_string(), q, None).await?;
    render(&view)
}

/// The case's page again, with the request form as it was sent and the service's refusals beside it.
pub async fn show_refused_submission(
    app: &AppState,
    session: &Session,
    lang: Lang,
    form: SubmitForm,
    errors: HashMap<String, String>,
) -> Result<Response, WebError> {
    let case_id = Uuid::parse_str(&form.case_id).map_err(|_| WebError::NotFound)?;
    let q = SearchQuery {
        service: form.service_id.clone(),
        ..Default::default()
    };
    let view = case_view(
        app,
        session,
        lang,
        &case_id.to_string(),
        q,
        Some((form, errors)),
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)?).into_response())
}

async fn case_view(
    app: &AppState,
    session: &Session,
    lang: Lang,
    id: &str,
    q: SearchQuery,
    refused: Option<(SubmitForm, HashMap<String, String>)>,
) -> Result<CaseView, WebError> {
    let case = app
        .clients
        .cases
        .clone()
        .get_case(session.request(GetCaseRequest {
            case_id: id.to_string(),
        }))
        .await?
        .into_inner();
    let results = if q.region.is_empty() && q.service_type.is_empty() && q.age.is_empty() {
        Vec::new()
    } else {
        search(app, session, lang, &case, &q).await?
    };
    let chosen = chosen_service(app, session, lang, &q.service).await;
    let regions = regions(app, session, lang).await;
    // The district by its name, as people say it: the codes are the exchange's.
    let named = |mut row: ServiceRow| {
        if let Some(r) = regions.iter().find(|r| r.0 == row.region) {
            row.region = r.1.clone();
        }
        row
    };
    let (results, chosen) = (results.into_iter().map(named).collect(), chosen.map(named));
    let (form, errors) = refused.unwrap_or_else(|| (blank_form(), HashMap::new()));
    Ok(CaseView {
        c: Chrome::of(app, session, lang, &format!("/cases/{id}")).await,
        id: case.id.clone(),
        short: views::named(&case.reference, &case.id),
        status: lang.t(&views::key(
            placement_proto::v1::CaseStatus::try_from(case.status)
                .unwrap_or_default()
                .as_str_name(),
        )),
        children: case
            .children
            .iter()
            .map(|c| {
                (
                    c.pseudonym.clone(),
                    c.birth_year,
                    views::needs(lang, &c.needs),
                )
            })
            .collect(),
        searches: of_case(app, session, lang, &case.id).await,
        regions,
        types: service_types(lang),
        results,
        chosen,
        basis_kinds: [
            LegalBasisKind::DsaDirectorOrder,
            LegalBasisKind::CourtDecision,
        ]
        .iter()
        .map(|k| (*k as i32, lang.t(&views::key(k.as_str_name()))))
        .collect(),
        idempotency_key: if form.idempotency_key.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            form.idempotency_key.clone()
        },
        q,
        form,
        errors,
    })
}

fn blank_form() -> SubmitForm {
    SubmitForm {
        csrf: String::new(),
        case_id: String::new(),
        service_id: String::new(),
        basis_kind: LegalBasisKind::DsaDirectorOrder as i32,
        number: String::new(),
        issued_on: chrono::Utc::now().date_naive().to_string(),
        court: String::new(),
        reason: String::new(),
        idempotency_key: String::new(),
    }
}

fn service_types(lang: Lang) -> Vec<(String, String)> {
    [
        ServiceType::FamilyTypePlacementCentre,
        ServiceType::FamilyTypePlacementCentreDisabilities,
        ServiceType::CrisisCentre,
        ServiceType::FosterCare,
    ]
    .iter()
    .map(|t| {
        (
            t.as_str_name().to_string(),
            lang.t(&views::key(t.as_str_name())),
        )
    })
    .collect()
}

pub(super) async fn regions(
    app: &AppState,
    session: &Session,
    lang: Lang,
) -> Vec<(String, String)> {
    match app
        .clients
        .directory
        .clone()
        .list_regions(session.request(ListRegionsRequest {}))
        .await
    {
        Ok(r) => r
            .into_inner()
            .regions
            .into_iter()
            .map(|r| {
                let name = match lang {
                    Lang::Bg => r.name_bg,
                    Lang::En => r.name_en,
                };
                (r.code, name)
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn service_row(lang: Lang, s: placement_proto::v1::SocialService) -> ServiceRow {
    let kind = ServiceType::try_from(s.r#type).unwrap_or_default();
    ServiceRow {
        kind: lang.t(&views::key(kind.as_str_name())),
        ages: format!("{}–{}", s.min_age, s.max_age),
        free: s.free_places,
        name: Names::of_service(&s).in_language(lang).to_string(),
        region: s.region_code,
        id: s.id,
    }
}

async fn search(
    app: &AppState,
    session: &Session,
    lang: Lang,
    case: &Case,
    q: &SearchQuery,
) -> Result<Vec<ServiceRow>, WebError> {
    let youngest = case.children.iter().map(|c| c.birth_year).max();
    let age = match q.age.trim().parse::<u32>() {
        Ok(a) => Some(a),
        Err(_) => {
            youngest.and_then(|y| u32::try_from(chrono::Utc::now().year().saturating_sub(y)).ok())
        }
    };
    let places = q
        .places
        .trim()
        .parse()
        .unwrap_or_else(|_| u32::try_from(case.children.len()).unwrap_or(1));
    let asked = SearchServicesRequest {
        region_code: q.region.clone(),
        service_type: ServiceType::from_str_name(&q.service_type).unwrap_or_default() as i32,
        min_free_places: places,
        child_age: age,
        status: ServiceStatus::Active as i32,
        page: Some(PageRequest {
            page_size: 25,
            page_token: String::new(),
        }),
        ..Default::default()
    };
    let found = app
        .clients
        .directory
        .clone()
        .search_services(session.request(asked))
        .await?
        .into_inner();
    Ok(found
        .services
        .into_iter()
        .map(|s| service_row(lang, s))
        .collect())
}

async fn chosen_service(
    app: &AppState,
    session: &Session,
    lang: Lang,
    id: &str,
) -> Option<ServiceRow> {
    Uuid::parse_str(id).ok()?;
    let asked = GetServiceRequest {
        service_id: id.to_string(),
    };
    let s = app
        .clients
        .directory
        .clone()
        .get_service(session.request(asked))
        .await
        .ok()?;
    Some(service_row(lang, s.into_inner()))
}

/// The searches of a case, newest first, each with when it was sent and how many services it asked:
/// read from the sender's latest referrals (the referrals service lists no searches by case), so a search
/// older than the agency's last 500 referrals is not linked from the case's page; the referrals of it link
/// to it still.
pub async fn of_case(
    app: &AppState,
    session: &Session,
    lang: Lang,
    case_id: &str,
) -> Vec<(String, String)> {
    use placement_proto::v1::{ListReferralsRequest, PageRequest, ReferralDirection};
    let asked = ListReferralsRequest {
        direction: ReferralDirection::Outgoing as i32,
        page: Some(PageRequest {
            page_size: 500,
            page_token: String::new(),
        }),
        ..Default::default()
    };
    let Ok(listed) = (app.clients.referrals.clone())
        .list_referrals(session.request(asked))
        .await
    else {
        return Vec::new();
    };
    let mut searches: Vec<(String, String, usize)> = Vec::new();
    for r in listed.into_inner().referrals {
        if r.case_id != case_id || r.search_id.is_empty() {
            continue;
        }
        match searches.iter_mut().find(|s| s.0 == r.search_id) {
            Some(s) => {
                s.2 += 1;
                // Newest first: the last seen is the earliest, when the search was sent.
                s.1 = views::time(r.created_at.as_ref());
            }
            None => searches.push((r.search_id, views::time(r.created_at.as_ref()), 1)),
        }
    }
    (searches.into_iter())
        .map(|(id, at, n)| {
            let label = lang.t1("search-of-case", "count", n);
            (id, format!("{at} — {label}"))
        })
        .collect()
}
