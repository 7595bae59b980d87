//! Searches: one request for a case's children sent to several services at once. From the case's directory
//! results the DSA ticks services and sees the search's preview (the services ticked with their free
//! places, and the others that fit now) before sending it; the search's page then sets every request side
//! by side (who acknowledged, offered, declined and why, waits and why, has not answered and how late),
//! offers "confirm this one" on each offer, and, once the search ran out, the services that fit now for a
//! new round. The services decide who may do what; the pages only choose what to offer.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use placement_platform::caller::Act;
use placement_proto::v1::{
    DeclineReason, ExtendSearchRequest, GetCaseRequest, GetSearchRequest, GetServiceRequest,
    LegalBasis, LegalBasisKind, PreviewSearchRequest, PreviewSearchResponse, Referral,
    ReferralStatus, ReferralStepName, Search, ServiceType, SubmitSearchRequest, Urgency,
    WithdrawReason,
};
use uuid::Uuid;

use super::{Chrome, agency_name, cases, check_csrf, field_errors, render, service_name};
use crate::{AppState, WebError, i18n::Lang, names::Names, session::Session, views};

/// The most services one search (or one round of it) asks; the referrals service refuses more.
const MOST_SERVICES: usize = 10;

const URGENCIES: [Urgency; 3] = [Urgency::Routine, Urgency::Urgent, Urgency::Emergency];

/// A service that may be ticked: on the preview, and among the services suggested for a new round.
pub struct PickRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub region: String,
    pub free: u32,
    pub ages: String,
    /// The referrals service does not count it among the services that fit the children now.
    pub unfit: bool,
    /// Why the service refused the search for this service.
    pub error: String,
}

/// The search as typed on the preview, and as sent (to `/searches`).
#[derive(Default)]
pub struct SearchForm {
    case_id: String,
    services: Vec<String>,
    regions: Vec<String>,
    basis_kind: i32,
    number: String,
    issued_on: String,
    court: String,
    reason: String,
    urgency: i32,
    /// The day the children need a place by (YYYY-MM-DD); empty when not given.
    needed_by: String,
    /// Made when the preview was shown: sending the form twice sends one search.
    idempotency_key: String,
}

impl SearchForm {
    /// A new search of `case_id` to `services` (ids, in the order ticked), in `regions` (district codes).
    fn new(case_id: String, fields: &[(String, String)]) -> SearchForm {
        SearchForm {
            case_id,
            services: values(fields, "service"),
            regions: values(fields, "region"),
            basis_kind: LegalBasisKind::DsaDirectorOrder as i32,
            issued_on: Utc::now().date_naive().to_string(),
            urgency: Urgency::Routine as i32,
            idempotency_key: Uuid::new_v4().to_string(),
            ..SearchForm::default()
        }
    }

    /// The form as sent; numbers that are none are sent as 0, which the service names.
    fn of_fields(fields: &[(String, String)]) -> SearchForm {
        let one = |k: &str| values(fields, k).into_iter().next().unwrap_or_default();
        SearchForm {
            case_id: one("case_id"),
            services: values(fields, "service"),
            regions: values(fields, "region"),
            basis_kind: one("basis_kind").parse().unwrap_or(0),
            number: one("number"),
            issued_on: one("issued_on"),
            court: one("court"),
            reason: one("reason"),
            urgency: one("urgency").parse().unwrap_or(0),
            needed_by: one("needed_by"),
            idempotency_key: one("idempotency_key"),
        }
    }

    /// The preview's own address, for the language links to come back to.
    fn here(&self) -> String {
        let ticked = (self.services.iter().map(|s| ("service", s)))
            .chain(self.regions.iter().map(|r| ("region", r)));
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(ticked)
            .finish();
        format!("/cases/{}/search?{query}", self.case_id)
    }

    fn request(&self) -> SubmitSearchRequest {
        SubmitSearchRequest {
            case_id: self.case_id.clone(),
            service_ids: self.services.clone(),
            legal_basis: Some(LegalBasis {
                kind: self.basis_kind,
                number: self.number.clone(),
                issued_on: views::parse_date(&self.issued_on),
                court: self.court.clone(),
            }),
            reason: self.reason.clone(),
            idempotency_key: self.idempotency_key.clone(),
            region_codes: self.regions.clone(),
            urgency: self.urgency,
            // A day that is none is sent as no calendar date, which the service names.
            needed_by: (!self.needed_by.trim().is_empty())
                .then(|| views::parse_date(&self.needed_by).unwrap_or_default()),
        }
    }
}

/// Every non-empty value of field `name`, in the order sent, each once.
fn values(fields: &[(String, String)], name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, v) in fields.iter().filter(|(n, _)| n == name) {
        let v = v.trim().to_string();
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

#[derive(Template)]
#[template(path = "search_new.html")]
struct PreviewView {
    c: Chrome,
    case_id: String,
    case_short: String,
    rows: Vec<PickRow>,
    also: Vec<PickRow>,
    too_many: bool,
    basis_kinds: Vec<(i32, String)>,
    urgencies: Vec<(i32, String)>,
    form: SearchForm,
    errors: HashMap<String, String>,
}

impl PreviewView {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

/// The preview of a search of the case to the services ticked on its page (`service`, repeated).
pub async fn preview(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
    Query(fields): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let id = Uuid::parse_str(&id).map_err(|_| WebError::NotFound)?;
    let form = SearchForm::new(id.to_string(), &fields);
    render(&preview_view(&app, &session, lang, form, HashMap::new()).await?)
}

/// Sends the search; its page follows. Refused, the preview again with the refusals beside the fields.
pub async fn submit(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let csrf = values(&fields, "csrf")
        .into_iter()
        .next()
        .unwrap_or_default();
    check_csrf(&session, &csrf)?;
    let form = SearchForm::of_fields(&fields);
    Uuid::parse_str(&form.case_id).map_err(|_| WebError::NotFound)?;
    let sent = (app.clients.referrals.clone())
        .submit_search(session.request(form.request()))
        .await;
    match sent {
        Ok(s) => Ok(Redirect::to(&format!("/searches/{}", s.into_inner().id)).into_response()),
        Err(status) if is_field_error(&status) => {
            let view = preview_view(&app, &session, lang, form, field_errors(&status)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)?).into_response())
        }
        Err(status) => Err(status.into()),
    }
}

fn is_field_error(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition
    )
}

async fn preview_view(
    app: &AppState,
    session: &Session,
    lang: Lang,
    form: SearchForm,
    mut errors: HashMap<String, String>,
) -> Result<PreviewView, WebError> {
    let case = (app.clients.cases.clone())
        .get_case(session.request(GetCaseRequest {
            case_id: form.case_id.clone(),
        }))
        .await?
        .into_inner();
    let regions = cases::regions(app, session, lang).await;
    let mut rows = Vec::new();
    for (index, id) in form.services.iter().enumerate() {
        let error = errors.remove(&format!("service_ids[{index}]"));
        match service_row(app, session, lang, id).await {
            Some(row) => rows.push(PickRow {
                error: error.unwrap_or_default(),
                ..row
            }),
            // A service the directory does not know has no row to say it beside.
            None => {
                if let Some(e) = error {
                    errors.insert(String::new(), e);
                }
            }
        }
    }
    let fits = fitting(app, session, &case.id, &rows, &form.regions).await;
    let mut also = match fits {
        Ok(fits) => mark_fits(app, session, lang, &mut rows, fits).await,
        Err(status) => {
            errors
                .entry(String::new())
                .or_insert(status.message().into());
            Vec::new()
        }
    };
    for row in rows.iter_mut().chain(also.iter_mut()) {
        shown(lang, row, &regions);
    }
    Ok(PreviewView {
        c: Chrome::of(app, session, lang, &form.here()).await,
        case_short: views::named(&case.reference, &case.id),
        case_id: case.id,
        too_many: form.services.len() > MOST_SERVICES,
        rows,
        also,
        basis_kinds: [
            LegalBasisKind::DsaDirectorOrder,
            LegalBasisKind::CourtDecision,
        ]
        .iter()
        .map(|k| (*k as i32, lang.t(&views::key(k.as_str_name()))))
        .collect(),
        urgencies: URGENCIES
            .iter()
            .map(|u| (*u as i32, lang.t(&urgency_key(*u))))
            .collect(),
        form,
        errors,
    })
}

/// The services that fit the case's children now, of the types and in the districts of those ticked
/// (or the districts the DSA searched in), as the referrals service will judge them.
async fn fitting(
    app: &AppState,
    session: &Session,
    case_id: &str,
    rows: &[PickRow],
    regions: &[String],
) -> Result<PreviewSearchResponse, tonic::Status> {
    let mut types: Vec<i32> = Vec::new();
    let mut districts: Vec<String> = regions.to_vec();
    for row in rows {
        let kind = ServiceType::from_str_name(&row.kind).map_or(0, |t| t as i32);
        if !types.contains(&kind) {
            types.push(kind);
        }
        if regions.is_empty() && !districts.contains(&row.region) {
            districts.push(row.region.clone());
        }
    }
    if types.is_empty() {
        return Ok(PreviewSearchResponse::default());
    }
    let asked = PreviewSearchRequest {
        case_id: case_id.to_string(),
        service_types: types,
        region_codes: districts,
    };
    (app.clients.referrals.clone())
        .preview_search(session.request(asked))
        .await
        .map(|r| r.into_inner())
}

/// Marks the ticked services the preview leaves out (only when it is whole: it lists at most ten) and
/// takes their free places from it; returns the services that fit and were not ticked.
async fn mark_fits(
    app: &AppState,
    session: &Session,
    lang: Lang,
    rows: &mut [PickRow],
    fits: PreviewSearchResponse,
) -> Vec<PickRow> {
    let whole = fits.services.len() < MOST_SERVICES;
    for row in rows.iter_mut() {
        let fit = fits.services.iter().find(|f| f.service_id == row.id);
        if let Some(f) = fit {
            row.free = f.free_places;
        }
        row.unfit = whole && fit.is_none();
    }
    let mut also = Vec::new();
    for f in fits.services {
        if rows.iter().any(|r| r.id == f.service_id) {
            continue;
        }
        let kind = ServiceType::try_from(f.service_type).unwrap_or_default();
        also.push(PickRow {
            name: service_name(app, session, lang, &f.service_id).await,
            kind: kind.as_str_name().to_string(),
            region: f.region_code,
            free: f.free_places,
            ages: format!("{}–{}", f.min_age, f.max_age),
            unfit: false,
            error: String::new(),
            id: f.service_id,
        });
    }
    also
}

/// The row as people read it: the type and the district by name (kept as codes until shown).
fn shown(lang: Lang, row: &mut PickRow, regions: &[(String, String)]) {
    row.kind = lang.t(&views::key(&row.kind));
    if let Some((_, name)) = regions.iter().find(|(code, _)| *code == row.region) {
        row.region = name.clone();
    }
}

/// A service of the directory as a row to tick (its type and district as codes); `None` if it cannot be read.
async fn service_row(app: &AppState, session: &Session, lang: Lang, id: &str) -> Option<PickRow> {
    Uuid::parse_str(id).ok()?;
    let s = (app.clients.directory.clone())
        .get_service(session.request(GetServiceRequest {
            service_id: id.to_string(),
        }))
        .await
        .ok()?
        .into_inner();
    let kind = ServiceType::try_from(s.r#type).unwrap_or_default();
    Some(PickRow {
        name: Names::of_service(&s).in_language(lang).to_string(),
        kind: kind.as_str_name().to_string(),
        region: s.region_code.clone(),
        free: s.free_places,
        ages: format!("{}–{}", s.min_age, s.max_age),
        unfit: false,
        error: String::new(),
        id: s.id,
    })
}

fn urgency_key(u: Urgency) -> String {
    match u {
        Urgency::Urgent => "search-urgency-urgent",
        Urgency::Emergency => "search-urgency-emergency",
        Urgency::Routine | Urgency::Unspecified => "search-urgency-routine",
    }
    .to_string()
}

/// One request of a search as its sender compares it with the others.
pub struct RequestRow {
    pub id: String,
    pub reference: String,
    pub service: String,
    pub district: String,
    pub round: u32,
    /// The status's proto name (for the page's styles and tests), and in words.
    pub status_name: String,
    pub status: String,
    pub acks: Vec<String>,
    pub answer: String,
    pub waiting: String,
    /// The open step and how long until its deadline, or how late.
    pub late: String,
    pub overdue: bool,
    /// An offer: accepted, its places held.
    pub offer: bool,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchView {
    c: Chrome,
    id: String,
    case_id: String,
    case_short: String,
    created: String,
    urgency: String,
    /// The day the children need a place by; empty when not given.
    needed_by: String,
    rounds: u32,
    placed: bool,
    exhausted: String,
    rows: Vec<RequestRow>,
    suggestions: Vec<PickRow>,
    may_confirm: bool,
    may_extend: bool,
    extend_key: String,
    error: String,
}

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = Uuid::parse_str(&id).map_err(|_| WebError::NotFound)?;
    let search = get_search(&app, &session, &id.to_string()).await?;
    render(&search_view(&app, &session, lang, search, String::new()).await)
}

async fn get_search(app: &AppState, session: &Session, id: &str) -> Result<Search, WebError> {
    let asked = GetSearchRequest {
        search_id: id.to_string(),
    };
    Ok((app.clients.referrals.clone())
        .get_search(session.request(asked))
        .await?
        .into_inner())
}

async fn search_view(
    app: &AppState,
    session: &Session,
    lang: Lang,
    search: Search,
    error: String,
) -> SearchView {
    let regions = cases::regions(app, session, lang).await;
    let case = (app.clients.cases.clone())
        .get_case(session.request(GetCaseRequest {
            case_id: search.case_id.clone(),
        }))
        .await
        .map(|c| c.into_inner().reference)
        .unwrap_or_default();
    let mut rows = Vec::new();
    for r in &search.referrals {
        rows.push(request_row(app, session, lang, r, &regions).await);
    }
    let placed = !search.placed_referral_id.is_empty();
    let exhausted = search.exhausted_at.is_some() && !placed;
    let mut suggestions = Vec::new();
    if exhausted {
        for id in &search.suggested_service_ids {
            if let Some(mut row) = service_row(app, session, lang, id).await {
                shown(lang, &mut row, &regions);
                suggestions.push(row);
            }
        }
    }
    let urgency = (search.referrals.first())
        .and_then(|r| Urgency::try_from(r.urgency).ok())
        .unwrap_or(Urgency::Routine);
    SearchView {
        c: Chrome::of(app, session, lang, &format!("/searches/{}", search.id)).await,
        case_short: views::named(&case, &search.case_id),
        case_id: search.case_id,
        created: views::time(search.created_at.as_ref()),
        urgency: lang.t(&urgency_key(urgency)),
        needed_by: search
            .needed_by
            .as_ref()
            .map(views::date)
            .unwrap_or_default(),
        rounds: search.rounds,
        placed,
        exhausted: if exhausted {
            lang.t1(
                "search-exhausted",
                "span",
                views::time(search.exhausted_at.as_ref()),
            )
        } else {
            String::new()
        },
        rows,
        suggestions,
        may_confirm: !placed && session.may(Act::Decide),
        may_extend: exhausted && session.may(Act::Work),
        extend_key: Uuid::new_v4().to_string(),
        error,
        id: search.id,
    }
}

async fn request_row(
    app: &AppState,
    session: &Session,
    lang: Lang,
    r: &Referral,
    regions: &[(String, String)],
) -> RequestRow {
    let status = ReferralStatus::try_from(r.status).unwrap_or(ReferralStatus::Unspecified);
    let mut acks = Vec::new();
    for a in &r.acknowledgements {
        let at = match &a.acknowledged_at {
            Some(t) => views::time(Some(t)),
            None => lang.t("ack-outstanding"),
        };
        acks.push(format!(
            "{}: {at}",
            agency_name(app, session, lang, &a.agency_id).await
        ));
    }
    let (late, overdue) = step_due(lang, r);
    RequestRow {
        reference: views::named(&r.reference, &r.id),
        service: service_name(app, session, lang, &r.service_id).await,
        district: (regions.iter())
            .find(|(code, _)| *code == r.receiving_region_code)
            .map_or_else(|| r.receiving_region_code.clone(), |(_, n)| n.clone()),
        round: r.search_round,
        status_name: status.as_str_name().to_string(),
        status: lang.t(&views::key(status.as_str_name())),
        acks,
        answer: answer(lang, r, status),
        waiting: views::waiting_text(lang, r),
        late,
        overdue,
        offer: status == ReferralStatus::Accepted,
        id: r.id.clone(),
    }
}

/// What the service answered: an offer, a decline and why, the sender's withdrawal and why (placed
/// elsewhere, when another request of the search was confirmed), or nothing yet.
fn answer(lang: Lang, r: &Referral, status: ReferralStatus) -> String {
    let reason = match status {
        ReferralStatus::Submitted | ReferralStatus::Acknowledged => {
            return lang.t("search-not-answered");
        }
        ReferralStatus::Accepted => return lang.t("search-offer"),
        ReferralStatus::Placed => return lang.t("search-chosen"),
        ReferralStatus::Declined => (DeclineReason::try_from(r.decline_reason).ok())
            .filter(|d| *d != DeclineReason::Unspecified)
            .map(|d| lang.t(&views::key(d.as_str_name())))
            .unwrap_or_default(),
        ReferralStatus::Withdrawn => (WithdrawReason::try_from(r.withdraw_reason).ok())
            .filter(|w| *w != WithdrawReason::Unspecified)
            .map(|w| lang.t(&views::key(w.as_str_name())))
            .unwrap_or_default(),
        ReferralStatus::Unspecified => return String::new(),
    };
    if r.resolution_comment.is_empty() {
        reason
    } else {
        format!("{reason}: {}", r.resolution_comment)
    }
}

/// The open step and its deadline counting down, or how late it is; whether it is late.
fn step_due(lang: Lang, r: &Referral) -> (String, bool) {
    let step = ReferralStepName::try_from(r.step).unwrap_or(ReferralStepName::Unspecified);
    let key = match step {
        ReferralStepName::Acknowledgement => "search-step-acknowledgement",
        ReferralStepName::Decision => "search-step-decision",
        ReferralStepName::Confirmation => "search-step-confirmation",
        ReferralStepName::Arrival => "search-step-arrival",
        ReferralStepName::Unspecified => return (String::new(), false),
    };
    let (due, overdue) = views::countdown(lang, r.step_deadline.as_ref(), Utc::now());
    if due.is_empty() {
        (lang.t(key), false)
    } else {
        (format!("{}: {due}", lang.t(key)), overdue || r.escalated)
    }
}

/// The confirmation of one offer of the search, from its page.
#[derive(serde::Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    referral_id: String,
}

/// Confirms the placement of one referral of the search (the service closes the others as placed
/// elsewhere); the search's page follows, with the refusal on it if refused.
pub async fn confirm(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    check_csrf(&session, &form.csrf)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| WebError::NotFound)?
        .to_string();
    let search = get_search(&app, &session, &id).await?;
    // Only a referral of this search is confirmed from its page.
    if !search.referrals.iter().any(|r| r.id == form.referral_id) {
        return Err(WebError::NotFound);
    }
    // No fallback offered from here yet: every other open request is closed as placed elsewhere.
    let asked = placement_proto::v1::ConfirmPlacementRequest {
        referral_id: form.referral_id,
        ..Default::default()
    };
    let confirmed = (app.clients.referrals.clone())
        .confirm_placement(session.request(asked))
        .await;
    after(&app, &session, lang, &id, confirmed.map(drop), &[]).await
}

/// Sends a new round of the search to the services ticked (`service`, repeated).
pub async fn extend(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let csrf = values(&fields, "csrf")
        .into_iter()
        .next()
        .unwrap_or_default();
    check_csrf(&session, &csrf)?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| WebError::NotFound)?
        .to_string();
    let services = values(&fields, "service");
    let asked = ExtendSearchRequest {
        search_id: id.clone(),
        service_ids: services.clone(),
        idempotency_key: values(&fields, "idempotency_key")
            .into_iter()
            .next()
            .unwrap_or_default(),
    };
    let extended = (app.clients.referrals.clone())
        .extend_search(session.request(asked))
        .await;
    after(&app, &session, lang, &id, extended.map(drop), &services).await
}

/// The search's page after an action on it: again from the start when it was taken, else with the
/// refusal (a service of `services` named by its name where the refusal names its position).
async fn after(
    app: &AppState,
    session: &Session,
    lang: Lang,
    id: &str,
    taken: Result<(), tonic::Status>,
    services: &[String],
) -> Result<Response, WebError> {
    match taken {
        Ok(()) => Ok(Redirect::to(&format!("/searches/{id}")).into_response()),
        Err(status) if is_field_error(&status) => {
            let mut said = Vec::new();
            for (field, description) in field_errors(&status) {
                let named = match field.strip_prefix("service_ids[") {
                    Some(rest) => {
                        let index: usize = rest.trim_end_matches(']').parse().unwrap_or(usize::MAX);
                        match services.get(index) {
                            Some(s) => service_name(app, session, lang, s).await,
                            None => field,
                        }
                    }
                    None => field,
                };
                said.push(if named.is_empty() {
                    description
                } else {
                    format!("{named}: {description}")
                });
            }
            let search = get_search(app, session, id).await?;
            let view = search_view(app, session, lang, search, said.join("; ")).await;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)?).into_response())
        }
        Err(status) => Err(status.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticked_services_keep_their_order_once_each() {
        let fields: Vec<(String, String)> = [("service", "b"), ("csrf", "x"), ("service", " a ")]
            .into_iter()
            .chain([("service", "b"), ("service", "")])
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(values(&fields, "service"), ["b", "a"]);
        assert!(values(&fields, "region").is_empty());
    }

    #[test]
    fn a_wait_is_told_with_its_comment_and_day() {
        let mut r = Referral::default();
        assert_eq!(views::waiting_text(Lang::Bg, &r), "");
        r.waiting_reason = placement_proto::v1::WaitingReason::PlaceFreeing as i32;
        r.waiting_comment = "стая 3".into();
        r.waiting_until = Some(placement_proto::v1::Date {
            year: 2026,
            month: 12,
            day: 9,
        });
        assert_eq!(
            views::waiting_text(Lang::Bg, &r),
            "Място ще се освободи: стая 3 (до 09.12.2026)"
        );
        assert_eq!(
            views::waiting_text(Lang::En, &r),
            "A place is freeing: стая 3 (until 09.12.2026)"
        );
    }

    #[test]
    fn each_answer_is_told_apart() {
        let mut r = Referral {
            withdraw_reason: WithdrawReason::PlacedElsewhere as i32,
            ..Referral::default()
        };
        assert_eq!(
            answer(Lang::Bg, &r, ReferralStatus::Withdrawn),
            "Настанени другаде"
        );
        r.decline_reason = DeclineReason::AtCapacity as i32;
        r.resolution_comment = "до март".into();
        assert_eq!(
            answer(Lang::En, &r, ReferralStatus::Declined),
            "No free places: до март"
        );
        assert_eq!(
            answer(Lang::Bg, &r, ReferralStatus::Accepted),
            "Предлага място; местата са запазени"
        );
        assert_eq!(
            answer(Lang::Bg, &r, ReferralStatus::Acknowledged),
            "Без отговор"
        );
    }
}
