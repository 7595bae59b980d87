//! A case and its children as kept, and their wire form: the owner's, the receiving side's, the event's;
//! and what a new case must be.

use chrono::{DateTime, Datelike, Utc};
use placement_model::reference::{Kind, Reference, ReferenceError};
use placement_platform::{
    error::{ServiceError, ServiceResult, check_text},
    time::{opt_timestamp, timestamp},
};
use placement_proto::v1::{
    Case, CaseChanged, CaseCloseReason, CaseStatus, Child, ChildNeed, OpenCaseRequest, Placement,
    Sex,
};
use sqlx::FromRow;
use uuid::Uuid;

use super::personal::{self, SealError};

const MAX_CHILDREN: usize = 12;
const MAX_NEEDS: usize = 10;
const EGN_RULE: &str = "not a valid personal number (EGN: 10 digits, a date of birth that exists, and its check digit)";

/// Why a request about cases is refused. A child is named by its position in the request's `children`,
/// never by what it carries: the values are personal data.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("children: at least one child")]
    NoChildren,
    #[error("children: at most {MAX_CHILDREN}")]
    TooManyChildren,
    #[error("children[{child}].birth_year: between {earliest} and {latest}")]
    BirthYearOutOfRange {
        child: usize,
        earliest: i32,
        latest: i32,
    },
    #[error("children[{child}].sex: required")]
    SexMissing { child: usize },
    #[error("children[{child}].personal_number: {EGN_RULE}")]
    NotAnEgn { child: usize },
    #[error("children[{child}].needs: at most {MAX_NEEDS}")]
    TooManyNeeds { child: usize },
    #[error("children[{child}].needs[{need}]: unknown need")]
    UnknownNeed { child: usize, need: usize },
    #[error("status: unknown status")]
    UnknownStatus,
    #[error("reference: {0}")]
    UnreadableReference(ReferenceError),
    #[error("reference: a referral's reference, not a case's")]
    NotACaseReference,
    #[error("reason: required")]
    CloseReasonMissing,
    #[error("names and personal numbers cannot be stored: the service has no PLACEMENT_DATA_KEY")]
    NoDataKey,
    /// The directory knows no such agency.
    #[error("the calling agency is not registered")]
    CallerNotRegistered,
    #[error("only a DSA opens cases")]
    NotDsa,
    #[error("the case is already closed")]
    AlreadyClosed,
    #[error("the case has a referral in progress; withdraw it first")]
    ReferralInProgress,
    /// Stored sealed data, and a process started without the key to open it: a deployment's mistake.
    #[error("sealed personal data and no PLACEMENT_DATA_KEY")]
    SealedWithoutKey,
    #[error(transparent)]
    Unsealable(#[from] SealError),
}

impl From<CaseError> for ServiceError {
    fn from(e: CaseError) -> Self {
        use CaseError as E;
        let child = |i: usize, rest: &str| format!("children[{i}].{rest}");
        match e {
            E::NoChildren => ServiceError::invalid("children", "at least one child"),
            E::TooManyChildren => {
                ServiceError::invalid("children", format!("at most {MAX_CHILDREN}"))
            }
            E::BirthYearOutOfRange {
                child: i,
                earliest,
                latest,
            } => ServiceError::invalid(
                child(i, "birth_year"),
                format!("between {earliest} and {latest}"),
            ),
            E::SexMissing { child: i } => ServiceError::invalid(child(i, "sex"), "required"),
            E::NotAnEgn { child: i } => {
                ServiceError::invalid(child(i, "personal_number"), EGN_RULE)
            }
            E::TooManyNeeds { child: i } => {
                ServiceError::invalid(child(i, "needs"), format!("at most {MAX_NEEDS}"))
            }
            E::UnknownNeed { child: i, need } => {
                ServiceError::invalid(child(i, &format!("needs[{need}]")), "unknown need")
            }
            E::UnknownStatus => ServiceError::invalid("status", "unknown status"),
            E::UnreadableReference(r) => ServiceError::invalid("reference", r.to_string()),
            E::NotACaseReference => {
                ServiceError::invalid("reference", "a referral's reference, not a case's")
            }
            E::CloseReasonMissing => ServiceError::invalid("reason", "required"),
            E::CallerNotRegistered | E::NotDsa => ServiceError::denied(e.to_string()),
            E::NoDataKey | E::AlreadyClosed | E::ReferralInProgress => {
                ServiceError::precondition(e.to_string())
            }
            E::SealedWithoutKey | E::Unsealable(_) => ServiceError::Internal(e.to_string()),
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub owner_agency_id: Uuid,
    pub status: CaseStatus,
    pub current_setting: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<CaseCloseReason>,
    pub placement_referral_id: Option<Uuid>,
    pub placement_service_id: Option<Uuid>,
    pub placement_provider_agency_id: Option<Uuid>,
    pub placement_region_code: Option<String>,
    pub placed_at: Option<DateTime<Utc>>,
    pub version: i64,
    /// What people say: see [`super::reference`].
    pub reference: String,
    pub placement_referral_reference: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct ChildRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub pseudonym: String,
    pub birth_year: i32,
    pub sex: Sex,
    pub needs: Vec<ChildNeed>,
    pub name_sealed: Option<Vec<u8>>,
    pub personal_number_sealed: Option<Vec<u8>>,
    /// Opened from the sealed columns, for the owner only (see `personal`).
    #[sqlx(skip)]
    pub name: String,
    #[sqlx(skip)]
    pub personal_number: String,
}

impl CaseRow {
    pub fn status(&self) -> CaseStatus {
        self.status
    }

    pub fn into_proto(self, children: Vec<ChildRow>) -> Case {
        let placement = self.placement_referral_id.map(|referral_id| Placement {
            referral_id: referral_id.to_string(),
            service_id: opt_id(self.placement_service_id),
            provider_agency_id: opt_id(self.placement_provider_agency_id),
            region_code: self.placement_region_code.clone().unwrap_or_default(),
            placed_at: opt_timestamp(self.placed_at),
            referral_reference: self
                .placement_referral_reference
                .clone()
                .unwrap_or_default(),
        });
        Case {
            id: self.id.to_string(),
            owner_agency_id: self.owner_agency_id.to_string(),
            status: self.status() as i32,
            children: children.into_iter().map(ChildRow::into_proto).collect(),
            current_setting: self.current_setting,
            placement,
            opened_at: Some(timestamp(self.opened_at)),
            closed_at: opt_timestamp(self.closed_at),
            close_reason: self.close_reason.unwrap_or(CaseCloseReason::Unspecified) as i32,
            version: placement_platform::numbers::serial(self.version),
            reference: self.reference,
        }
    }

    /// The event announcing this case's state: ids and counts only.
    pub fn event(&self, children: u32) -> CaseChanged {
        CaseChanged {
            case_id: self.id.to_string(),
            owner_agency_id: self.owner_agency_id.to_string(),
            status: self.status() as i32,
            children,
            referral_id: opt_id(self.placement_referral_id),
            service_id: opt_id(self.placement_service_id),
            reference: self.reference.clone(),
        }
    }
}

impl ChildRow {
    fn into_proto(self) -> Child {
        Child {
            id: self.id.to_string(),
            pseudonym: self.pseudonym,
            birth_year: self.birth_year,
            sex: self.sex as i32,
            needs: self.needs.iter().map(|n| *n as i32).collect(),
            name: self.name,
            personal_number: self.personal_number,
        }
    }
}

fn opt_id(id: Option<Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

/// A child of a new case, its name and personal number sealed.
pub struct NewChild<'a> {
    pub id: Uuid,
    pub case_id: Uuid,
    pub position: i32,
    pub pseudonym: &'a str,
    pub birth_year: i32,
    pub sex: Sex,
    pub needs: Vec<ChildNeed>,
    pub name_sealed: Option<Vec<u8>>,
    pub personal_number_sealed: Option<Vec<u8>>,
}

/// Where the children of a case were placed.
pub struct CasePlacement<'a> {
    pub case_id: Uuid,
    pub referral_id: Uuid,
    pub service_id: Uuid,
    pub provider: Uuid,
    pub region_code: &'a str,
    pub placed_at: DateTime<Utc>,
    /// The placing referral's reference, as its event told it (empty if it told none).
    pub referral_reference: &'a str,
}

/// What the receiving side of a referral reads of the case: who the children are for the placement
/// (pseudonym, birth year, sex, needs), not where they are now nor where they were placed before.
pub fn receiving_view(case: Case) -> Case {
    Case {
        id: case.id,
        owner_agency_id: case.owner_agency_id,
        status: case.status,
        children: case
            .children
            .into_iter()
            .map(|c| placement_proto::v1::Child {
                id: c.id,
                pseudonym: c.pseudonym,
                birth_year: c.birth_year,
                sex: c.sex,
                needs: c.needs,
                ..Default::default()
            })
            .collect(),
        opened_at: case.opened_at,
        version: case.version,
        reference: case.reference,
        ..Default::default()
    }
}

/// The reference a list is filtered by, written as stored; `None` when none is asked for.
pub fn reference_filter(typed: &str) -> Result<Option<String>, CaseError> {
    if typed.trim().is_empty() {
        return Ok(None);
    }
    let reference = Reference::parse(typed).map_err(CaseError::UnreadableReference)?;
    if reference.kind != Kind::Case {
        return Err(CaseError::NotACaseReference);
    }
    Ok(Some(reference.to_string()))
}

pub fn validate_open(req: &OpenCaseRequest) -> ServiceResult<()> {
    if req.children.is_empty() {
        return Err(CaseError::NoChildren.into());
    }
    if req.children.len() > MAX_CHILDREN {
        return Err(CaseError::TooManyChildren.into());
    }
    check_text("current_setting", &req.current_setting, 0, 500)?;
    let this_year = Utc::now().year();
    for (i, child) in req.children.iter().enumerate() {
        check_text(
            &format!("children[{i}].pseudonym"),
            child.pseudonym.trim(),
            1,
            64,
        )?;
        if child.birth_year > this_year || child.birth_year < this_year - 18 {
            return Err(CaseError::BirthYearOutOfRange {
                child: i,
                earliest: this_year - 18,
                latest: this_year,
            }
            .into());
        }
        if !matches!(Sex::try_from(child.sex), Ok(Sex::Female | Sex::Male)) {
            return Err(CaseError::SexMissing { child: i }.into());
        }
        // The values are never echoed: they are personal data.
        check_text(&format!("children[{i}].name"), child.name.trim(), 0, 200)?;
        if !child.personal_number.is_empty() && !personal::is_egn(&child.personal_number) {
            return Err(CaseError::NotAnEgn { child: i }.into());
        }
        if child.needs.len() > MAX_NEEDS {
            return Err(CaseError::TooManyNeeds { child: i }.into());
        }
        for (j, need) in child.needs.iter().enumerate() {
            match ChildNeed::try_from(*need) {
                Ok(ChildNeed::Unspecified) | Err(_) => {
                    return Err(CaseError::UnknownNeed { child: i, need: j }.into());
                }
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::v1::Child;

    fn child() -> Child {
        Child {
            pseudonym: "Child A".into(),
            birth_year: Utc::now().year() - 4,
            sex: Sex::Female as i32,
            needs: vec![ChildNeed::Medical as i32],
            ..Default::default()
        }
    }

    fn field_of(e: ServiceError) -> String {
        match e {
            ServiceError::InvalidArgument { field, .. } => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_field() {
        let ok = OpenCaseRequest {
            children: vec![child(), child()],
            current_setting: "Home".into(),
        };
        assert!(validate_open(&ok).is_ok());
        assert_eq!(
            field_of(validate_open(&OpenCaseRequest::default()).unwrap_err()),
            "children"
        );
        let mut bad = ok.clone();
        bad.children[1].birth_year = 1990;
        assert_eq!(
            field_of(validate_open(&bad).unwrap_err()),
            "children[1].birth_year"
        );
        let mut bad = ok.clone();
        bad.children[0].pseudonym = " ".into();
        assert_eq!(
            field_of(validate_open(&bad).unwrap_err()),
            "children[0].pseudonym"
        );
        let mut bad = ok.clone();
        bad.children[0].needs = vec![0];
        assert_eq!(
            field_of(validate_open(&bad).unwrap_err()),
            "children[0].needs[0]"
        );
        let mut bad = ok;
        bad.children[0].sex = 0;
        assert_eq!(
            field_of(validate_open(&bad).unwrap_err()),
            "children[0].sex"
        );
    }

    /// Each refusal is answered as before its enum: the same code, field and text.
    #[test]
    fn refusals_keep_their_codes_fields_and_text() {
        use CaseError as E;
        let invalid = [
            (E::NoChildren, "children", "at least one child"),
            (E::TooManyChildren, "children", "at most 12"),
            (
                E::BirthYearOutOfRange {
                    child: 1,
                    earliest: 2008,
                    latest: 2026,
                },
                "children[1].birth_year",
                "between 2008 and 2026",
            ),
            (E::SexMissing { child: 0 }, "children[0].sex", "required"),
            (
                E::NotAnEgn { child: 2 },
                "children[2].personal_number",
                "not a valid personal number (EGN: 10 digits, a date of birth that exists, and its check digit)",
            ),
            (
                E::TooManyNeeds { child: 0 },
                "children[0].needs",
                "at most 10",
            ),
            (
                E::UnknownNeed { child: 1, need: 3 },
                "children[1].needs[3]",
                "unknown need",
            ),
            (E::UnknownStatus, "status", "unknown status"),
            (
                E::UnreadableReference(ReferenceError::Unreadable),
                "reference",
                "not a reference (e.g. Н-ВРЦ-2026-00042 for a referral, С-2026-00042 for a case)",
            ),
            (
                E::NotACaseReference,
                "reference",
                "a referral's reference, not a case's",
            ),
            (E::CloseReasonMissing, "reason", "required"),
        ];
        for (refusal, field, reason) in invalid {
            let message = format!("{field}: {reason}");
            assert_eq!(refusal.to_string(), message);
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), "INVALID_ARGUMENT", "{message}");
            assert!(
                matches!(&e, ServiceError::InvalidArgument { field: f, .. } if f == field),
                "{e:?}"
            );
            assert_eq!(tonic::Status::from(e).message(), message);
        }
    }

    /// The refusals that name no field keep their codes and text; internal ones tell the caller nothing
    /// and keep their cause in the error.
    #[test]
    fn refusals_of_the_case_keep_their_codes_and_text() {
        use CaseError as E;
        let cases = [
            (
                E::NoDataKey,
                "FAILED_PRECONDITION",
                "names and personal numbers cannot be stored: the service has no PLACEMENT_DATA_KEY",
            ),
            (
                E::CallerNotRegistered,
                "PERMISSION_DENIED",
                "the calling agency is not registered",
            ),
            (E::NotDsa, "PERMISSION_DENIED", "only a DSA opens cases"),
            (
                E::AlreadyClosed,
                "FAILED_PRECONDITION",
                "the case is already closed",
            ),
            (
                E::ReferralInProgress,
                "FAILED_PRECONDITION",
                "the case has a referral in progress; withdraw it first",
            ),
            (E::SealedWithoutKey, "INTERNAL", "internal error"),
            (E::Unsealable(SealError::Open), "INTERNAL", "internal error"),
        ];
        for (refusal, code, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), code, "{message}");
            assert_eq!(tonic::Status::from(e).message(), message);
        }
        assert!(matches!(
            ServiceError::from(E::Unsealable(SealError::Open)),
            ServiceError::Internal(m) if m == SealError::Open.to_string()
        ));
        assert!(matches!(
            ServiceError::from(E::SealedWithoutKey),
            ServiceError::Internal(m) if m == "sealed personal data and no PLACEMENT_DATA_KEY"
        ));
    }

    #[test]
    fn a_list_is_filtered_by_a_case_reference_as_stored() {
        assert_eq!(reference_filter(" ").unwrap(), None);
        assert_eq!(
            reference_filter("c-2026-42").unwrap().as_deref(),
            Some("С-2026-00042")
        );
        assert!(matches!(
            reference_filter("Н-ВРЦ-2026-00042"),
            Err(CaseError::NotACaseReference)
        ));
        assert!(matches!(
            reference_filter("01a23b88"),
            Err(CaseError::UnreadableReference(_))
        ));
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;
        use prost::Message;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn random_bytes_as_a_case(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                if let Ok(req) = OpenCaseRequest::decode(bytes.as_slice())
                    && let Err(e) = validate_open(&req)
                {
                    prop_assert!(matches!(e, ServiceError::InvalidArgument { .. }), "{:?}", e);
                }
            }

            /// Refusals never repeat the personal data they refuse.
            #[test]
            fn refusals_do_not_echo_personal_data(name in "\\PC{0,300}", pn in "[0-9a-z]{0,14}", year in 1990i32..2030) {
                let req = OpenCaseRequest {
                    children: vec![placement_proto::v1::Child {
                        pseudonym: "A".into(), birth_year: year, sex: placement_proto::v1::Sex::Male as i32,
                        name: name.clone(), personal_number: pn.clone(), ..Default::default()
                    }],
                    current_setting: String::new(),
                };
                if let Err(e) = validate_open(&req) {
                    let message = tonic::Status::from(e).message().to_string();
                    if name.trim().chars().count() > 3 {
                        prop_assert!(!message.contains(name.trim()));
                    }
                    if pn.len() > 3 {
                        prop_assert!(!message.contains(&pn));
                    }
                }
            }
        }
    }
}
