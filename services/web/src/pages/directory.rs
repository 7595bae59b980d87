//! The directory as a provider's staff keep it: their services' capacity and places, and where their
//! agency is told of events (see `endpoints`).

use std::collections::HashMap;

use askama::Template;
use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use placement_proto::v1::{
    GetAgencyRequest, PageRequest, SearchServicesRequest, ServiceStatus, ServiceType,
    SocialService, UpdateCapacityRequest,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Chrome, check_csrf,
    endpoint_list::{self, EndpointRow},
    field_errors, render,
};
use crate::{AppState, WebError, i18n::Lang, names::Names, session::Session, views};

pub struct OwnService {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub capacity: u32,
    pub occupied: u32,
    pub held: u32,
    pub free: u32,
    pub version: u64,
}

/// What a page shows beyond the directory itself: a refused form's messages, a secret shown once.
#[derive(Default)]
pub struct Shown {
    /// The form refused: a service's id, an endpoint's id, or `endpoints::NEW`.
    failed: String,
    errors: HashMap<String, String>,
    /// A webhook's new signing secret: (endpoint id, secret).
    secret: Option<(String, String)>,
    /// What was entered in a refused add form: channel, address, events.
    pub entered: Option<(String, String, Vec<String>)>,
}

impl Shown {
    pub fn refusal(form: &str, errors: HashMap<String, String>) -> Self {
        Self {
            failed: form.to_string(),
            errors,
            ..Default::default()
        }
    }

    pub fn secret(endpoint: String, secret: String) -> Self {
        Self {
            secret: Some((endpoint, secret)),
            ..Default::default()
        }
    }
}

#[derive(Template)]
#[template(path = "directory.html")]
pub struct DirectoryView {
    c: Chrome,
    services: Vec<OwnService>,
    /// Whether the agency is a provider, whose page is its services; for the others, where they are told.
    provider: bool,
    may_edit: bool,
    endpoints: Vec<EndpointRow>,
    /// The add form's event boxes, with what was entered.
    new_events: Vec<(String, String, bool)>,
    new_channel: String,
    new_address: String,
    shown: Shown,
}

impl DirectoryView {
    /// The refusal of form `form` for `field` (any field starting with it), or "".
    fn err(&self, form: &str, field: &str) -> String {
        if self.shown.failed != form {
            return String::new();
        }
        let matching = |k: &String| {
            if field.is_empty() {
                k.is_empty()
            } else {
                k.starts_with(field)
            }
        };
        (self.shown.errors.iter())
            .find(|(k, _)| matching(k))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn secret_of(&self, endpoint: &str) -> String {
        match &self.shown.secret {
            Some((id, secret)) if id == endpoint => secret.clone(),
            _ => String::new(),
        }
    }
}

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
) -> Result<Response, WebError> {
    render(&view(&app, &session, lang, Shown::default()).await?)
}

pub async fn view(
    app: &AppState,
    session: &Session,
    lang: Lang,
    shown: Shown,
) -> Result<DirectoryView, WebError> {
    let may_edit = session
        .roles
        .has(placement_platform::caller::Role::DirectoryAdmin);
    let endpoints = if may_edit {
        endpoint_list::of_agency(app, session, lang).await?
    } else {
        Vec::new()
    };
    let (new_channel, new_address, new_events) = shown.entered.clone().unwrap_or_default();
    Ok(DirectoryView {
        c: Chrome::of(app, session, lang, "/directory").await,
        services: own_services(app, session)
            .await?
            .into_iter()
            .map(|s| OwnService::of(s, lang))
            .collect(),
        provider: (super::standing(app, session).await)
            .is_none_or(|s| s.kind == placement_proto::v1::AgencyKind::ServiceProvider),
        may_edit,
        endpoints,
        new_events: endpoint_list::event_choices(lang, &new_events),
        new_channel,
        new_address,
        shown,
    })
}

impl OwnService {
    fn of(s: SocialService, lang: Lang) -> Self {
        Self {
            kind: lang.t(&views::key(
                ServiceType::try_from(s.r#type)
                    .unwrap_or_default()
                    .as_str_name(),
            )),
            capacity: s.capacity,
            occupied: s.occupied_places,
            held: s.held_places,
            free: s.free_places,
            version: s.version,
            name: Names::of_service(&s).in_language(lang).to_string(),
            id: s.id,
        }
    }
}

/// The services the person's agency runs, from its district's services (at most a few pages).
async fn own_services(app: &AppState, session: &Session) -> Result<Vec<SocialService>, WebError> {
    let agency = app
        .clients
        .directory
        .clone()
        .get_agency(session.request(GetAgencyRequest {
            agency_id: session.agency_id.to_string(),
        }))
        .await?
        .into_inner();
    let mut own = Vec::new();
    let mut token = String::new();
    for _ in 0..20 {
        let asked = SearchServicesRequest {
            region_code: agency.region_code.clone(),
            status: ServiceStatus::Unspecified as i32,
            page: Some(PageRequest {
                page_size: 200,
                page_token: token,
            }),
            ..Default::default()
        };
        let page = app
            .clients
            .directory
            .clone()
            .search_services(session.request(asked))
            .await?
            .into_inner();
        own.extend(
            page.services
                .into_iter()
                .filter(|s| s.provider_agency_id == agency.id),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    Ok(own)
}

#[derive(Deserialize)]
pub struct CapacityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    capacity: String,
    #[serde(default)]
    occupied: String,
    #[serde(default)]
    version: Option<u64>,
}

pub async fn capacity(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
    Form(form): Form<CapacityForm>,
) -> Result<Response, WebError> {
    check_csrf(&session, &form.csrf)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| WebError::NotFound)?
        .to_string();
    let asked = UpdateCapacityRequest {
        service_id: id.clone(),
        // A number that does not parse is sent as none: the service names the field.
        capacity: form.capacity.trim().parse().unwrap_or(0),
        occupied_places: form.occupied.trim().parse().ok(),
        status: ServiceStatus::Unspecified as i32,
        expected_version: form.version,
    };
    match app
        .clients
        .directory
        .clone()
        .update_capacity(session.request(asked))
        .await
    {
        Ok(_) => Ok(Redirect::to("/directory").into_response()),
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::InvalidArgument
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::Aborted
            ) =>
        {
            let view = view(
                &app,
                &session,
                lang,
                Shown::refusal(&id, field_errors(&status)),
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)?).into_response())
        }
        Err(status) => Err(status.into()),
    }
}
