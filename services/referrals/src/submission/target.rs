//! Where a submission goes, asked of the cases service (as the caller, so the case's owner decides who
//! reads it) and the directory (the service, the receiving district's foster-care team and RDSA) with
//! deadlines: these answers must be current, and a referral is submitted rarely enough that a lookup costs
//! nothing. The agencies this service learnt from the directory's events answer first where they can.

use chrono::{Datelike, Utc};
use placement_platform::{
    caller::Caller,
    error::{ServiceError, ServiceResult},
};
use placement_proto::v1::{
    AgencyKind, CaseStatus, GetAgencyRequest, GetCaseRequest, GetServiceRequest,
    ListAgenciesRequest, PageRequest, ServiceStatus, ServiceType, SocialService,
};
use uuid::Uuid;

use super::{
    Submissions,
    model::{Submission, SubmissionError, Target, at_service},
};
use crate::{agencies::store as agencies, referral::ChildrenAges};

/// What the cases service said of a submission's case.
pub(super) struct CaseFacts {
    places: i32,
    birth_years: Vec<i32>,
    ages: ChildrenAges,
}

impl Submissions {
    /// Where the referral goes, asked of the cases service (as the caller: it refuses anyone but the
    /// case's owner) and the directory at once; the answers are judged in that order, so the error a
    /// caller gets is stable.
    pub(super) async fn target(&self, caller: &Caller, s: &Submission) -> ServiceResult<Target> {
        let (case, service) = tokio::join!(
            self.case_of(caller, s.case_id),
            self.service_of(caller, s.service_id),
        );
        let case = case?;
        // The sender's district is read with the receiving district's agencies, in one statement.
        self.receiving_side(caller, &case, service?, None).await
    }

    /// Where each referral of a search goes: the case asked once, then each service in the order asked,
    /// judged as [`Self::target`] judges one; the first at fault refuses the whole search, named.
    pub(super) async fn targets(
        &self,
        caller: &Caller,
        s: &Submission,
        services: &[Uuid],
    ) -> ServiceResult<Vec<Target>> {
        let (case, sender) =
            tokio::join!(self.case_of(caller, s.case_id), self.sender_region(caller),);
        let case = case?;
        let sender_region = sender?;
        let mut out = Vec::with_capacity(services.len());
        for (index, id) in services.iter().enumerate() {
            let target = async {
                let service = self.service_of(caller, *id).await?;
                self.receiving_side(caller, &case, service, Some(sender_region.clone()))
                    .await
            }
            .await
            .map_err(|e| at_service(index, e))?;
            out.push(target);
        }
        Ok(out)
    }

    /// The case, as its owner sees it: open, with children.
    async fn case_of(&self, caller: &Caller, case_id: Uuid) -> ServiceResult<CaseFacts> {
        let case = self
            .cases
            .clone()
            .get_case(caller.forward(GetCaseRequest {
                case_id: case_id.to_string(),
            }))
            .await
            .map_err(|status| missing_as(status, SubmissionError::CaseNotFound))?
            .into_inner();
        if case.status != CaseStatus::Open as i32 {
            return Err(SubmissionError::CaseNotOpen.into());
        }
        let places = placement_platform::numbers::len_i32(case.children.len());
        let birth_years: Vec<i32> = case.children.iter().map(|c| c.birth_year).collect();
        let ages = ChildrenAges::of(Utc::now().year(), birth_years.iter().copied())
            .ok_or(SubmissionError::NoChildren)?;
        if places == 0 {
            return Err(SubmissionError::NoChildren.into());
        }
        Ok(CaseFacts {
            places,
            birth_years,
            ages,
        })
    }

    /// How many children the case has and their ages, as its owner sees it (open, with children).
    pub(super) async fn children_of(
        &self,
        caller: &Caller,
        case_id: Uuid,
    ) -> ServiceResult<(i32, ChildrenAges)> {
        let case = self.case_of(caller, case_id).await?;
        Ok((case.places, case.ages))
    }

    async fn service_of(&self, caller: &Caller, service_id: Uuid) -> ServiceResult<SocialService> {
        Ok(self
            .directory
            .clone()
            .get_service(caller.forward(GetServiceRequest {
                service_id: service_id.to_string(),
            }))
            .await
            .map_err(|status| missing_as(status, SubmissionError::ServiceNotFound))?
            .into_inner())
    }

    /// The service judged for the case's children, and the receiving district's parties; the sender's
    /// district too when `sender_region` is not known yet.
    async fn receiving_side(
        &self,
        caller: &Caller,
        case: &CaseFacts,
        service: SocialService,
        sender_region: Option<String>,
    ) -> ServiceResult<Target> {
        let sender = sender_region.is_none().then_some(caller.agency_id);
        let known =
            agencies::known_for_submission(&self.pool, sender, &service.region_code).await?;
        // Before the service is judged, as the sender's district was asked for with the service: the
        // error a caller gets stays the one it was.
        let sender_region = match sender_region.or(known.sender_region) {
            Some(region) => region,
            None => self.listed_region(caller).await?,
        };
        if service.status != ServiceStatus::Active as i32 {
            return Err(SubmissionError::ServiceNotTaking.into());
        }
        let this_year = Utc::now().year();
        for (i, birth_year) in case.birth_years.iter().enumerate() {
            // Birth year alone: the child is one of two ages; refuse only if neither fits.
            let oldest = u32::try_from(this_year.saturating_sub(*birth_year)).unwrap_or(0);
            let youngest = oldest.saturating_sub(1);
            if oldest < service.min_age || youngest > service.max_age {
                return Err(SubmissionError::ChildOutsideAges {
                    child: i + 1,
                    min_age: service.min_age,
                    max_age: service.max_age,
                }
                .into());
            }
        }
        let (foster_team, rdsa) = tokio::join!(
            self.first_agency(
                caller,
                &service.region_code,
                AgencyKind::FosterCareTeam,
                known.foster_team
            ),
            self.first_agency(caller, &service.region_code, AgencyKind::Rdsa, known.rdsa),
        );
        let foster_team = foster_team?.ok_or_else(|| SubmissionError::NoFosterTeam {
            region_code: service.region_code.clone(),
        })?;
        let rdsa = rdsa?;
        let provider = Uuid::parse_str(&service.provider_agency_id)
            .map_err(|_| SubmissionError::MalformedProviderId)?;

        Ok(Target {
            places: case.places,
            provider,
            foster_team,
            rdsa,
            sender_region,
            region_code: service.region_code,
            free_places: i32::try_from(service.free_places).unwrap_or(i32::MAX),
            service_version: i64::try_from(service.version).unwrap_or(i64::MAX),
            ages: case.ages,
            service_type: ServiceType::try_from(service.r#type).unwrap_or_default(),
        })
    }

    /// The caller's district: from the agencies this service learnt from the directory's events, or, for
    /// an agency registered so recently that its event has not arrived, from the directory.
    async fn sender_region(&self, caller: &Caller) -> ServiceResult<String> {
        let known = agencies::region_of_agency(&self.pool, caller.agency_id).await?;
        match known {
            Some(region) => Ok(region),
            None => self.listed_region(caller).await,
        }
    }

    /// The caller's district as the directory tells it.
    async fn listed_region(&self, caller: &Caller) -> ServiceResult<String> {
        Ok(self
            .directory
            .clone()
            .get_agency(caller.forward(GetAgencyRequest {
                agency_id: caller.agency_id.to_string(),
            }))
            .await
            .map_err(ServiceError::from)?
            .into_inner()
            .region_code)
    }

    /// The first agency of `kind` in `region` (by id: the earliest registered), if any: the one `known`
    /// from the agencies learnt from events, else (none known yet) from the directory.
    async fn first_agency(
        &self,
        caller: &Caller,
        region: &str,
        kind: AgencyKind,
        known: Option<Uuid>,
    ) -> ServiceResult<Option<Uuid>> {
        if known.is_some() {
            return Ok(known);
        }
        let agencies = self
            .directory
            .clone()
            .list_agencies(caller.forward(ListAgenciesRequest {
                region_code: region.to_string(),
                kind: kind as i32,
                page: Some(PageRequest {
                    page_size: 1,
                    page_token: String::new(),
                }),
            }))
            .await
            .map_err(ServiceError::from)?
            .into_inner()
            .agencies;
        Ok(agencies.first().and_then(|a| Uuid::parse_str(&a.id).ok()))
    }
}

/// The error of a failed call to another service: `missing` when it found no such record (read from the
/// status's code), else the other service's verdict as it gave it.
fn missing_as(status: tonic::Status, missing: SubmissionError) -> ServiceError {
    if status.code() == tonic::Code::NotFound {
        missing.into()
    } else {
        ServiceError::from(status)
    }
}
