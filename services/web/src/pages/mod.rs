//! The pages, one module per part of the app; the frame every page shares ([`Chrome`]); error pages.

mod auth;
mod cases;
mod directory;
mod endpoint_list;
mod endpoints;
mod figures;
mod inbox;
mod referrals;
mod register;

use std::collections::HashMap;

use askama::Template;
use axum::{
    Router,
    extract::Request,
    http::{StatusCode, header},
    middleware::{Next, from_fn, from_fn_with_state},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use placement_proto::v1::{
    AgencyKind, GetAgencyRequest, GetServiceRequest, ListNotificationsRequest,
};

use crate::{
    AppState, WebError,
    error::ErrorPage,
    i18n::{self, Lang},
    security,
    session::Session,
};

pub fn router(app: AppState) -> Router {
    let policy = std::sync::Arc::new(security::Policy::new(
        &app.config.public_url,
        &app.config.oidc_issuer,
    ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/inbox") }))
        .route("/sign-in", get(auth::sign_in))
        .route("/auth/callback", get(auth::callback))
        .route("/sign-out", post(auth::sign_out))
        .route("/signed-out", get(auth::signed_out))
        .route("/language", get(auth::language))
        .route("/inbox", get(inbox::page))
        .route("/inbox/read", post(inbox::mark_read))
        .route("/inbox/events", get(inbox::events))
        .route("/referrals", get(referrals::list).post(referrals::submit))
        .route("/referrals/{id}", get(referrals::page))
        .route("/referrals/{id}/{action}", post(referrals::act))
        .route("/cases/new", get(cases::new_form))
        .route("/cases", post(cases::open))
        .route("/cases/{id}", get(cases::page))
        .route("/directory", get(directory::page))
        .route(
            "/directory/services/{id}/capacity",
            post(directory::capacity),
        )
        .route(
            "/directory/import",
            get(register::form)
                .post(register::import)
                // A register of thousands of services is a few MiB; the directory takes up to 32.
                .layer(axum::extract::DefaultBodyLimit::max(32 * 1024 * 1024)),
        )
        .route("/figures", get(figures::page))
        .route("/figures/export", get(figures::export))
        .route("/directory/endpoints", post(endpoints::add))
        .route("/directory/endpoints/{id}", post(endpoints::change))
        .route("/static/app.js", get(script))
        .route("/static/app.css", get(style))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { WebError::NotFound })
        .layer(from_fn(error_pages))
        .layer(from_fn_with_state(policy, security::headers))
        .layer(from_fn(measured))
        .with_state(app)
}

/// Every request counted by route (its pattern, so that ids do not make new series) and status, timed, and
/// traced: the calls it makes to the services are children of its span.
async fn measured(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    // Probes ask for /healthz every few seconds: they would fill the trace store.
    if route == "/healthz" {
        return next.run(request).await;
    }
    let span = tracing::info_span!(
        "http",
        otel.name = format!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let parent = request
        .headers()
        .get(placement_platform::trace_context::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    placement_platform::trace_context::adopt(&span, parent);
    let started = std::time::Instant::now();
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    let status = response.status().as_u16().to_string();
    metrics::counter!(placement_platform::prometheus::HTTP_REQUESTS, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(placement_platform::prometheus::HTTP_DURATION, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/app.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

/// What the frame of every page shows: the language, who is signed in, the unread count.
pub struct Chrome {
    pub lang: Lang,
    pub signed_in: bool,
    pub csrf: String,
    pub agency: String,
    pub unread: String,
    /// The current page, for the language links to come back to.
    pub here: String,
    /// Whether the district figures are the person's to see (an RDSA or a national authority).
    pub figures: bool,
    /// Whether the person's agency opens cases and sends referrals (a DSA): the other agencies' menus
    /// leave those pages out.
    pub sends: bool,
}

impl Chrome {
    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    pub fn t1(&self, key: &str, name: &str, value: impl ToString) -> String {
        self.lang.t1(key, name, value)
    }

    /// The other language: its code and its name (in itself).
    pub fn other_lang(&self) -> (&'static str, &'static str) {
        match self.lang {
            Lang::Bg => ("en", "English"),
            Lang::En => ("bg", "Български"),
        }
    }

    pub fn here_encoded(&self) -> String {
        crate::error::urlencode(&self.here)
    }

    /// For a page shown to someone not signed in (sign-in, signed out, errors before a session).
    pub fn anonymous(lang: Lang) -> Chrome {
        Chrome {
            lang,
            signed_in: false,
            csrf: String::new(),
            agency: String::new(),
            unread: String::new(),
            here: "/inbox".into(),
            figures: false,
            sends: false,
        }
    }

    pub async fn of(app: &AppState, session: &Session, lang: Lang, here: &str) -> Chrome {
        let unread = unread_count(app, session).await;
        let standing = standing(app, session).await;
        let figures = standing.as_ref().is_some_and(Standing::sees_figures);
        // Unknown for a moment (the directory not answering): every page is offered, as before.
        let sends = standing.as_ref().is_none_or(|s| s.kind == AgencyKind::Dsa);
        Chrome {
            lang,
            signed_in: true,
            csrf: session.csrf.clone(),
            agency: agency_name(app, session, &session.agency_id.to_string()).await,
            unread,
            here: here.to_string(),
            figures,
            sends,
        }
    }
}

/// How many unread notifications the agency has: "0" to "99", or "99+".
async fn unread_count(app: &AppState, session: &Session) -> String {
    let asked = ListNotificationsRequest {
        unread_only: true,
        page_size: 100,
        page_token: String::new(),
    };
    match app
        .clients
        .notifications
        .clone()
        .list_notifications(session.request(asked))
        .await
    {
        Ok(r) => {
            let r = r.into_inner();
            if r.notifications.len() > 99 {
                "99+".into()
            } else {
                r.notifications.len().to_string()
            }
        }
        Err(e) => {
            tracing::warn!(error = %e.message(), "unread count not known");
            "?".into()
        }
    }
}

/// What kind of agency the person's is, and its district.
#[derive(Debug, Clone)]
pub struct Standing {
    pub kind: AgencyKind,
    pub region_code: String,
}

impl Standing {
    pub fn sees_figures(&self) -> bool {
        matches!(self.kind, AgencyKind::Rdsa | AgencyKind::NationalAuthority)
    }
}

/// The standing of the person's agency, kept once read (agencies do not change kind or district).
pub async fn standing(app: &AppState, session: &Session) -> Option<Standing> {
    if let Some(s) = app.standings.get(&session.agency_id) {
        return Some(s);
    }
    let asked = GetAgencyRequest {
        agency_id: session.agency_id.to_string(),
    };
    let agency = (app.clients.directory.clone())
        .get_agency(session.request(asked))
        .await
        .ok()?
        .into_inner();
    let standing = Standing {
        kind: AgencyKind::try_from(agency.kind).unwrap_or_default(),
        region_code: agency.region_code,
    };
    app.standings.keep(session.agency_id, standing.clone());
    Some(standing)
}

/// The name of an agency.
pub async fn agency_name(app: &AppState, session: &Session, id: &str) -> String {
    let asked = GetAgencyRequest {
        agency_id: id.to_string(),
    };
    let mut directory = app.clients.directory.clone();
    let read = directory.get_agency(session.request(asked));
    name(app, id, async { read.await.map(|a| a.into_inner().name) }).await
}

/// The name of a service of the directory.
pub async fn service_name(app: &AppState, session: &Session, id: &str) -> String {
    let asked = GetServiceRequest {
        service_id: id.to_string(),
    };
    let mut directory = app.clients.directory.clone();
    let read = directory.get_service(session.request(asked));
    name(app, id, async { read.await.map(|s| s.into_inner().name) }).await
}

/// The name of the agency or service `id`, kept once `read` (names change rarely, and a page shows many);
/// its short id when it cannot be read.
async fn name(
    app: &AppState,
    id: &str,
    read: impl Future<Output = Result<String, tonic::Status>>,
) -> String {
    if id.is_empty() {
        return String::new();
    }
    if let Some(name) = app.names.get(id) {
        return name;
    }
    match read.await {
        Ok(name) => {
            app.names.keep(id.to_string(), name.clone());
            name
        }
        Err(_) => crate::views::short(id),
    }
}

/// Renders a page.
pub fn render(page: &impl Template) -> Result<Response, WebError> {
    page.render()
        .map(|html| Html(html).into_response())
        .map_err(|e| WebError::Internal(format!("template: {e}")))
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorView {
    c: Chrome,
    heading: String,
    detail: String,
    status: u16,
}

/// Gives every error answer a page in the person's language.
async fn error_pages(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let lang = i18n::of_request(&parts);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let Some(page) = response.extensions_mut().remove::<ErrorPage>() else {
        return response;
    };
    let status = response.status();
    let view = ErrorView {
        c: Chrome::anonymous(lang),
        heading: lang.t(page.key),
        detail: page.detail,
        status: status.as_u16(),
    };
    match view.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, lang.t(page.key)).into_response(),
    }
}

/// The field errors of a refused request (from the `BadRequest` details the services attach), keyed by the
/// request field they name; the status's message under "" when it names none.
pub fn field_errors(status: &tonic::Status) -> HashMap<String, String> {
    use tonic_types::StatusExt;
    let mut errors = HashMap::new();
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations {
            errors.insert(v.field, v.description);
        }
    }
    if errors.is_empty() {
        errors.insert(String::new(), status.message().to_string());
    }
    errors
}

/// Refuses a form without this session's CSRF token.
pub fn check_csrf(session: &Session, given: &str) -> Result<(), WebError> {
    if crate::session::csrf_matches(session, given) {
        Ok(())
    } else {
        Err(WebError::Csrf)
    }
}
