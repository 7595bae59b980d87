//! What a notice tells, as it keeps it (`notifications.facts`): the message its kind says, encoded. A
//! referral's step keeps a `NoticeFacts`, a district's digest its `DistrictDigestReady`, a search that
//! ran out its `SearchExhausted`, an endpoint disabled an `EndpointDisabledFacts`. Each is worded when the
//! notice is shown or sent, in its reader's language (see `placement_wording`).

use placement_proto::v1::{
    DistrictDigestReady, EndpointDisabledFacts, Language, NoticeFacts, NotificationKind,
    SearchExhausted,
};
use placement_wording::Names;
use prost::Message;

/// The facts of one notice, by its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Told {
    Step(NoticeFacts),
    /// Boxed: a digest carries a whole district report.
    Digest(Box<DistrictDigestReady>),
    SearchExhausted(SearchExhausted),
    EndpointDisabled(EndpointDisabledFacts),
}

impl Told {
    /// The facts a notice of `kind` keeps as `bytes`; None when they do not decode (its stored words are
    /// shown then).
    pub fn decode(kind: NotificationKind, bytes: &[u8]) -> Option<Told> {
        use NotificationKind as K;
        match kind {
            K::DistrictDigest => {
                (DistrictDigestReady::decode(bytes).ok()).map(|d| Told::Digest(Box::new(d)))
            }
            K::SearchExhausted => SearchExhausted::decode(bytes)
                .ok()
                .map(Told::SearchExhausted),
            K::EndpointDisabled => EndpointDisabledFacts::decode(bytes)
                .ok()
                .map(Told::EndpointDisabled),
            _ => NoticeFacts::decode(bytes).ok().map(Told::Step),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Told::Step(f) => f.encode_to_vec(),
            Told::Digest(d) => d.encode_to_vec(),
            Told::SearchExhausted(e) => e.encode_to_vec(),
            Told::EndpointDisabled(f) => f.encode_to_vec(),
        }
    }

    /// The ids of the agencies and services the words may name, to look up before wording.
    pub fn named_ids(&self) -> Vec<&str> {
        match self {
            Told::Step(f) => placement_wording::named_ids(f),
            Told::Digest(d) => placement_wording::digest_named_ids(d),
            Told::SearchExhausted(_) | Told::EndpointDisabled(_) => Vec::new(),
        }
    }

    /// The title and text of the notice of `kind` in `language`.
    pub fn words(
        &self,
        kind: NotificationKind,
        language: Language,
        names: &impl Names,
    ) -> (String, String) {
        match self {
            Told::Step(f) => placement_wording::notice(language, kind as i32, f, names),
            Told::Digest(d) => placement_wording::district_digest(language, d, names),
            Told::SearchExhausted(e) => placement_wording::search_exhausted(language, e),
            Told::EndpointDisabled(f) => placement_wording::endpoint_disabled(language, f),
        }
    }

    /// The facts of a referral's step, which the wire carries for a client to word them itself.
    pub fn step(&self) -> Option<&NoticeFacts> {
        match self {
            Told::Step(f) => Some(f),
            _ => None,
        }
    }
}

/// A notice about no referral's step as it is stored: its facts, and its words in Bulgarian, which are
/// shown only where the facts cannot be read (by an instance of a release from before these notices kept
/// them, while an upgrade rolls out).
pub struct Stored {
    pub title: String,
    pub body: String,
    pub facts: Vec<u8>,
}

impl Stored {
    pub fn of(told: &Told, kind: NotificationKind, names: &impl Names) -> Stored {
        let (title, body) = told.words(kind, Language::Bg, names);
        Stored {
            title,
            body,
            facts: told.encode(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::model::NameBook;

    /// An instance of a release from before these notices kept their facts reads every notice's facts as
    /// a `NoticeFacts`: theirs must not decode so (field 3 is a string in each, a number there), or it
    /// would word them as a referral's step; it shows their stored Bulgarian words instead.
    #[test]
    fn an_older_reader_cannot_take_these_facts_for_a_steps_and_shows_the_stored_words() {
        let id = "0193a5c2-0000-7000-8000-000000000001";
        let told = [
            (
                NotificationKind::DistrictDigest,
                Told::Digest(Box::new(DistrictDigestReady {
                    digest_id: id.into(),
                    region_code: "VRC".into(),
                    rdsa_agency_id: id.into(),
                    ..Default::default()
                })),
            ),
            (
                NotificationKind::SearchExhausted,
                Told::SearchExhausted(SearchExhausted {
                    search_id: id.into(),
                    case_id: id.into(),
                    sender_agency_id: id.into(),
                    round: 1,
                    ..Default::default()
                }),
            ),
            (
                NotificationKind::EndpointDisabled,
                Told::EndpointDisabled(EndpointDisabledFacts {
                    endpoint_id: id.into(),
                    address: "it@vratsa.example".into(),
                    reason: "HTTP 503".into(),
                }),
            ),
        ];
        for (kind, told) in told {
            let stored = Stored::of(&told, kind, &NameBook::default());
            assert!(
                NoticeFacts::decode(stored.facts.as_slice()).is_err(),
                "{kind:?}"
            );
            assert_eq!(Told::decode(kind, &stored.facts), Some(told.clone()));
            let (title, body) = told.words(kind, Language::Bg, &NameBook::default());
            assert_eq!((stored.title, stored.body), (title, body));
        }
    }
}
