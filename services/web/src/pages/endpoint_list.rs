//! An agency's notification endpoints as the directory page lists them, and the event boxes of the
//! endpoint forms. Kept apart from the forms (`endpoints`), which show the directory page again, so the
//! page and the forms depend on this and not on each other.

use placement_messaging::EventType;
use placement_proto::v1::{
    Language, ListNotificationEndpointsRequest, NotificationChannel, NotificationEndpoint,
};

use crate::{AppState, WebError, i18n::Lang, session::Session, views};

/// One endpoint as the page shows it.
pub struct EndpointRow {
    pub id: String,
    pub channel: String,
    pub is_webhook: bool,
    pub address: String,
    /// Every event an agency can be told of: (type, label, chosen).
    pub events: Vec<(String, String, bool)>,
    pub language: String,
    pub enabled: bool,
    pub disabled_reason: String,
    pub secret_version: u32,
}

/// The event choices of a form: (type, label, chosen); none chosen means every event.
pub fn event_choices(lang: Lang, chosen: &[String]) -> Vec<(String, String, bool)> {
    EventType::NOTIFIED
        .iter()
        .map(|t| {
            let name = t.as_str().to_string();
            let label = lang.t(&format!("event-{}", name.replace(['.', '_'], "-")));
            let on = chosen.contains(&name);
            (name, label, on)
        })
        .collect()
}

impl EndpointRow {
    fn of(e: NotificationEndpoint, lang: Lang) -> Self {
        let channel = NotificationChannel::try_from(e.channel).unwrap_or_default();
        Self {
            channel: lang.t(&views::key(channel.as_str_name())),
            is_webhook: channel == NotificationChannel::Webhook,
            events: event_choices(lang, &e.event_types),
            language: match Language::try_from(e.language) {
                Ok(Language::En) => "en".into(),
                _ => "bg".into(),
            },
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            secret_version: e.secret_version,
            address: e.address,
            id: e.id,
        }
    }
}

/// The agency's endpoints, oldest first (at most 20).
pub async fn of_agency(
    app: &AppState,
    session: &Session,
    lang: Lang,
) -> Result<Vec<EndpointRow>, WebError> {
    let asked = ListNotificationEndpointsRequest {
        agency_id: session.agency_id.to_string(),
    };
    let listed = app
        .clients
        .directory
        .clone()
        .list_notification_endpoints(session.request(asked))
        .await?
        .into_inner();
    Ok(listed
        .endpoints
        .into_iter()
        .map(|e| EndpointRow::of(e, lang))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_an_agency_can_choose_has_a_label_in_both_languages() {
        for lang in [Lang::Bg, Lang::En] {
            let choices = event_choices(lang, &["referral.placed".to_string()]);
            assert_eq!(choices.len(), EventType::NOTIFIED.len());
            for (name, label, _) in &choices {
                let key = format!("event-{}", name.replace(['.', '_'], "-"));
                assert!(
                    !label.is_empty() && !label.contains(&key),
                    "{lang:?} {key}: {label}"
                );
            }
            let chosen: Vec<&str> = (choices.iter().filter(|c| c.2))
                .map(|c| c.0.as_str())
                .collect();
            assert_eq!(chosen, ["referral.placed"]);
        }
    }
}
