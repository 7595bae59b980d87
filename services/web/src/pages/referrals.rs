//! Referrals: the lists (received and sent, by status, a page at a time), a referral's page with exactly
//! the steps this person may take now, the steps themselves as forms, and submission from a case's page.

use std::collections::HashMap;

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use placement_model::referral::{ReferralState, StepKind, StepWeight};
use placement_platform::caller::Act;
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, ConfirmPlacementRequest, DeclineReason,
    DeclineReferralRequest, GetCaseRequest, GetReferralRequest, LegalBasis, LegalBasisKind,
    ListReferralsRequest, PageRequest, PostponeStepRequest, RecordArrivalRequest,
    RecordCourtDecisionRequest, Referral, ReferralAction, ReferralDirection, ReferralStatus,
    SubmitReferralRequest, WithdrawReason, WithdrawReferralRequest,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    Chrome, agency_name,
    cases::{self, SubmitForm},
    check_csrf, field_errors, render, service_name,
};
use crate::{AppState, WebError, i18n::Lang, session::Session, views};

pub struct Row {
    pub id: String,
    pub short: String,
    pub status: String,
    pub service: String,
    pub counterpart: String,
    pub places: u32,
    pub deadline: String,
    pub overdue: bool,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "referrals.html")]
struct ListView {
    c: Chrome,
    rows: Vec<Row>,
    incoming: bool,
    status: String,
    statuses: Vec<(String, String)>,
    next_page: String,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    direction: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: String,
}

const STATUSES: [ReferralStatus; 6] = [
    ReferralStatus::Submitted,
    ReferralStatus::Acknowledged,
    ReferralStatus::Accepted,
    ReferralStatus::Declined,
    ReferralStatus::Placed,
    ReferralStatus::Withdrawn,
];

pub async fn list(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let incoming = q.direction != "outgoing";
    let status = ReferralStatus::from_str_name(&q.status).unwrap_or(ReferralStatus::Unspecified);
    let asked = ListReferralsRequest {
        direction: if incoming {
            ReferralDirection::Incoming
        } else {
            ReferralDirection::Outgoing
        } as i32,
        status: status as i32,
        page: Some(PageRequest {
            page_size: 25,
            page_token: q.page,
        }),
        ..Default::default()
    };
    let listed = app
        .clients
        .referrals
        .clone()
        .list_referrals(session.request(asked))
        .await?
        .into_inner();
    let mut rows = Vec::new();
    for r in listed.referrals {
        rows.push(row(&app, &session, lang, r, incoming).await);
    }
    render(&ListView {
        c: Chrome::of(&app, &session, lang, "/referrals").await,
        rows,
        incoming,
        status: if status == ReferralStatus::Unspecified {
            String::new()
        } else {
            status.as_str_name().to_string()
        },
        statuses: STATUSES
            .iter()
            .map(|s| {
                (
                    s.as_str_name().to_string(),
                    lang.t(&views::key(s.as_str_name())),
                )
            })
            .collect(),
        next_page: listed.next_page_token,
    })
}

fn status_of(r: &Referral) -> ReferralStatus {
    ReferralStatus::try_from(r.status).unwrap_or(ReferralStatus::Unspecified)
}

/// The acknowledgement deadline as shown while acknowledgements are awaited (counting down, or how long
/// overdue), and whether the referral is late: overdue, or escalated.
fn deadline(lang: Lang, r: &Referral) -> (String, bool) {
    let (text, overdue) = if status_of(r) == ReferralStatus::Submitted {
        views::countdown(lang, r.acknowledgement_deadline.as_ref(), Utc::now())
    } else {
        (String::new(), false)
    };
    (text, overdue || r.escalated)
}

async fn row(app: &AppState, session: &Session, lang: Lang, r: Referral, incoming: bool) -> Row {
    let status = status_of(&r);
    let (deadline, overdue) = deadline(lang, &r);
    let counterpart = if incoming {
        &r.sender_agency_id
    } else {
        &r.receiving_agency_id
    };
    Row {
        short: views::named(&r.reference, &r.id),
        status: lang.t(&views::key(status.as_str_name())),
        service: service_name(app, session, lang, &r.service_id).await,
        counterpart: agency_name(app, session, lang, counterpart).await,
        places: r.places,
        deadline,
        overdue,
        updated: views::time(r.updated_at.as_ref()),
        id: r.id,
    }
}

pub struct ChildView {
    pub pseudonym: String,
    pub birth_year: i32,
    pub needs: String,
}

pub struct AckView {
    pub agency: String,
    pub role: String,
    pub at: String,
}

pub struct StepView {
    pub action: String,
    pub change: String,
    pub actor: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "referral.html")]
struct ReferralView {
    c: Chrome,
    id: String,
    short: String,
    status: String,
    service: String,
    sender: String,
    receiver: String,
    places: u32,
    legal_basis: String,
    court_due: String,
    court_decision: String,
    reason: String,
    deadline: String,
    overdue: bool,
    resolution: String,
    /// Why the current step waits, as its holder said.
    waiting: String,
    /// The search the referral is one of, for its sender (the search's page is the sender's alone).
    search_id: String,
    children: Vec<ChildView>,
    acks: Vec<AckView>,
    history: Vec<StepView>,
    steps: Vec<&'static str>,
    decline_reasons: Vec<(i32, String)>,
    withdraw_reasons: Vec<(i32, String)>,
    waiting_reasons: Vec<(i32, String)>,
    errors: HashMap<String, String>,
    failed_step: String,
    comment: String,
}

impl ReferralView {
    fn may(&self, step: &str) -> bool {
        self.steps.contains(&step)
    }

    fn err(&self, step: &str, field: &str) -> String {
        if self.failed_step != step {
            return String::new();
        }
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

fn step_name(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Acknowledge => "acknowledge",
        StepKind::Accept => "accept",
        StepKind::Decline => "decline",
        StepKind::Withdraw => "withdraw",
        StepKind::ConfirmPlacement => "confirm",
        StepKind::RecordCourtDecision => "court-decision",
        StepKind::RecordArrival => "arrival",
        StepKind::Postpone => "postpone",
    }
}

/// The step a form's address names (`/referrals/<id>/<step>`).
fn step_named(name: &str) -> Option<StepKind> {
    StepKind::ALL.into_iter().find(|k| step_name(*k) == name)
}

/// The steps this person may take now: those the referral's state machine allows their agency, of the
/// kinds their roles allow.
fn open_steps(r: &Referral, session: &Session) -> Vec<&'static str> {
    let Some(state) = ReferralState::of_referral(r) else {
        return Vec::new();
    };
    state
        .open_steps(session.agency_id, Utc::now())
        .into_iter()
        .filter(|k| session.may(act_of(*k)))
        .map(step_name)
        .collect()
}

/// The roles' kind of act a kind of step is, as the referrals service asks it of a caller.
fn act_of(kind: StepKind) -> Act {
    match kind.weight() {
        StepWeight::Work => Act::Work,
        StepWeight::Decision => Act::Decide,
    }
}

fn parse_id(id: &str) -> Result<String, WebError> {
    Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| WebError::NotFound)
}

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = parse_id(&id)?;
    show(&app, &session, lang, &id, None).await
}

/// A refused step: which, the fields the service named, and what was typed (shown again).
struct Refused {
    step: String,
    errors: HashMap<String, String>,
    comment: String,
}

async fn show(
    app: &AppState,
    session: &Session,
    lang: Lang,
    id: &str,
    refused: Option<Refused>,
) -> Result<Response, WebError> {
    let r = app
        .clients
        .referrals
        .clone()
        .get_referral(session.request(GetReferralRequest {
            referral_id: id.to_string(),
        }))
        .await?
        .into_inner();
    let view = referral_view(app, session, lang, r, refused).await?;
    let status = if view.failed_step.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, render(&view)?).into_response())
}

async fn referral_view(
    app: &AppState,
    session: &Session,
    lang: Lang,
    r: Referral,
    refused: Option<Refused>,
) -> Result<ReferralView, WebError> {
    let status = status_of(&r);
    let (deadline, overdue) = deadline(lang, &r);
    let refused = refused.unwrap_or(Refused {
        step: String::new(),
        errors: HashMap::new(),
        comment: String::new(),
    });
    Ok(ReferralView {
        c: Chrome::of(app, session, lang, &format!("/referrals/{}", r.id)).await,
        short: views::named(&r.reference, &r.id),
        status: lang.t(&views::key(status.as_str_name())),
        service: service_name(app, session, lang, &r.service_id).await,
        sender: agency_name(app, session, lang, &r.sender_agency_id).await,
        receiver: agency_name(app, session, lang, &r.receiving_agency_id).await,
        places: r.places,
        legal_basis: legal_basis_text(lang, r.legal_basis.as_ref()),
        court_due: court_due(&r),
        court_decision: legal_basis_text(lang, r.court_decision.as_ref()),
        deadline,
        overdue,
        resolution: resolution_text(lang, &r),
        waiting: views::waiting_text(lang, &r),
        search_id: if r.sender_agency_id == session.agency_id.to_string() {
            r.search_id.clone()
        } else {
            String::new()
        },
        children: children(app, session, lang, &r.case_id).await,
        acks: acknowledgements(app, session, lang, &r).await,
        history: history(app, session, lang, &r).await,
        steps: open_steps(&r, session),
        decline_reasons: reasons(lang, &DECLINE_REASONS.map(|d| (d as i32, d.as_str_name()))),
        withdraw_reasons: reasons(lang, &WITHDRAW_REASONS.map(|w| (w as i32, w.as_str_name()))),
        waiting_reasons: reasons(
            lang,
            &views::WAITING_REASONS.map(|w| (w as i32, w.as_str_name())),
        ),
        reason: r.reason.clone(),
        id: r.id,
        errors: refused.errors,
        failed_step: refused.step,
        comment: refused.comment,
    })
}

const DECLINE_REASONS: [DeclineReason; 5] = [
    DeclineReason::AtCapacity,
    DeclineReason::NeedsNotMet,
    DeclineReason::AgeOutOfRange,
    DeclineReason::SiblingsCannotBeKeptTogether,
    DeclineReason::Other,
];
const WITHDRAW_REASONS: [WithdrawReason; 5] = [
    WithdrawReason::PlacedElsewhere,
    WithdrawReason::Reintegrated,
    WithdrawReason::CourtDecision,
    WithdrawReason::SubmittedInError,
    WithdrawReason::Other,
];

fn reasons(lang: Lang, all: &[(i32, &str)]) -> Vec<(i32, String)> {
    all.iter()
        .map(|(v, name)| (*v, lang.t(&views::key(name))))
        .collect()
}

fn legal_basis_text(lang: Lang, basis: Option<&LegalBasis>) -> String {
    let Some(b) = basis else {
        return String::new();
    };
    let kind = LegalBasisKind::try_from(b.kind).unwrap_or(LegalBasisKind::Unspecified);
    let date = b.issued_on.as_ref().map(views::date).unwrap_or_default();
    let court = if b.court.is_empty() {
        String::new()
    } else {
        format!(", {}", b.court)
    };
    format!(
        "{} № {} / {date}{court}",
        lang.t(&views::key(kind.as_str_name())),
        b.number
    )
}

/// The day the application to the court is due, while it still may be: a declined or withdrawn referral
/// places no child, so no court is asked about it.
fn court_due(r: &Referral) -> String {
    if matches!(
        status_of(r),
        ReferralStatus::Declined | ReferralStatus::Withdrawn
    ) {
        return String::new();
    }
    (r.court_application_due_on.as_ref())
        .map(views::date)
        .unwrap_or_default()
}

fn resolution_text(lang: Lang, r: &Referral) -> String {
    let reason = if let Ok(d) = DeclineReason::try_from(r.decline_reason)
        && d != DeclineReason::Unspecified
    {
        lang.t(&views::key(d.as_str_name()))
    } else if let Ok(w) = WithdrawReason::try_from(r.withdraw_reason)
        && w != WithdrawReason::Unspecified
    {
        lang.t(&views::key(w.as_str_name()))
    } else {
        return String::new();
    };
    if r.resolution_comment.is_empty() {
        reason
    } else {
        format!("{reason}: {}", r.resolution_comment)
    }
}

async fn children(app: &AppState, session: &Session, lang: Lang, case_id: &str) -> Vec<ChildView> {
    let Ok(case) = app
        .clients
        .cases
        .clone()
        .get_case(session.request(GetCaseRequest {
            case_id: case_id.to_string(),
        }))
        .await
    else {
        return Vec::new();
    };
    case.into_inner()
        .children
        .into_iter()
        .map(|c| ChildView {
            needs: views::needs(lang, &c.needs),
            pseudonym: c.pseudonym,
            birth_year: c.birth_year,
        })
        .collect()
}

async fn acknowledgements(
    app: &AppState,
    session: &Session,
    lang: Lang,
    r: &Referral,
) -> Vec<AckView> {
    let mut acks = Vec::new();
    for a in &r.acknowledgements {
        let role = match (a.receiving_provider, a.foster_care_team) {
            (true, true) => "party-provider-and-foster-team",
            (true, false) => "party-provider",
            _ => "party-foster-team",
        };
        acks.push(AckView {
            agency: agency_name(app, session, lang, &a.agency_id).await,
            role: lang.t(role),
            at: match &a.acknowledged_at {
                Some(t) => views::time(Some(t)),
                None => lang.t("ack-outstanding"),
            },
        });
    }
    acks
}

async fn history(app: &AppState, session: &Session, lang: Lang, r: &Referral) -> Vec<StepView> {
    let mut steps = Vec::new();
    for h in &r.history {
        let action = ReferralAction::try_from(h.action).unwrap_or(ReferralAction::Unspecified);
        let status = |s: i32| {
            let s = ReferralStatus::try_from(s).unwrap_or(ReferralStatus::Unspecified);
            lang.t(&views::key(s.as_str_name()))
        };
        let change = if h.from_status == h.to_status
            || h.from_status == ReferralStatus::Unspecified as i32
        {
            String::new()
        } else {
            format!("{} → {}", status(h.from_status), status(h.to_status))
        };
        let actor = if h.actor_agency_id.is_empty() {
            lang.t("actor-system")
        } else {
            agency_name(app, session, lang, &h.actor_agency_id).await
        };
        steps.push(StepView {
            action: lang.t(&views::key(action.as_str_name())),
            change,
            actor,
            at: views::time(h.at.as_ref()),
        });
    }
    steps
}

#[derive(Deserialize)]
pub struct StepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: i32,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    issued_on: String,
    #[serde(default)]
    court: String,
    /// For a postponement: the day the wait ends, as a date input sends it.
    #[serde(default)]
    until: String,
}

pub async fn act(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Path((id, step)): Path<(String, String)>,
    Form(form): Form<StepForm>,
) -> Result<Response, WebError> {
    check_csrf(&session, &form.csrf)?;
    let id = parse_id(&id)?;
    let kind = step_named(&step).ok_or(WebError::NotFound)?;
    let comment = form.comment.clone();
    match take_step(&app, &session, &id, kind, form).await {
        Ok(()) => Ok(Redirect::to(&format!("/referrals/{id}")).into_response()),
        Err(status) if is_field_error(&status) => {
            let refused = Refused {
                step,
                errors: field_errors(&status),
                comment,
            };
            show(&app, &session, lang, &id, Some(refused)).await
        }
        Err(status) => Err(status.into()),
    }
}

/// The refusals shown next to the form (the rest become an error page).
fn is_field_error(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition
    )
}

async fn take_step(
    app: &AppState,
    session: &Session,
    id: &str,
    step: StepKind,
    form: StepForm,
) -> Result<(), tonic::Status> {
    let mut referrals = app.clients.referrals.clone();
    let referral_id = id.to_string();
    match step {
        StepKind::Acknowledge => referrals
            .acknowledge_referral(session.request(AcknowledgeReferralRequest { referral_id }))
            .await
            .map(drop),
        StepKind::Accept => referrals
            .accept_referral(session.request(AcceptReferralRequest { referral_id }))
            .await
            .map(drop),
        StepKind::Decline => referrals
            .decline_referral(session.request(DeclineReferralRequest {
                referral_id,
                reason: form.reason,
                comment: form.comment,
            }))
            .await
            .map(drop),
        StepKind::Withdraw => referrals
            .withdraw_referral(session.request(WithdrawReferralRequest {
                referral_id,
                reason: form.reason,
                comment: form.comment,
            }))
            .await
            .map(drop),
        StepKind::ConfirmPlacement => referrals
            .confirm_placement(session.request(ConfirmPlacementRequest {
                referral_id,
                ..Default::default()
            }))
            .await
            .map(drop),
        StepKind::RecordCourtDecision => {
            let decision = LegalBasis {
                kind: LegalBasisKind::CourtDecision as i32,
                number: form.number,
                issued_on: views::parse_date(&form.issued_on),
                court: form.court,
            };
            referrals
                .record_court_decision(session.request(RecordCourtDecisionRequest {
                    referral_id,
                    decision: Some(decision),
                }))
                .await
                .map(drop)
        }
        StepKind::RecordArrival => referrals
            .record_arrival(session.request(RecordArrivalRequest { referral_id }))
            .await
            .map(drop),
        StepKind::Postpone => referrals
            .postpone_step(session.request(PostponeStepRequest {
                referral_id,
                reason: form.reason,
                comment: form.comment,
                until: views::parse_date(&form.until),
            }))
            .await
            .map(drop),
    }
}

/// A date typed as `YYYY-MM-DD` (what a date input sends); anything else is sent as none, and the
/// service names the field.
pub async fn submit(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Form(form): Form<SubmitForm>,
) -> Result<Response, WebError> {
    check_csrf(&session, &form.csrf)?;
    let asked = SubmitReferralRequest {
        case_id: form.case_id.clone(),
        service_id: form.service_id.clone(),
        legal_basis: Some(LegalBasis {
            kind: form.basis_kind,
            number: form.number.clone(),
            issued_on: views::parse_date(&form.issued_on),
            court: form.court.clone(),
        }),
        reason: form.reason.clone(),
        idempotency_key: form.idempotency_key.clone(),
        // The form does not ask for an urgency yet: the service takes the referral as routine.
        urgency: 0,
    };
    match app
        .clients
        .referrals
        .clone()
        .submit_referral(session.request(asked))
        .await
    {
        Ok(r) => Ok(Redirect::to(&format!("/referrals/{}", r.into_inner().id)).into_response()),
        Err(status) if is_field_error(&status) => {
            cases::show_refused_submission(&app, &session, lang, form, field_errors(&status)).await
        }
        Err(status) => Err(status.into()),
    }
}
