//! The roles a token grants, and the acts on cases and referrals each allows.

/// What a caller may do, as granted by its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Works cases and referrals of its agency: opens cases, submits, acknowledges, reads.
    Caseworker,
    /// Decides for its agency: accepts, declines, withdraws, confirms placements, records court decisions,
    /// closes cases (and everything a caseworker does).
    Supervisor,
    /// Changes the directory: agencies, services, capacity, notification endpoints.
    DirectoryAdmin,
    /// Runs the system: status, dead letters, deliveries, the audit trail; on a token of the national
    /// authority only (see `Caller::require_operator`), on any other agency's it grants nothing.
    Operator,
    /// Another system of the agency: reads its referrals and notifications, changes nothing.
    Integration,
}

pub const ALL_ROLES: [Role; 5] = [
    Role::Caseworker,
    Role::Supervisor,
    Role::DirectoryAdmin,
    Role::Operator,
    Role::Integration,
];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Caseworker => "caseworker",
            Role::Supervisor => "supervisor",
            Role::DirectoryAdmin => "directory_admin",
            Role::Operator => "operator",
            Role::Integration => "integration",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        ALL_ROLES.into_iter().find(|r| r.as_str() == s.trim())
    }
}

/// Kinds of act on cases and referrals, each with the roles that may do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Reading: the agency's staff and its own systems.
    Read,
    /// Opening cases, submitting and acknowledging referrals.
    Work,
    /// Decisions that commit the agency: accept, decline, withdraw, confirm, record a court decision, close.
    Decide,
}

impl Act {
    pub fn roles(self) -> &'static [Role] {
        match self {
            Act::Read => &[Role::Caseworker, Role::Supervisor, Role::Integration],
            Act::Work => &[Role::Caseworker, Role::Supervisor],
            Act::Decide => &[Role::Supervisor],
        }
    }
}

/// The roles of a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles(u8);

impl Roles {
    pub fn of(roles: &[Role]) -> Self {
        Self(roles.iter().fold(0, |acc, r| acc | (1 << *r as u8)))
    }

    pub fn has(self, role: Role) -> bool {
        self.0 & (1 << role as u8) != 0
    }

    pub fn any(self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    pub fn list(self) -> Vec<Role> {
        ALL_ROLES.into_iter().filter(|r| self.has(*r)).collect()
    }
}
