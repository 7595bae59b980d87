//! The inbox: the agency's notifications, newest first, marked read one by one or all shown at once; live
//! through server-sent events fed by `WatchNotifications`.

use std::{convert::Infallible, time::Duration};

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

use super::{Chrome, check_csrf, render};
use crate::{AppState, WebError, i18n::Lang, session::Session, views};

pub struct Item {
    pub id: String,
    pub title: String,
    pub body: String,
    pub at: String,
    pub unread: bool,
    /// Where the notice leads in this app: its referral's page, the figures for a digest; empty for none.
    pub link: String,
}

impl Item {
    fn of(n: Notification) -> Item {
        let link = if !n.referral_id.is_empty() {
            format!("/referrals/{}", n.referral_id)
        } else if n.kind == NotificationKind::DistrictDigest as i32 {
            "/figures".into()
        } else {
            String::new()
        };
        Item {
            at: views::time(n.created_at.as_ref()),
            unread: n.read_at.is_none(),
            id: n.id,
            title: n.title,
            body: n.body,
            link,
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
    };
    let listed = app
        .clients
        .notifications
        .clone()
        .list_notifications(session.request(asked))
        .await?
        .into_inner();
    let items: Vec<Item> = listed.notifications.into_iter().map(Item::of).collect();
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
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let watched = app
        .clients
        .notifications
        .clone()
        .watch_notifications(session.request(WatchNotificationsRequest { after_sequence: 0 }))
        .await?
        .into_inner();
    let stream = watched
        .take_while(|n| std::future::ready(n.is_ok()))
        .filter_map(|n| async move { n.ok() })
        .map(|n| {
            let item = Item::of(n);
            let data = serde_json::json!({
                "id": item.id,
                "title": item.title,
                "body": item.body,
                "at": item.at,
                "link": item.link,
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
        let of = |n| Item::of(n).link;
        assert_eq!(
            of(notice(NotificationKind::ReferralSubmitted, id)),
            format!("/referrals/{id}")
        );
        assert_eq!(of(notice(NotificationKind::DistrictDigest, "")), "/figures");
        assert_eq!(of(notice(NotificationKind::Unspecified, "")), "");
    }
}
