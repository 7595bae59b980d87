//! The search box: a case or a referral found by the reference people say («Н-ВРЦ-2026-00042», read out
//! on the phone or copied from a letter), typed as they may type it. The services decide what the person
//! may see: another agency's record is not found, as when its page is asked for.

use axum::{
    extract::{Query, State},
    response::{IntoResponse, Redirect, Response},
};
use placement_model::reference::{Kind, Reference};
use placement_proto::v1::{ListCasesRequest, ListReferralsRequest, ReferralDirection};
use serde::Deserialize;

use crate::{AppState, WebError, i18n::Lang, session::Session};

#[derive(Deserialize)]
pub struct FindQuery {
    #[serde(default)]
    reference: String,
}

/// Sends the person to the page of the case or referral with the reference asked for.
pub async fn page(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Query(q): Query<FindQuery>,
) -> Result<Response, WebError> {
    let reference = Reference::parse(&q.reference)
        .map_err(|_| WebError::BadRequest(lang.t("find-unreadable")))?;
    let written = reference.to_string();
    let page = match reference.kind {
        Kind::Case => case_of(&app, &session, &written)
            .await?
            .map(|id| format!("/cases/{id}")),
        Kind::Referral => referral_of(&app, &session, &written)
            .await?
            .map(|id| format!("/referrals/{id}")),
    };
    let page = page.ok_or(WebError::NotFound)?;
    Ok(Redirect::to(&page).into_response())
}

/// The id of the person's agency's case with this reference, if it has one.
async fn case_of(
    app: &AppState,
    session: &Session,
    reference: &str,
) -> Result<Option<String>, WebError> {
    let asked = ListCasesRequest {
        reference: reference.to_string(),
        ..Default::default()
    };
    let listed = (app.clients.cases.clone())
        .list_cases(session.request(asked))
        .await?
        .into_inner();
    Ok(listed.cases.into_iter().next().map(|c| c.id))
}

/// The id of the referral with this reference that the person's agency sent or must answer, if any.
async fn referral_of(
    app: &AppState,
    session: &Session,
    reference: &str,
) -> Result<Option<String>, WebError> {
    for direction in [ReferralDirection::Outgoing, ReferralDirection::Incoming] {
        let asked = ListReferralsRequest {
            direction: direction as i32,
            reference: reference.to_string(),
            ..Default::default()
        };
        let listed = (app.clients.referrals.clone())
            .list_referrals(session.request(asked))
            .await?
            .into_inner();
        if let Some(r) = listed.referrals.into_iter().next() {
            return Ok(Some(r.id));
        }
    }
    Ok(None)
}
