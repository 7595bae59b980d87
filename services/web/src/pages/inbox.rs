//! The inbox: the agency's notifications, newest first, marked read one by one or all shown at once; live
//! through server-sent events fed by `WatchNotifications`.

use std::{collections::HashMap, convert::Infallible, time::Duration};

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    response::{
        IntoResponse, Redirect, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{Stream, StreamExt};
use placement_proto::v1::{
    ListNotificationsRequest, MarkReadRequest, Notification, NotificationKind,
    WatchNotificationsRequest,
};
use serde::Deserialize;

use super::{Chrome, agency_name, check_csrf, render, service_name};
use crate::{AppState, WebError, i18n::Lang, session::Session, views};

pub struct Item {
    pub id: String,
    pub title: String,
    pub body: String,
    pub at: String,
    pub unread: bool,
    /// Where the notice leads in this app: its referral's page, the figures for a digest; empty for none.
    pub link: String,
    /// The reference of its referral, as the referral's page shows it; empty for none.
    pub reference: String,
}

impl Item {
    /// The notice as `lang` reads it: a referral's step worded here from its facts with the shared
    /// catalogue (as its e-mails are), with the names the directory gives this app; any other notice (a
    /// digest, a search that ran out, an endpoint disabled, or one stored as words) as the service words it,
    /// in the language the list asked for.
    fn of(n: Notification, lang: Lang, names: &HashMap<String, String>) -> Item {
        let link = if !n.referral_id.is_empty() {
            format!("/referrals/{}", n.referral_id)
        } else if n.kind == NotificationKind::DistrictDigest as i32 {
            "/figures".into()
        } else {
            String::new()
        };
        let (title, body) = match &n.facts {
            Some(facts) => placement_wording::notice(lang.language(), n.kind, facts, names),
            None => (n.title, n.body),
        };
        Item {
            at: views::time(n.created_at.as_ref()),
            unread: n.read_at.is_none(),
            id: n.id,
            title,
            body,
            link,
            reference: n.reference,
        }
    }
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxView {
    c: Chrome,
    items: Vec<Item>,
    unread_ids: Vec<String>,
    next_page: String,
    unread_only: bool,
}

#[derive(Deserialize)]
pub struct InboxQuery {
    #[serde(default)]
    page: String,
    #[serde(default)]
    unread: bool,
}

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
    Query(q): Query<InboxQuery>,
) -> Result<Response, WebError> {
    let asked = ListNotificationsRequest {
        unread_only: q.unread,
        page_size: 50,
        page_token: q.page,
        language: lang.language() as i32,
    };
    let listed = app
        .clients
        .notifications
        .clone()
        .list_notifications(session.request(asked))
        .await?
        .into_inner();
    let names = names_of(&app, &session, lang, &listed.notifications).await;
    let items: Vec<Item> = (listed.notifications.into_iter())
        .map(|n| Item::of(n, lang, &names))
        .collect();
    let unread_ids = items
        .iter()
        .filter(|i| i.unread)
        .map(|i| i.id.clone())
        .collect();
    render(&InboxView {
        c: Chrome::of(&app, &session, lang, "/inbox").await,
        items,
        unread_ids,
        next_page: listed.next_page_token,
        unread_only: q.unread,
    })
}

/// The names, in `lang`, of the agencies and services `notices` name, as far as the directory tells them
/// (one not known is left out: the notice names it by its role).
async fn names_of(
    app: &AppState,
    session: &Session,
    lang: Lang,
    notices: &[Notification],
) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for facts in notices.iter().filter_map(|n| n.facts.as_ref()) {
        let named = [
            (facts.service_id.as_str(), true),
            (facts.sender_agency_id.as_str(), false),
            (facts.actor_agency_id.as_str(), false),
        ];
        for (id, service) in named {
            if id.is_empty() || names.contains_key(id) {
                continue;
            }
            let name = if service {
                service_name(app, session, lang, id).await
            } else {
                agency_name(app, session, lang, id).await
            };
            // What the directory could not tell comes back as the short id: no name, then.
            if name != views::short(id) {
                names.insert(id.to_string(), name);
            }
        }
    }
    names
}

/// `ids` is a comma-separated list: one notification's id, or every unread one shown.
#[derive(Deserialize)]
pub struct MarkRead {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ids: String,
}

pub async fn mark_read(
    State(app): State<AppState>,
    session: Session,
    Form(form): Form<MarkRead>,
) -> Result<Response, WebError> {
    check_csrf(&session, &form.csrf)?;
    let ids: Vec<String> = form
        .ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if !ids.is_empty() {
        app.clients
            .notifications
            .clone()
            .mark_read(session.request(MarkReadRequest {
                notification_ids: ids,
            }))
            .await?;
    }
    Ok(Redirect::to("/inbox").into_response())
}

/// The live inbox: one `notification` event per new notification (title, body, link; text only, the
/// script shows it with `textContent`). It ends with the session, and when the access token it was
/// opened with expires (the notifications service ends the watch then); the browser opens it again,
/// with the session's refreshed token, or is sent to sign in.
pub async fn events(
    State(app): State<AppState>,
    session: Session,
    lang: Lang,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let watched = app
        .clients
        .notifications
        .clone()
        .watch_notifications(session.request(WatchNotificationsRequest {
            after_sequence: 0,
            language: lang.language() as i32,
        }))
        .await?
        .into_inner();
    let named = (app.clone(), session.clone());
    let stream = watched
        .take_while(|n| std::future::ready(n.is_ok()))
        .filter_map(|n| async move { n.ok() })
        .then(move |n| {
            let (app, session) = named.clone();
            async move {
                let names = names_of(&app, &session, lang, std::slice::from_ref(&n)).await;
                Item::of(n, lang, &names)
            }
        })
        .map(|item| {
            let data = serde_json::json!({
                "id": item.id,
                "title": item.title,
                "body": item.body,
                "at": item.at,
                "link": item.link,
                "reference": item.reference,
            });
            Ok(Event::default()
                .event("notification")
                .data(data.to_string()))
        })
        .take_until({
            let (ended, shutdown) = (session.ended(&app), app.shutdown.clone());
            async move {
                tokio::select! {
                    _ = ended => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_leads_to_its_referral_or_the_figures() {
        let notice = |kind: NotificationKind, referral_id: &str| Notification {
            kind: kind as i32,
            referral_id: referral_id.into(),
            ..Default::default()
        };
        let id = "0194f3c0-0000-7000-8000-000000000001";
        let of = |n| Item::of(n, Lang::Bg, &HashMap::new()).link;
        assert_eq!(
            of(notice(NotificationKind::ReferralSubmitted, id)),
            format!("/referrals/{id}")
        );
        assert_eq!(of(notice(NotificationKind::DistrictDigest, "")), "/figures");
        assert_eq!(of(notice(NotificationKind::Unspecified, "")), "");
    }

    /// A notice the app does not word itself (no facts of a referral's step: a digest, a search that ran
    /// out) reads as the service worded it, in the language the list asked for.
    #[test]
    fn a_notice_without_step_facts_reads_as_the_service_worded_it() {
        let digest = Notification {
            kind: NotificationKind::DistrictDigest as i32,
            title: "Digest for Vratsa Province before the coordination mechanism meets".into(),
            body: "Vratsa Province, 23 November 2026 – 30 November 2026.".into(),
            ..Default::default()
        };
        let item = Item::of(digest.clone(), Lang::En, &HashMap::new());
        assert_eq!((item.title, item.body), (digest.title, digest.body));
    }
}
