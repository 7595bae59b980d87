//! A notice in words: the facts of a referral's step ([`NoticeFacts`]) worded for its reader, in
//! Bulgarian or English, from one Fluent catalogue (`locales/`). The notifications service words the
//! inbox and the e-mails with it, the web app the inbox it shows, so a notice reads the same everywhere.
//! So are the notices about no referral's step: a district's digest ([`district_digest`]), a search that
//! ran out ([`search_exhausted`]) and an endpoint disabled ([`endpoint_disabled`]).
//!
//! The words name agencies and services by name (the caller's [`Names`]), districts by name
//! ([`district`]), reasons by their words, times in Sofia as people write them ([`calendar`]), and the
//! referral by its reference. Pure, so the wording is tested alone.

pub mod calendar;
mod digest;
mod districts;
mod endpoint;
mod search;

use std::{borrow::Cow, collections::HashMap, hash::BuildHasher};

use fluent_templates::{Loader, fluent_bundle::FluentValue, static_loader};
use placement_proto::{
    prost_types::Timestamp,
    v1::{
        DeclineReason, Language, NoticeFacts, NotificationKind, ReferralStepName, WaitingReason,
        WithdrawReason,
    },
};
use unic_langid::{LanguageIdentifier, langid};

pub use digest::{STALLED_LISTED, digest_named_ids, district_digest};
pub use districts::district;
pub use endpoint::endpoint_disabled;
pub use search::search_exhausted;

static_loader! {
    static CATALOGUE = {
        locales: "./locales",
        fallback_language: "bg",
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static BG: LanguageIdentifier = langid!("bg");
static EN: LanguageIdentifier = langid!("en");

/// The names of the agencies and services a notice names, as the reader's side knows them.
pub trait Names {
    /// The name of agency or service `id` in `language`; None when it is not known.
    fn name(&self, id: &str, language: Language) -> Option<String>;
}

/// Names by id, the same in both languages (the directory holds one name per agency and service).
impl<S: BuildHasher> Names for HashMap<String, String, S> {
    fn name(&self, id: &str, _: Language) -> Option<String> {
        self.get(id).filter(|n| !n.trim().is_empty()).cloned()
    }
}

/// The ids of the agencies and services `facts` may name, for the caller to look up before wording.
pub fn named_ids(facts: &NoticeFacts) -> Vec<&str> {
    [
        &facts.sender_agency_id,
        &facts.actor_agency_id,
        &facts.service_id,
    ]
    .into_iter()
    .map(String::as_str)
    .filter(|id| !id.is_empty())
    .collect()
}

/// How the notice names its referral: its reference, or, for a referral made before references, the
/// last eight digits of its id (the random ones: the first are a time shared by referrals of a minute).
pub fn reference(facts: &NoticeFacts) -> &str {
    referral_reference(&facts.reference, &facts.referral_id)
}

/// A referral's `reference`, or, when it has none, the last eight digits of its `id`.
fn referral_reference<'a>(reference: &'a str, id: &'a str) -> &'a str {
    if !reference.trim().is_empty() {
        return reference.trim();
    }
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

/// The title and body of a notice of `kind` (a `NotificationKind`; one this release does not know is
/// worded as "a new step") in `language`.
pub fn notice(
    language: Language,
    kind: i32,
    facts: &NoticeFacts,
    names: &impl Names,
) -> (String, String) {
    let key = message_key(kind);
    let args = arguments(language, kind, facts, names);
    let title = lookup(language, &format!("notice-{key}-title"), &args);
    let body = lookup(language, &format!("notice-{key}-body"), &args);
    (capitalised(&title), capitalised(&body))
}

/// A message of the catalogue without variables (e.g. `notice-open-referral`).
pub fn text(language: Language, key: &str) -> String {
    lookup(language, key, &HashMap::new())
}

/// The catalogue's key for a kind of notice.
fn message_key(kind: i32) -> &'static str {
    use NotificationKind as K;
    match NotificationKind::try_from(kind) {
        Ok(K::ReferralSubmitted) => "submitted",
        Ok(K::ReferralAcknowledged) => "acknowledged",
        Ok(K::ReferralAccepted) => "accepted",
        Ok(K::ReferralDeclined) => "declined",
        Ok(K::ReferralWithdrawn) => "withdrawn",
        Ok(K::ReferralPlaced) => "placed",
        Ok(K::ReferralEscalated) => "escalated",
        Ok(K::ReferralReminder) => "reminder",
        Ok(K::CourtDecisionDue) => "court-due",
        Ok(K::CourtDecisionRecorded) => "court-recorded",
        Ok(K::ReferralArrived) => "arrived",
        Ok(K::ReferralPostponed) => "postponed",
        // Not about a referral's step (each is worded from its own facts: see `district_digest`,
        // `search_exhausted`, `endpoint_disabled`), or a kind added after this release: said plainly, not
        // guessed.
        Ok(K::EndpointDisabled | K::DistrictDigest | K::SearchExhausted | K::Unspecified)
        | Err(_) => "step",
    }
}

type Args = HashMap<Cow<'static, str>, FluentValue<'static>>;

/// A message's variables, by name.
fn args<const N: usize>(pairs: [(&'static str, FluentValue<'static>); N]) -> Args {
    (pairs.into_iter())
        .map(|(k, v)| (Cow::Borrowed(k), v))
        .collect()
}

/// Every variable any notice takes, worded in `language`.
fn arguments(language: Language, kind: i32, f: &NoticeFacts, names: &impl Names) -> Args {
    let named = |id: &str, unknown: &str| {
        (!id.is_empty())
            .then(|| names.name(id, language))
            .flatten()
            .unwrap_or_else(|| text(language, unknown))
    };
    let order = f.order_issued_on.as_ref();
    let until = calendar::day(f.waiting_until.as_ref(), language);
    let words: [(&'static str, FluentValue<'static>); 14] = [
        ("reference", reference(f).to_string().into()),
        ("places", f.places.into()),
        (
            "service",
            named(&f.service_id, "notice-unknown-service").into(),
        ),
        (
            "sender",
            named(&f.sender_agency_id, "notice-unknown-sender").into(),
        ),
        (
            "agency",
            named(&f.actor_agency_id, "notice-unknown-agency").into(),
        ),
        (
            "district",
            district(&f.receiving_region_code, language).into(),
        ),
        ("from", district(&f.sender_region_code, language).into()),
        (
            "deadline",
            calendar::moment(deadline(kind, f), language).into(),
        ),
        ("step", step(language, f.step).into()),
        ("waiting", waiting(language, f.waiting_reason).into()),
        // Fluent selects on it: "none" words a postponement without a day.
        (
            "until",
            if until.is_empty() {
                "none".to_string()
            } else {
                until
            }
            .into(),
        ),
        ("reason", reason(language, kind, f.reason_code).into()),
        ("order", calendar::day(order, language).into()),
        (
            "due",
            calendar::day(f.court_application_due.as_ref(), language).into(),
        ),
    ];
    args(words)
}

/// The deadline a notice names: the acknowledgement's for that step (and for events from before steps),
/// the open step's otherwise, and for a postponement the one it moved to.
fn deadline(kind: i32, f: &NoticeFacts) -> Option<&Timestamp> {
    let (acknowledgement, step) = (
        f.acknowledgement_deadline.as_ref(),
        f.step_deadline.as_ref(),
    );
    let acknowledging = matches!(
        ReferralStepName::try_from(f.step),
        Ok(ReferralStepName::Unspecified | ReferralStepName::Acknowledgement)
    );
    if kind != NotificationKind::ReferralPostponed as i32 && acknowledging {
        acknowledgement.or(step)
    } else {
        step.or(acknowledgement)
    }
}

/// A step in words, as a sentence names it (also for lists of steps, e.g. the figures' stalled ones); an
/// unknown one (from a later release) is the acknowledgement's only when unset.
pub fn step(language: Language, code: i32) -> String {
    let key = match ReferralStepName::try_from(code) {
        Ok(ReferralStepName::Decision) => "notice-step-decision",
        Ok(ReferralStepName::Confirmation) => "notice-step-confirmation",
        Ok(ReferralStepName::Arrival) => "notice-step-arrival",
        Ok(ReferralStepName::Unspecified | ReferralStepName::Acknowledgement) | Err(_) => {
            "notice-step-acknowledgement"
        }
    };
    text(language, key)
}

/// Why a step waits, in words (also for lists of steps); an unknown reason is "another reason".
pub fn waiting(language: Language, code: i32) -> String {
    WaitingReason::try_from(code)
        .ok()
        .filter(|r| !matches!(r, WaitingReason::Unspecified | WaitingReason::Other))
        .map(|r| kebab(r.as_str_name().trim_start_matches("WAITING_REASON_")))
        .and_then(|name| try_lookup(language, &format!("notice-waiting-{name}"), &HashMap::new()))
        .unwrap_or_else(|| text(language, "notice-reason-other"))
}

/// A decline's or withdrawal's reason in words; a reason this release does not know is "another reason".
fn reason(language: Language, kind: i32, code: i32) -> String {
    let key = if kind == NotificationKind::ReferralDeclined as i32 {
        DeclineReason::try_from(code)
            .ok()
            .filter(|r| !matches!(r, DeclineReason::Unspecified | DeclineReason::Other))
            .map(|r| {
                r.as_str_name()
                    .trim_start_matches("DECLINE_REASON_")
                    .to_string()
            })
            .map(|name| format!("notice-decline-{}", kebab(&name)))
    } else if kind == NotificationKind::ReferralWithdrawn as i32 {
        WithdrawReason::try_from(code)
            .ok()
            .filter(|r| !matches!(r, WithdrawReason::Unspecified | WithdrawReason::Other))
            .map(|r| {
                r.as_str_name()
                    .trim_start_matches("WITHDRAW_REASON_")
                    .to_string()
            })
            .map(|name| format!("notice-withdraw-{}", kebab(&name)))
    } else {
        None
    };
    key.and_then(|k| try_lookup(language, &k, &HashMap::new()))
        .unwrap_or_else(|| text(language, "notice-reason-other"))
}

fn kebab(proto_name: &str) -> String {
    proto_name.to_ascii_lowercase().replace('_', "-")
}

fn language_id(language: Language) -> &'static LanguageIdentifier {
    if language == Language::En { &EN } else { &BG }
}

fn lookup(language: Language, key: &str, args: &Args) -> String {
    CATALOGUE.lookup_with_args(language_id(language), key, args)
}

fn try_lookup(language: Language, key: &str, args: &Args) -> Option<String> {
    CATALOGUE.try_lookup_with_args(language_id(language), key, args)
}

/// A sentence starts with a capital, whatever its first word (a name written in lower case, or a
/// fallback such as "the service").
fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
