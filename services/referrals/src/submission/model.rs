//! A submission as asked for and as it will be stored: its validation, the answer to a retry, where it
//! goes, and the parties who must acknowledge it.

use chrono::{DateTime, NaiveDate, Utc};
use placement_platform::{
    error::{ServiceError, ServiceResult, check_text, parse_id},
    time::past_act_date,
};
use placement_proto::v1::{
    Date, ExtendSearchRequest, LegalBasis, LegalBasisKind, ServiceType, SubmitReferralRequest,
    SubmitSearchRequest, Urgency,
};
use uuid::Uuid;

use crate::{
    record::model::{PartyRow, ReferralRow},
    referral::ChildrenAges,
};

/// Why a submission is refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    #[error("legal_basis: required")]
    LegalBasisMissing,
    #[error("legal_basis.kind: required")]
    LegalBasisKindMissing,
    /// The idempotency key of an earlier submission came with another request.
    #[error("idempotency_key was already used for a different referral")]
    KeyReused,
    /// The cases service knows no such case, or not for the caller: the two look alike.
    #[error("case not found")]
    CaseNotFound,
    #[error("the case is not open")]
    CaseNotOpen,
    #[error("the case has no children")]
    NoChildren,
    #[error("service not found")]
    ServiceNotFound,
    #[error("the service takes no referrals now")]
    ServiceNotTaking,
    /// The child at 1-based position `child` of the case fits neither age its birth year allows.
    #[error("child {child} is outside the service's age range {min_age}-{max_age}")]
    ChildOutsideAges {
        child: usize,
        min_age: u32,
        max_age: u32,
    },
    #[error("district {region_code} has no foster-care team registered")]
    NoFosterTeam { region_code: String },
    /// A retry with the same key holds the key but its referral cannot be read yet: retrying succeeds.
    #[error("concurrent submission")]
    ConcurrentSubmission,
    /// The configured acknowledgement deadline does not fit a date: a bad setting, not the caller's fault.
    #[error("acknowledgement deadline out of range")]
    DeadlineOutOfRange,
    /// The directory answered with a provider id that is no UUID: its bug, not the caller's.
    #[error("directory returned a malformed id")]
    MalformedProviderId,
    #[error("service_ids: at least one service")]
    NoServices,
    #[error("service_ids: at most {MAX_SEARCH_SERVICES} services")]
    TooManyServices,
    /// The service at `index` was already asked at an earlier position.
    #[error("service_ids[{index}]: the same service twice")]
    DuplicateService { index: usize },
    /// The idempotency key of an earlier search came with another request.
    #[error("idempotency_key was already used for a different search")]
    SearchKeyReused,
    #[error("region_codes[{index}]: not a district's code (e.g. VRC)")]
    UnknownDistrict { index: usize },
    #[error("service_types: at least one type")]
    NoServiceTypes,
    #[error("service_types[{index}]: not a service type")]
    UnknownServiceType { index: usize },
    #[error("the search is already placed")]
    SearchPlaced,
    #[error("service_ids[{index}]: already asked in this search")]
    AlreadyAsked { index: usize },
    /// A round's key came again with other services.
    #[error("idempotency_key was already used for another round of this search")]
    RoundKeyReused,
}

impl From<SubmissionError> for ServiceError {
    fn from(e: SubmissionError) -> Self {
        use SubmissionError as E;
        match e {
            E::LegalBasisMissing => ServiceError::invalid("legal_basis", "required"),
            E::LegalBasisKindMissing => ServiceError::invalid("legal_basis.kind", "required"),
            E::KeyReused => ServiceError::AlreadyExists(e.to_string()),
            E::CaseNotFound => ServiceError::not_found("case"),
            E::ServiceNotFound => ServiceError::not_found("service"),
            E::CaseNotOpen
            | E::NoChildren
            | E::ServiceNotTaking
            | E::ChildOutsideAges { .. }
            | E::NoFosterTeam { .. } => ServiceError::precondition(e.to_string()),
            E::ConcurrentSubmission => ServiceError::Unavailable(e.to_string()),
            E::DeadlineOutOfRange | E::MalformedProviderId => ServiceError::Internal(e.to_string()),
            E::NoServices => ServiceError::invalid("service_ids", "at least one service"),
            E::TooManyServices => ServiceError::invalid(
                "service_ids",
                format!("at most {MAX_SEARCH_SERVICES} services"),
            ),
            E::DuplicateService { index } => {
                ServiceError::invalid(format!("service_ids[{index}]"), "the same service twice")
            }
            E::SearchKeyReused | E::RoundKeyReused => ServiceError::AlreadyExists(e.to_string()),
            E::UnknownDistrict { index } => ServiceError::invalid(
                format!("region_codes[{index}]"),
                "not a district's code (e.g. VRC)",
            ),
            E::NoServiceTypes => ServiceError::invalid("service_types", "at least one type"),
            E::UnknownServiceType { index } => {
                ServiceError::invalid(format!("service_types[{index}]"), "not a service type")
            }
            E::SearchPlaced => ServiceError::precondition(e.to_string()),
            E::AlreadyAsked { index } => ServiceError::invalid(
                format!("service_ids[{index}]"),
                "already asked in this search",
            ),
        }
    }
}

/// What the directory and the cases service said of a submission's case and service.
pub(super) struct Target {
    pub(super) places: i32,
    pub(super) provider: Uuid,
    pub(super) foster_team: Uuid,
    pub(super) rdsa: Option<Uuid>,
    pub(super) sender_region: String,
    pub(super) region_code: String,
    pub(super) free_places: i32,
    pub(super) service_version: i64,
    pub(super) ages: ChildrenAges,
    /// The service's type, as the directory said (a search keeps the types it asked).
    pub(super) service_type: ServiceType,
}

/// The most services one search asks.
pub const MAX_SEARCH_SERVICES: usize = 10;

/// A validated submission.
#[derive(Clone)]
pub(super) struct Submission {
    pub(super) case_id: Uuid,
    pub(super) service_id: Uuid,
    pub(super) legal_basis_kind: LegalBasisKind,
    pub(super) legal_basis_number: String,
    pub(super) legal_basis_date: NaiveDate,
    pub(super) legal_basis_court: String,
    pub(super) reason: String,
    pub(super) idempotency_key: String,
    /// When it happens: `None` for the database's clock (see `clock`).
    pub(super) at: Option<DateTime<Utc>>,
    /// How soon the children need a place: it scales the steps' times.
    pub(super) urgency: Urgency,
}

/// The submission `req` asks for, each field checked; its time is set by the caller.
pub(super) fn validate_submission(req: SubmitReferralRequest) -> ServiceResult<Submission> {
    let case_id = parse_id("case_id", &req.case_id)?;
    let service_id = parse_id("service_id", &req.service_id)?;
    let urgency = urgency_of(req.urgency)?;
    let s = validate_particulars(
        case_id,
        service_id,
        req.legal_basis,
        req.reason,
        req.idempotency_key,
    )?;
    Ok(Submission { urgency, ..s })
}

/// The urgency asked for: UNSPECIFIED is ROUTINE; a value this release does not know is refused.
fn urgency_of(code: i32) -> ServiceResult<Urgency> {
    match Urgency::try_from(code) {
        Ok(Urgency::Unspecified) => Ok(Urgency::Routine),
        Ok(urgency) => Ok(urgency),
        Err(_) => Err(ServiceError::invalid("urgency", "not an Urgency")),
    }
}

/// The search `req` asks for: its services in the order asked, and what each of its referrals carries
/// (checked by the rules of a lone submission; each takes its service from the list).
pub(super) fn validate_search(req: SubmitSearchRequest) -> ServiceResult<(Submission, Vec<Uuid>)> {
    let case_id = parse_id("case_id", &req.case_id)?;
    let services = validate_services(&req.service_ids)?;
    let urgency = urgency_of(req.urgency)?;
    let s = validate_particulars(
        case_id,
        services[0],
        req.legal_basis,
        req.reason,
        req.idempotency_key,
    )?;
    Ok((Submission { urgency, ..s }, services))
}

/// The services a search or a round of it asks, in the order asked: 1 to 10, distinct, each named by its
/// position when at fault.
pub(super) fn validate_services(ids: &[String]) -> ServiceResult<Vec<Uuid>> {
    if ids.is_empty() {
        return Err(SubmissionError::NoServices.into());
    }
    if ids.len() > MAX_SEARCH_SERVICES {
        return Err(SubmissionError::TooManyServices.into());
    }
    let mut services: Vec<Uuid> = Vec::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        let id = parse_id(&format!("service_ids[{index}]"), id)?;
        if services.contains(&id) {
            return Err(SubmissionError::DuplicateService { index }.into());
        }
        services.push(id);
    }
    Ok(services)
}

/// District codes as asked (`region_codes`), each a district's, each kept once in the order given.
pub(super) fn validate_districts(codes: &[String]) -> ServiceResult<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(codes.len());
    for (index, code) in codes.iter().enumerate() {
        if !placement_model::districts::is_district(code) {
            return Err(SubmissionError::UnknownDistrict { index }.into());
        }
        if !out.contains(code) {
            out.push(code.clone());
        }
    }
    Ok(out)
}

/// The day a search's children need a place by (`needed_by`), when given: a calendar date, from the day
/// the search is sent (in Sofia) to a year after it.
pub(super) fn validate_needed_by(
    date: Option<&Date>,
    sent: DateTime<Utc>,
) -> ServiceResult<Option<NaiveDate>> {
    let Some(date) = date else {
        return Ok(None);
    };
    let invalid = |why: &str| ServiceError::invalid("needed_by", why);
    let day =
        placement_platform::time::from_date(date).ok_or_else(|| invalid("not a calendar date"))?;
    let today = placement_model::working::sofia_day(sent);
    if day < today {
        return Err(invalid("before the day the search is sent"));
    }
    if day > today + chrono::Days::new(366) {
        return Err(invalid("more than a year ahead"));
    }
    Ok(Some(day))
}

/// Service types as asked (`service_types`): at least one, none unspecified or unknown, each kept once.
pub(super) fn validate_service_types(types: &[i32]) -> ServiceResult<Vec<ServiceType>> {
    if types.is_empty() {
        return Err(SubmissionError::NoServiceTypes.into());
    }
    let mut out: Vec<ServiceType> = Vec::with_capacity(types.len());
    for (index, t) in types.iter().enumerate() {
        let t = ServiceType::try_from(*t)
            .ok()
            .filter(|t| *t != ServiceType::Unspecified)
            .ok_or(SubmissionError::UnknownServiceType { index })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// A new round of a search as asked: the search, its services, and the round's key.
pub(super) fn validate_extension(
    req: &ExtendSearchRequest,
) -> ServiceResult<(Uuid, Vec<Uuid>, String)> {
    let search_id = parse_id("search_id", &req.search_id)?;
    let services = validate_services(&req.service_ids)?;
    check_text("idempotency_key", &req.idempotency_key, 1, 128)?;
    Ok((search_id, services, req.idempotency_key.clone()))
}

/// The round's services that the search asked before, named by position.
pub(super) fn not_asked_before(services: &[Uuid], asked: &[Uuid]) -> ServiceResult<()> {
    match services.iter().position(|s| asked.contains(s)) {
        Some(index) => Err(SubmissionError::AlreadyAsked { index }.into()),
        None => Ok(()),
    }
}

/// What every submission carries beyond its case and service, each field checked.
fn validate_particulars(
    case_id: Uuid,
    service_id: Uuid,
    legal_basis: Option<LegalBasis>,
    reason: String,
    idempotency_key: String,
) -> ServiceResult<Submission> {
    check_text("idempotency_key", &idempotency_key, 1, 128)?;
    let basis = legal_basis.ok_or(SubmissionError::LegalBasisMissing)?;
    let kind = LegalBasisKind::try_from(basis.kind)
        .ok()
        .filter(|k| *k != LegalBasisKind::Unspecified)
        .ok_or(SubmissionError::LegalBasisKindMissing)?;
    check_text("legal_basis.number", basis.number.trim(), 1, 64)?;
    let date = past_act_date("legal_basis.issued_on", basis.issued_on.as_ref())?;
    if kind == LegalBasisKind::CourtDecision {
        check_text("legal_basis.court", basis.court.trim(), 1, 200)?;
    } else {
        check_text("legal_basis.court", basis.court.trim(), 0, 200)?;
    }
    check_text("reason", reason.trim(), 1, 2000)?;
    Ok(Submission {
        case_id,
        service_id,
        legal_basis_kind: kind,
        legal_basis_number: basis.number.trim().to_string(),
        legal_basis_date: date,
        legal_basis_court: basis.court.trim().to_string(),
        reason: reason.trim().to_string(),
        idempotency_key,
        at: None,
        urgency: Urgency::Routine,
    })
}

/// A retry of an earlier submission: the same referral if the request is the same, an error if the key
/// was reused for another request.
pub(super) fn replay(existing: &ReferralRow, s: &Submission) -> ServiceResult<()> {
    let same = existing.case_id == s.case_id
        && existing.service_id == s.service_id
        && existing.legal_basis_kind == s.legal_basis_kind
        && existing.legal_basis_number == s.legal_basis_number
        && existing.legal_basis_date == s.legal_basis_date
        && existing.legal_basis_court == s.legal_basis_court
        && existing.reason == s.reason
        && existing.urgency == s.urgency;
    if same {
        Ok(())
    } else {
        Err(SubmissionError::KeyReused.into())
    }
}

/// The referral of a search to its `index`th service: the search's particulars, that service, and a key
/// of its own (a lone submission's key is the client's; a search's referrals are replayed by the search's).
pub(super) fn of_search(
    s: &Submission,
    search_id: Uuid,
    index: usize,
    service_id: Uuid,
) -> Submission {
    Submission {
        service_id,
        idempotency_key: format!("search:{search_id}:{index}"),
        ..s.clone()
    }
}

/// What the referrals of a new round of a search carry: the particulars of its first referral (every one
/// carries the same), each taking its service from the round.
pub(super) fn of_round(first: &ReferralRow, at: Option<DateTime<Utc>>) -> Submission {
    Submission {
        case_id: first.case_id,
        service_id: first.service_id,
        legal_basis_kind: first.legal_basis_kind,
        legal_basis_number: first.legal_basis_number.clone(),
        legal_basis_date: first.legal_basis_date,
        legal_basis_court: first.legal_basis_court.clone(),
        reason: first.reason.clone(),
        idempotency_key: String::new(),
        at,
        urgency: first.urgency,
    }
}

/// A retry of an earlier search: the same search if it asked the same services for the same, an error
/// if the key was reused for another request.
pub(super) fn replay_search(
    existing: &[ReferralRow],
    s: &Submission,
    services: &[Uuid],
) -> ServiceResult<()> {
    let same = existing.len() == services.len()
        && existing.iter().zip(services).all(|(row, service)| {
            replay(
                row,
                &Submission {
                    service_id: *service,
                    ..s.clone()
                },
            )
            .is_ok()
        });
    if same {
        Ok(())
    } else {
        Err(SubmissionError::SearchKeyReused.into())
    }
}

/// The error of the search's service at `index`, naming it: a service the directory does not know is the
/// caller's bad input, one that cannot take the children a precondition; any other failure (a dependency
/// down) is as it came.
pub(super) fn at_service(index: usize, e: ServiceError) -> ServiceError {
    let field = format!("service_ids[{index}]");
    match e {
        ServiceError::NotFound(what) => ServiceError::invalid(field, format!("{what} not found")),
        ServiceError::FailedPrecondition(why) => {
            ServiceError::precondition(format!("{field}: {why}"))
        }
        other => other,
    }
}

/// A submitted referral, as stored.
pub(super) struct NewReferral<'a> {
    pub(super) id: Uuid,
    pub(super) case_id: Uuid,
    pub(super) sender: Uuid,
    pub(super) sender_region: &'a str,
    pub(super) service_id: Uuid,
    pub(super) provider: Uuid,
    pub(super) region_code: &'a str,
    pub(super) foster_team: Uuid,
    pub(super) rdsa: Option<Uuid>,
    pub(super) places: i32,
    pub(super) legal_basis_kind: LegalBasisKind,
    pub(super) legal_basis_number: &'a str,
    pub(super) legal_basis_date: NaiveDate,
    pub(super) legal_basis_court: &'a str,
    pub(super) reason: &'a str,
    pub(super) ack_deadline: DateTime<Utc>,
    pub(super) urgency: Urgency,
    pub(super) idempotency_key: &'a str,
    /// Its submission time; `None` for the database's clock.
    pub(super) at: Option<DateTime<Utc>>,
    pub(super) ages: ChildrenAges,
    /// The search it is one of, and its service's position in the search; `None` for a lone referral.
    pub(super) search: Option<(Uuid, i16)>,
}

/// The row of a new referral from `sender` to the `target` it asked for.
pub(super) fn new_referral<'a>(
    id: Uuid,
    sender: Uuid,
    s: &'a Submission,
    target: &'a Target,
    ack_deadline: chrono::DateTime<Utc>,
) -> NewReferral<'a> {
    NewReferral {
        id,
        case_id: s.case_id,
        sender,
        sender_region: &target.sender_region,
        service_id: s.service_id,
        provider: target.provider,
        region_code: &target.region_code,
        foster_team: target.foster_team,
        rdsa: target.rdsa,
        places: target.places,
        legal_basis_kind: s.legal_basis_kind,
        legal_basis_number: &s.legal_basis_number,
        legal_basis_date: s.legal_basis_date,
        legal_basis_court: &s.legal_basis_court,
        reason: &s.reason,
        ack_deadline,
        urgency: s.urgency,
        idempotency_key: &s.idempotency_key,
        at: s.at,
        ages: target.ages,
        search: None,
    }
}

/// The parties who must acknowledge a new referral: the receiving provider, and the foster-care team when
/// it is another agency.
pub(super) fn receiving_parties(
    referral_id: Uuid,
    provider: Uuid,
    foster_team: Uuid,
) -> Vec<PartyRow> {
    let mut parties = vec![(provider, true, provider == foster_team)];
    if foster_team != provider {
        parties.push((foster_team, false, true));
    }
    parties
        .into_iter()
        .map(
            |(agency_id, receiving_provider, foster_care_team)| PartyRow {
                referral_id,
                agency_id,
                receiving_provider,
                foster_care_team,
                acknowledged_at: None,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::v1::Date;

    fn request() -> SubmitReferralRequest {
        SubmitReferralRequest {
            case_id: Uuid::new_v4().to_string(),
            service_id: Uuid::new_v4().to_string(),
            legal_basis: Some(LegalBasis {
                kind: LegalBasisKind::DsaDirectorOrder as i32,
                number: "ZД-17/2026".into(),
                issued_on: Some(Date {
                    year: 2026,
                    month: 11,
                    day: 2,
                }),
                court: String::new(),
            }),
            reason: "The home is closing.".into(),
            idempotency_key: "k1".into(),
            urgency: 0,
        }
    }

    #[test]
    fn urgency_unspecified_is_routine_and_an_unknown_one_is_refused() {
        let urgency = |code: i32| {
            validate_submission(SubmitReferralRequest {
                urgency: code,
                ..request()
            })
        };
        assert_eq!(urgency(0).map(|s| s.urgency).ok(), Some(Urgency::Routine));
        let emergency = Urgency::Emergency as i32;
        assert_eq!(
            urgency(emergency).map(|s| s.urgency).ok(),
            Some(Urgency::Emergency)
        );
        assert_eq!(
            field(SubmitReferralRequest {
                urgency: 9,
                ..request()
            }),
            "urgency"
        );
        let search = SubmitSearchRequest {
            urgency: Urgency::Urgent as i32,
            ..search(vec![Uuid::new_v4().to_string()])
        };
        assert_eq!(
            validate_search(search).map(|(s, _)| s.urgency).ok(),
            Some(Urgency::Urgent)
        );
    }

    fn field(r: SubmitReferralRequest) -> String {
        match validate_submission(r) {
            Err(ServiceError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn submissions_are_validated_field_by_field() {
        assert!(validate_submission(request()).is_ok());
        let mut r = request();
        r.case_id = "x".into();
        assert_eq!(field(r), "case_id");
        let mut r = request();
        r.idempotency_key.clear();
        assert_eq!(field(r), "idempotency_key");
        let mut r = request();
        r.legal_basis = None;
        assert_eq!(field(r), "legal_basis");
        let mut r = request();
        r.legal_basis.as_mut().unwrap().number = "  ".into();
        assert_eq!(field(r), "legal_basis.number");
        let mut r = request();
        r.legal_basis.as_mut().unwrap().issued_on = Some(Date {
            year: 2026,
            month: 2,
            day: 31,
        });
        assert_eq!(field(r), "legal_basis.issued_on");
        let mut r = request();
        r.legal_basis.as_mut().unwrap().issued_on = Some(Date {
            year: 2999,
            month: 1,
            day: 1,
        });
        assert_eq!(field(r), "legal_basis.issued_on");
        let mut r = request();
        r.legal_basis.as_mut().unwrap().kind = LegalBasisKind::CourtDecision as i32;
        assert_eq!(field(r), "legal_basis.court");
        let mut r = request();
        r.reason = "x".repeat(2001);
        assert_eq!(field(r), "reason");
    }

    /// Each refusal is answered as before its enum: the same code, field and text.
    #[test]
    fn refusals_keep_their_codes_fields_and_text() {
        use SubmissionError as E;
        let cases = [
            (
                E::LegalBasisMissing,
                "INVALID_ARGUMENT",
                "legal_basis: required",
            ),
            (
                E::LegalBasisKindMissing,
                "INVALID_ARGUMENT",
                "legal_basis.kind: required",
            ),
            (
                E::KeyReused,
                "ALREADY_EXISTS",
                "idempotency_key was already used for a different referral",
            ),
            (E::CaseNotFound, "NOT_FOUND", "case not found"),
            (
                E::CaseNotOpen,
                "FAILED_PRECONDITION",
                "the case is not open",
            ),
            (
                E::NoChildren,
                "FAILED_PRECONDITION",
                "the case has no children",
            ),
            (E::ServiceNotFound, "NOT_FOUND", "service not found"),
            (
                E::ServiceNotTaking,
                "FAILED_PRECONDITION",
                "the service takes no referrals now",
            ),
            (
                E::ChildOutsideAges {
                    child: 2,
                    min_age: 3,
                    max_age: 7,
                },
                "FAILED_PRECONDITION",
                "child 2 is outside the service's age range 3-7",
            ),
            (
                E::NoFosterTeam {
                    region_code: "VRC".into(),
                },
                "FAILED_PRECONDITION",
                "district VRC has no foster-care team registered",
            ),
            (
                E::ConcurrentSubmission,
                "UNAVAILABLE",
                "concurrent submission",
            ),
            (E::DeadlineOutOfRange, "INTERNAL", "internal error"),
            (E::MalformedProviderId, "INTERNAL", "internal error"),
        ];
        for (refusal, code, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), code, "{message}");
            assert_eq!(tonic::Status::from(e).message(), message);
        }
    }

    /// A search's own refusals name `service_ids`, with the position where one service is at fault.
    #[test]
    fn search_refusals_keep_their_codes_fields_and_text() {
        use SubmissionError as E;
        let cases = [
            (
                E::NoServices,
                "INVALID_ARGUMENT",
                "service_ids: at least one service",
            ),
            (
                E::TooManyServices,
                "INVALID_ARGUMENT",
                "service_ids: at most 10 services",
            ),
            (
                E::DuplicateService { index: 3 },
                "INVALID_ARGUMENT",
                "service_ids[3]: the same service twice",
            ),
            (
                E::SearchKeyReused,
                "ALREADY_EXISTS",
                "idempotency_key was already used for a different search",
            ),
        ];
        for (refusal, code, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), code, "{message}");
            assert_eq!(tonic::Status::from(e).message(), message);
        }
    }

    fn search(services: Vec<String>) -> SubmitSearchRequest {
        let r = request();
        SubmitSearchRequest {
            case_id: r.case_id,
            service_ids: services,
            legal_basis: r.legal_basis,
            reason: r.reason,
            idempotency_key: r.idempotency_key,
            ..Default::default()
        }
    }

    /// A search names the service at fault by its position, and checks the rest as a lone submission.
    #[test]
    fn searches_are_validated_service_by_service() {
        let ids: Vec<String> = (0..10).map(|_| Uuid::new_v4().to_string()).collect();
        let (s, services) = validate_search(search(ids.clone())).expect("ten services");
        assert_eq!(services.len(), 10);
        assert_eq!(s.service_id.to_string(), ids[0]);
        let refused = |r: SubmitSearchRequest| match validate_search(r) {
            Err(ServiceError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {:?}", other.map(|_| ())),
        };
        assert_eq!(refused(search(Vec::new())), "service_ids");
        let mut eleven = ids.clone();
        eleven.push(Uuid::new_v4().to_string());
        assert_eq!(refused(search(eleven)), "service_ids");
        let mut twice = ids[..3].to_vec();
        twice.push(ids[1].clone());
        assert_eq!(refused(search(twice)), "service_ids[3]");
        assert_eq!(
            refused(search(vec![ids[0].clone(), "not-a-uuid".into()])),
            "service_ids[1]"
        );
        let mut no_reason = search(ids[..2].to_vec());
        no_reason.reason = " ".into();
        assert_eq!(refused(no_reason), "reason");
        let one = of_search(&s, Uuid::nil(), 4, services[4]);
        assert_eq!(one.service_id, services[4]);
        assert_ne!(one.idempotency_key, s.idempotency_key);
    }

    /// A service's refusal in a search names its position; a dependency's failure is left as it came.
    #[test]
    fn a_service_at_fault_is_named_by_its_position() {
        let e = at_service(2, SubmissionError::ServiceNotFound.into());
        assert!(
            matches!(&e, ServiceError::InvalidArgument { field, .. } if field == "service_ids[2]"),
            "{e:?}"
        );
        let e = at_service(0, SubmissionError::ServiceNotTaking.into());
        assert!(
            matches!(&e, ServiceError::FailedPrecondition(m) if m == "service_ids[0]: the service takes no referrals now"),
            "{e:?}"
        );
        let e = at_service(1, ServiceError::Unavailable("directory".into()));
        assert!(matches!(e, ServiceError::Unavailable(_)));
    }

    /// A refusal names its field apart from its reason; an internal error tells the caller nothing, and
    /// keeps its cause in the error.
    #[test]
    fn refusals_keep_their_field_and_internal_errors_their_cause() {
        use SubmissionError as E;
        let e = ServiceError::from(E::LegalBasisKindMissing);
        assert!(
            matches!(&e, ServiceError::InvalidArgument { field, reason } if field == "legal_basis.kind" && reason == "required")
        );
        assert!(matches!(
            ServiceError::from(E::MalformedProviderId),
            ServiceError::Internal(m) if m == "directory returned a malformed id"
        ));
        assert!(matches!(
            ServiceError::from(E::DeadlineOutOfRange),
            ServiceError::Internal(m) if m == "acknowledgement deadline out of range"
        ));
    }

    mod fuzz {
        use super::super::*;
        use placement_proto::v1::{Date, LegalBasis};
        use proptest::prelude::*;
        use prost::Message;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever bytes arrive as a submission, validation answers (and never panics).
            #[test]
            fn random_bytes_as_a_submission(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
                if let Ok(req) = SubmitReferralRequest::decode(bytes.as_slice()) {
                    let _ = validate_submission(req);
                }
            }

            /// Any field values: either a clean submission within every limit, or INVALID_ARGUMENT.
            #[test]
            fn random_fields_of_a_submission(
                case_id in ".{0,60}", service_id in ".{0,60}", number in "\\PC{0,80}",
                court in "\\PC{0,250}", reason in "\\PC{0,2100}", key in ".{0,150}",
                year in any::<i32>(), month in any::<i32>(), day in any::<i32>(), kind in any::<i32>(),
            ) {
                let req = SubmitReferralRequest {
                    case_id, service_id, reason, idempotency_key: key,
                    legal_basis: Some(LegalBasis { kind, number, court, issued_on: Some(Date { year, month, day }) }),
                    urgency: kind.rotate_left(7),
                };
                match validate_submission(req) {
                    Ok(s) => {
                        prop_assert!(s.reason.chars().count() <= 2000 && !s.reason.is_empty());
                        prop_assert!(s.legal_basis_number.chars().count() <= 64);
                        prop_assert!(s.idempotency_key.chars().count() <= 128);
                    }
                    Err(e) => prop_assert!(matches!(e, ServiceError::InvalidArgument { .. }), "{e:?}"),
                }
            }
        }
    }
}
