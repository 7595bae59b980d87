//! The ways a notification leaves the inbox, as endpoints and deliveries store them (`email`, `webhook`:
//! the names the schema's check allows and `Delivery.channel` shows). A row with any other name is read
//! as DATA_LOSS, never as one of these: sending a webhook's body as an e-mail, or the reverse, would go
//! to the wrong place.

use placement_proto::{stored::StoredName, v1::NotificationChannel};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Webhook, Channel::Email];

    /// Its stored name, also its metric label and its name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    /// The channel of an endpoint the directory announced; `None` for one this release does not send on.
    pub fn of_announced(channel: NotificationChannel) -> Option<Channel> {
        match channel {
            NotificationChannel::Email => Some(Channel::Email),
            NotificationChannel::Webhook => Some(Channel::Webhook),
            NotificationChannel::Unspecified => None,
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl StoredName for Channel {
    fn stored(self) -> &'static str {
        self.name()
    }

    fn from_stored(name: &str) -> Option<Self> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }
}

placement_proto::stored_as_text!(Channel, "Channel");

#[cfg(test)]
mod tests {
    use super::*;
    use placement_platform::error::ServiceError;
    use placement_proto::{stored::read_stored, v1::Language};
    use tonic::{Code, Status};

    /// What a row's undecodable column becomes, as sqlx reports it.
    fn decode_failure(column: &str, e: placement_proto::stored::UnknownStoredName) -> Status {
        Status::from(ServiceError::from(sqlx::Error::ColumnDecode {
            index: format!("{column:?}"),
            source: Box::new(e),
        }))
    }

    #[test]
    fn stored_channels_read_back_and_unknown_ones_are_refused() {
        for channel in Channel::ALL {
            assert_eq!(
                read_stored::<Channel>("Channel", channel.name()).ok(),
                Some(channel)
            );
        }
        for unknown in ["sms", "Email", "EMAIL", ""] {
            let e = read_stored::<Channel>("Channel", unknown).expect_err(unknown);
            let status = decode_failure("channel", e);
            assert_eq!(status.code(), Code::DataLoss, "{unknown}");
            assert!(
                status.message().contains(&format!("{unknown:?}")),
                "{}",
                status.message()
            );
        }
    }

    #[test]
    fn an_unknown_stored_language_is_data_loss_not_bulgarian() {
        let stored = read_stored::<Language>("Language", Language::En.as_str_name());
        assert_eq!(stored.ok(), Some(Language::En));
        for unknown in ["LANGUAGE_DE", "LANGUAGE_UNSPECIFIED", "bg"] {
            let e = read_stored::<Language>("Language", unknown).expect_err(unknown);
            let status = decode_failure("language", e);
            assert_eq!(status.code(), Code::DataLoss, "{unknown}");
            assert!(status.message().contains(unknown), "{}", status.message());
        }
    }

    #[test]
    fn announced_channels_map_to_stored_ones() {
        assert_eq!(
            Channel::of_announced(NotificationChannel::Email),
            Some(Channel::Email)
        );
        assert_eq!(
            Channel::of_announced(NotificationChannel::Webhook),
            Some(Channel::Webhook)
        );
        assert_eq!(
            Channel::of_announced(NotificationChannel::Unspecified),
            None
        );
    }
}
