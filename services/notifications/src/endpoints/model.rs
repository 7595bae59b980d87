//! An endpoint of an agency, as the directory announced it and as a notification's delivery goes to it.

use placement_proto::v1::Language;
use sqlx::FromRow;
use uuid::Uuid;

use crate::channel::Channel;

/// An endpoint a notification goes to: where, how, and in which language its e-mails are written.
#[derive(Debug, FromRow)]
pub struct DeliveryTarget {
    pub agency_id: Uuid,
    pub id: Uuid,
    pub channel: Channel,
    pub address: String,
    pub language: Language,
}

/// An endpoint as the directory announced it.
pub struct KnownEndpoint<'a> {
    pub id: Uuid,
    pub agency: Uuid,
    pub channel: Channel,
    pub address: &'a str,
    pub event_types: &'a [String],
    pub language: Language,
    pub enabled: bool,
    pub secret_version: i32,
}
