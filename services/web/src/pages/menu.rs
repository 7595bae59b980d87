//! The menu of every page, decided here alone from the kind of the person's agency: a DSA opens cases and
//! sends referrals; a provider and a foster-care team receive them, and a provider keeps its services'
//! places; an RDSA and a national authority follow the figures and (as directory administrators) import
//! the register. Where the agency is told of events is offered to its directory administrators.

use placement_proto::v1::AgencyKind;

/// One entry after the inbox (which every menu starts with, with its unread count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    pub href: &'static str,
    /// Its words' catalogue key.
    pub key: &'static str,
    pub id: &'static str,
}

const INCOMING: MenuItem = MenuItem {
    href: "/referrals?direction=incoming",
    key: "nav-incoming",
    id: "nav-incoming",
};
const OUTGOING: MenuItem = MenuItem {
    href: "/referrals?direction=outgoing",
    key: "nav-outgoing",
    id: "nav-outgoing",
};
const NEW_CASE: MenuItem = MenuItem {
    href: "/cases/new",
    key: "nav-new-case",
    id: "nav-new-case",
};
const OUR_SERVICES: MenuItem = MenuItem {
    href: "/directory",
    key: "nav-directory",
    id: "nav-directory",
};
/// The same page for an agency that runs no services: only where it is told.
const TOLD_AT: MenuItem = MenuItem {
    href: "/directory",
    key: "endpoints-title",
    id: "nav-directory",
};
const FIGURES: MenuItem = MenuItem {
    href: "/figures",
    key: "nav-figures",
    id: "nav-figures",
};
const REGISTER: MenuItem = MenuItem {
    href: "/directory/import",
    key: "register-link",
    id: "nav-register",
};

/// The menu of a person of an agency of `kind` (`None` while the directory cannot say: every page is
/// offered, and the services refuse what is not theirs), `admin` when they administer its directory entry.
pub fn menu(kind: Option<AgencyKind>, admin: bool) -> Vec<MenuItem> {
    let told_at = admin.then_some(TOLD_AT);
    match kind {
        Some(AgencyKind::Dsa) => [Some(OUTGOING), Some(NEW_CASE), told_at]
            .into_iter()
            .flatten()
            .collect(),
        Some(AgencyKind::ServiceProvider) => vec![INCOMING, OUR_SERVICES],
        Some(AgencyKind::FosterCareTeam) => {
            [Some(INCOMING), told_at].into_iter().flatten().collect()
        }
        Some(AgencyKind::Rdsa | AgencyKind::NationalAuthority) => {
            [Some(FIGURES), admin.then_some(REGISTER), told_at]
                .into_iter()
                .flatten()
                .collect()
        }
        Some(AgencyKind::Unspecified) | None => {
            vec![INCOMING, OUTGOING, NEW_CASE, OUR_SERVICES]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hrefs(kind: AgencyKind, admin: bool) -> Vec<(&'static str, &'static str)> {
        menu(Some(kind), admin)
            .into_iter()
            .map(|m| (m.href, m.key))
            .collect()
    }

    #[test]
    fn each_kind_is_offered_its_own_pages() {
        assert_eq!(
            hrefs(AgencyKind::Dsa, false),
            [
                ("/referrals?direction=outgoing", "nav-outgoing"),
                ("/cases/new", "nav-new-case")
            ]
        );
        assert_eq!(
            hrefs(AgencyKind::ServiceProvider, false),
            [
                ("/referrals?direction=incoming", "nav-incoming"),
                ("/directory", "nav-directory")
            ]
        );
        assert_eq!(
            hrefs(AgencyKind::Rdsa, true),
            [
                ("/figures", "nav-figures"),
                ("/directory/import", "register-link"),
                ("/directory", "endpoints-title")
            ]
        );
    }

    #[test]
    fn our_services_only_for_an_agency_that_runs_them() {
        for kind in [
            AgencyKind::Dsa,
            AgencyKind::FosterCareTeam,
            AgencyKind::Rdsa,
            AgencyKind::NationalAuthority,
        ] {
            for admin in [false, true] {
                assert!(
                    !hrefs(kind, admin).iter().any(|m| m.1 == "nav-directory"),
                    "{kind:?} is offered «our services»"
                );
            }
        }
        assert!(
            !hrefs(AgencyKind::FosterCareTeam, false)
                .iter()
                .any(|m| m.0 == "/directory")
        );
    }

    #[test]
    fn only_a_dsa_sends_and_only_rdsas_and_national_authorities_see_figures() {
        for kind in [
            AgencyKind::Dsa,
            AgencyKind::ServiceProvider,
            AgencyKind::FosterCareTeam,
            AgencyKind::Rdsa,
            AgencyKind::NationalAuthority,
        ] {
            let items = hrefs(kind, true);
            let has = |href: &str| items.iter().any(|m| m.0 == href);
            assert_eq!(has("/cases/new"), kind == AgencyKind::Dsa, "{kind:?}");
            assert_eq!(
                has("/figures"),
                matches!(kind, AgencyKind::Rdsa | AgencyKind::NationalAuthority),
                "{kind:?}"
            );
        }
    }
}
