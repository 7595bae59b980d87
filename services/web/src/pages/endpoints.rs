//! Where an agency is told of events besides this app: its e-mail addresses and webhooks, kept by its
//! directory administrators on the directory page. The directory service decides who may and what is valid;
//! this module only turns forms into its requests and its refusals into messages next to the fields.

use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use placement_proto::v1::{
    AddNotificationEndpointRequest, EventTypeFilter, Language, NotificationChannel,
    RemoveNotificationEndpointRequest, UpdateNotificationEndpointRequest,
};
use uuid::Uuid;

use super::{
    check_csrf,
    directory::{self, Shown},
    field_errors,
};
use crate::{AppState, WebError, i18n::Lang, session::Session};

/// The form's key for the add form's refusals.
pub const NEW: &str = "new";

/// A posted endpoint form: its fields, with `events` given once per chosen box.
struct EndpointForm {
    csrf: String,
    channel: String,
    address: String,
    language: String,
    events: Vec<String>,
    action: String,
}

impl EndpointForm {
    fn of(pairs: Vec<(String, String)>) -> Self {
        let mut form = EndpointForm {
            csrf: String::new(),
            channel: String::new(),
            address: String::new(),
            language: String::new(),
            events: Vec::new(),
            action: String::new(),
        };
        for (key, value) in pairs {
            match key.as_str() {
                "csrf" => form.csrf = value,
                "channel" => form.channel = value,
                "address" => form.address = value,
                "language" => form.language = value,
                "events" => form.events.push(value),
                "action" => form.action = value,
                _ => {}
            }
        }
        form
    }

    fn language(&self) -> Language {
        match self.language.as_str() {
            "en" => Language::En,
            "bg" => Language::Bg,
            _ => Language::Unspecified,
        }
    }
}

pub async fn add(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let form = EndpointForm::of(pairs);
    check_csrf(&session, &form.csrf)?;
    let channel = match form.channel.as_str() {
        "email" => NotificationChannel::Email,
        "webhook" => NotificationChannel::Webhook,
        _ => NotificationChannel::Unspecified,
    };
    let asked = AddNotificationEndpointRequest {
        agency_id: session.agency_id.to_string(),
        channel: channel as i32,
        address: form.address.clone(),
        language: form.language() as i32,
        event_types: form.events.clone(),
    };
    let added = app
        .clients
        .directory
        .clone()
        .add_notification_endpoint(session.request(asked))
        .await;
    match added {
        // A webhook's secret is shown once, on this answer; nothing else keeps it.
        Ok(e) if !e.get_ref().secret.is_empty() => {
            let e = e.into_inner();
            shown(&app, &session, lang, Shown::secret(e.id, e.secret)).await
        }
        Ok(_) => Ok(Redirect::to("/directory#endpoints").into_response()),
        Err(status) => refused(&app, &session, lang, NEW, status, form).await,
    }
}

pub async fn change(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let form = EndpointForm::of(pairs);
    check_csrf(&session, &form.csrf)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| WebError::NotFound)?
        .to_string();
    let mut directory = app.clients.directory.clone();
    let update = |change: UpdateNotificationEndpointRequest| UpdateNotificationEndpointRequest {
        endpoint_id: id.clone(),
        ..change
    };
    let result = match form.action.as_str() {
        "remove" => {
            let asked = RemoveNotificationEndpointRequest {
                endpoint_id: id.clone(),
            };
            directory
                .remove_notification_endpoint(session.request(asked))
                .await
                .map(|_| None)
        }
        action => {
            let asked = update(match action {
                "enable" | "disable" => UpdateNotificationEndpointRequest {
                    enabled: Some(action == "enable"),
                    ..Default::default()
                },
                "rotate" => UpdateNotificationEndpointRequest {
                    rotate_secret: true,
                    ..Default::default()
                },
                "save" => UpdateNotificationEndpointRequest {
                    events: Some(EventTypeFilter {
                        event_types: form.events.clone(),
                    }),
                    language: form.language() as i32,
                    ..Default::default()
                },
                _ => return Err(WebError::NotFound),
            });
            directory
                .update_notification_endpoint(session.request(asked))
                .await
                .map(|e| Some(e.into_inner()))
        }
    };
    match result {
        Ok(Some(e)) if !e.secret.is_empty() => {
            shown(&app, &session, lang, Shown::secret(e.id, e.secret)).await
        }
        Ok(_) => Ok(Redirect::to("/directory#endpoints").into_response()),
        Err(status) => refused(&app, &session, lang, &id, status, form).await,
    }
}

async fn shown(
    app: &AppState,
    session: &Session,
    lang: Lang,
    shown: Shown,
) -> Result<Response, WebError> {
    let view = directory::view(app, session, lang, shown).await?;
    super::render(&view)
}

/// The page again with the service's refusal next to the fields it names, and the person's entries kept.
async fn refused(
    app: &AppState,
    session: &Session,
    lang: Lang,
    form_key: &str,
    status: tonic::Status,
    form: EndpointForm,
) -> Result<Response, WebError> {
    if !matches!(
        status.code(),
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition | tonic::Code::AlreadyExists
    ) {
        return Err(status.into());
    }
    let mut shown = Shown::refusal(form_key, field_errors(&status));
    if form_key == NEW {
        shown.entered = Some((form.channel, form.address, form.events));
    }
    let view = directory::view(app, session, lang, shown).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, super::render(&view)?).into_response())
}
