//! The pages, one module per part of the app; the frame every page shares ([`Chrome`]); error pages.

mod auth;
mod cases;
mod directory;
mod endpoint_list;
mod endpoints;
mod figures;
mod find;
mod inbox;
mod menu;
mod referrals;
mod register;
mod searches;

use std::collections::HashMap;

use askama::Template;
use axum::{
    Router,
    extract::{FromRequestParts, Request, State},
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
    names::Names,
    security,
    session::Session,
};
pub use menu::MenuItem;

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
        .route("/cases/{id}/search", get(searches::preview))
        .route("/searches", post(searches::submit))
        .route("/searches/{id}", get(searches::page))
        .route("/searches/{id}/confirm", post(searches::confirm))
        .route("/searches/{id}/extend", post(searches::extend))
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
        .route("/find", get(find::page))
        .route("/figures", get(figures::page))
        .route("/figures/export", get(figures::export))
        .route("/directory/endpoints", post(endpoints::add))
        .route("/directory/endpoints/{id}", post(endpoints::change))
        .route("/static/app.js", get(script))
        .route("/static/app.css", get(style))
        .route("/favicon.ico", get(favicon))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { WebError::NotFound })
        .layer(from_fn_with_state(app.clone(), error_pages))
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

/// The app's icon: an SVG (every browser the app supports shows one), at the address browsers ask for
/// unprompted; kept a day, as it changes with a release at most.
async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../static/favicon.svg"),
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
    /// The menu after the inbox, as [`menu::menu`] decides it for the agency's kind.
    pub menu: Vec<MenuItem>,
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
            menu: Vec::new(),
        }
    }

    pub async fn of(app: &AppState, session: &Session, lang: Lang, here: &str) -> Chrome {
        let unread = unread_count(app, session).await;
        let standing = standing(app, session).await;
        let figures = standing.as_ref().is_some_and(Standing::sees_figures);
        let admin = (session.roles).has(placement_platform::caller::Role::DirectoryAdmin);
        Chrome {
            lang,
            signed_in: true,
            csrf: session.csrf.clone(),
            agency: agency_name(app, session, lang, &session.agency_id.to_string()).await,
            unread,
            here: here.to_string(),
            figures,
            menu: menu::menu(standing.map(|s| s.kind), admin),
        }
    }
}

/// How many unread notifications the agency has: "0" to "99", or "99+".
async fn unread_count(app: &AppState, session: &Session) -> String {
    // Counted, not read: the words' language does not matter.
    let asked = ListNotificationsRequest {
        unread_only: true,
        page_size: 100,
        ..Default::default()
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

/// The name of an agency, in `lang`.
pub async fn agency_name(app: &AppState, session: &Session, lang: Lang, id: &str) -> String {
    let asked = GetAgencyRequest {
        agency_id: id.to_string(),
    };
    let mut directory = app.clients.directory.clone();
    let read = directory.get_agency(session.request(asked));
    let read = async { read.await.map(|a| Names::of_agency(&a.into_inner())) };
    name(app, lang, id, read).await
}

/// The name of a service of the directory, in `lang`.
pub async fn service_name(app: &AppState, session: &Session, lang: Lang, id: &str) -> String {
    let asked = GetServiceRequest {
        service_id: id.to_string(),
    };
    let mut directory = app.clients.directory.clone();
    let read = directory.get_service(session.request(asked));
    let read = async { read.await.map(|s| Names::of_service(&s.into_inner())) };
    name(app, lang, id, read).await
}

/// The name in `lang` of the agency or service `id`, its names kept once `read` (names change rarely,
/// and a page shows many); its short id when it cannot be read.
async fn name(
    app: &AppState,
    lang: Lang,
    id: &str,
    read: impl Future<Output = Result<Names, tonic::Status>>,
) -> String {
    if id.is_empty() {
        return String::new();
    }
    if let Some(names) = app.names.get(id) {
        return names.in_language(lang).to_string();
    }
    match read.await {
        Ok(names) => {
            let name = names.in_language(lang).to_string();
            app.names.keep(id.to_string(), names);
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

/// Gives every error answer a page in the person's language, with the menu and the sign-out button of
/// every page when they are signed in.
async fn error_pages(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let lang = i18n::of_request(&parts);
    // Kept to find the session again should the answer be an error: only then is it read.
    let asked = (
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
    );
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let Some(page) = response.extensions_mut().remove::<ErrorPage>() else {
        return response;
    };
    let status = response.status();
    let view = ErrorView {
        c: error_chrome(&app, lang, asked).await,
        heading: lang.t(page.key),
        detail: page.detail,
        status: status.as_u16(),
    };
    match view.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, lang.t(page.key)).into_response(),
    }
}

/// The frame of an error page: the person's, if the request came with a live session.
async fn error_chrome(
    app: &AppState,
    lang: Lang,
    (method, uri, headers): (http::Method, http::Uri, http::HeaderMap),
) -> Chrome {
    let mut request = Request::new(());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers;
    let (mut parts, ()) = request.into_parts();
    match Session::from_request_parts(&mut parts, app).await {
        Ok(session) => {
            // The language links come back to the page asked for, when it was one.
            let here = match (method == http::Method::GET, uri.path_and_query()) {
                (true, Some(pq)) => pq.as_str().to_string(),
                _ => "/inbox".to_string(),
            };
            Chrome::of(app, &session, lang, &here).await
        }
        Err(_) => Chrome::anonymous(lang),
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
