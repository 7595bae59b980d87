//! The referral's state machine, free of I/O: who may do what, in which status, and what follows.
//!
//! ```text
//! SUBMITTED --every party acknowledged--> ACKNOWLEDGED --accept--> ACCEPTED --confirm--> PLACED
//!                                              \--decline--> DECLINED
//! SUBMITTED | ACKNOWLEDGED | ACCEPTED --withdraw (sender)--> WITHDRAWN
//! SUBMITTED past its deadline --escalate (system)--> SUBMITTED, escalated
//! SUBMITTED at half its deadline --remind (system)--> SUBMITTED, reminded
//! any but DECLINED | WITHDRAWN, on a director's order without a court decision:
//!     three weeks after the order --remind of the court (system)--> same status
//!     --record the court decision (sender)--> same status
//! ```

use placement_proto::v1::{ReferralAction, ReferralStatus};
use uuid::Uuid;

/// What the state machine needs to know of a referral.
#[derive(Debug, Clone)]
pub struct ReferralState {
    pub status: ReferralStatus,
    pub sender: Uuid,
    /// The agency that runs the receiving service: it accepts or declines.
    pub receiving_agency: Uuid,
    /// Required acknowledgers and whether each has acknowledged.
    pub parties: Vec<(Uuid, bool)>,
    pub escalated: bool,
    /// The parties that had not acknowledged at half the deadline were reminded.
    pub reminded: bool,
    /// The referral rests on a DSA director's order and no court decision is recorded yet.
    pub awaiting_court: bool,
    /// The sender was reminded to apply to the court.
    pub court_reminded: bool,
}

/// A request to change a referral. `None` as actor means the system (the escalation scheduler).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Acknowledge,
    Accept,
    Decline,
    Withdraw,
    ConfirmPlacement,
    Escalate,
    Remind,
    RemindOfCourt,
    RecordCourtDecision,
}

/// The outcome of an allowed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub action: ReferralAction,
    pub from: ReferralStatus,
    pub to: ReferralStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The actor has no standing for this command on this referral.
    #[error("{0}")]
    NotAllowed(&'static str),
    /// The actor may, but not in this status.
    #[error("{0}")]
    WrongState(String),
}

impl ReferralState {
    /// Decides `command` by `actor`. Standing is checked before status, so a stranger learns nothing of
    /// the referral's progress.
    pub fn decide(
        &self,
        command: Command,
        actor: Option<Uuid>,
    ) -> Result<Transition, TransitionError> {
        use Command::*;
        use ReferralStatus as S;
        let is = |who: Uuid| actor == Some(who);
        match command {
            Acknowledge => {
                let party = self
                    .parties
                    .iter()
                    .find(|(agency, _)| is(*agency))
                    .ok_or(TransitionError::NotAllowed(
                        "only the receiving service's agency and the district's foster-care team acknowledge",
                    ))?;
                self.require(&[S::Submitted], "acknowledge")?;
                if party.1 {
                    return Err(TransitionError::WrongState(
                        "this agency has already acknowledged the referral".into(),
                    ));
                }
                let outstanding = self.parties.iter().filter(|(_, acked)| !acked).count();
                let to = if outstanding == 1 {
                    S::Acknowledged
                } else {
                    S::Submitted
                };
                Ok(self.to(ReferralAction::Acknowledged, to))
            }
            Accept | Decline => {
                if !is(self.receiving_agency) {
                    return Err(TransitionError::NotAllowed(
                        "only the agency that runs the receiving service accepts or declines",
                    ));
                }
                self.require(
                    &[S::Acknowledged],
                    if command == Accept {
                        "accept"
                    } else {
                        "decline"
                    },
                )?;
                Ok(if command == Accept {
                    self.to(ReferralAction::Accepted, S::Accepted)
                } else {
                    self.to(ReferralAction::Declined, S::Declined)
                })
            }
            Withdraw => {
                if !is(self.sender) {
                    return Err(TransitionError::NotAllowed(
                        "only the sender withdraws a referral",
                    ));
                }
                self.require(&[S::Submitted, S::Acknowledged, S::Accepted], "withdraw")?;
                Ok(self.to(ReferralAction::Withdrawn, S::Withdrawn))
            }
            ConfirmPlacement => {
                if !is(self.sender) {
                    return Err(TransitionError::NotAllowed(
                        "only the sender confirms a placement",
                    ));
                }
                self.require(&[S::Accepted], "confirm the placement of")?;
                Ok(self.to(ReferralAction::Placed, S::Placed))
            }
            Escalate => {
                if actor.is_some() {
                    return Err(TransitionError::NotAllowed("only the system escalates"));
                }
                self.require(&[S::Submitted], "escalate")?;
                if self.escalated {
                    return Err(TransitionError::WrongState("already escalated".into()));
                }
                Ok(self.to(ReferralAction::Escalated, self.status))
            }
            Remind => {
                if actor.is_some() {
                    return Err(TransitionError::NotAllowed("only the system reminds"));
                }
                self.require(&[S::Submitted], "remind of")?;
                if self.reminded || self.escalated {
                    return Err(TransitionError::WrongState(
                        "already reminded or escalated".into(),
                    ));
                }
                Ok(self.to(ReferralAction::Reminded, self.status))
            }
            RemindOfCourt | RecordCourtDecision => {
                let (verb, action) = if command == RemindOfCourt {
                    if actor.is_some() {
                        return Err(TransitionError::NotAllowed("only the system reminds"));
                    }
                    ("remind of the court for", ReferralAction::CourtDecisionDue)
                } else {
                    if !is(self.sender) {
                        return Err(TransitionError::NotAllowed(
                            "only the sender records the court decision",
                        ));
                    }
                    (
                        "record a court decision on",
                        ReferralAction::CourtDecisionRecorded,
                    )
                };
                self.require(
                    &[S::Submitted, S::Acknowledged, S::Accepted, S::Placed],
                    verb,
                )?;
                if !self.awaiting_court {
                    return Err(TransitionError::WrongState(
                        "the referral does not rest on a director's order awaiting a court decision".into(),
                    ));
                }
                if command == RemindOfCourt && self.court_reminded {
                    return Err(TransitionError::WrongState("already reminded".into()));
                }
                Ok(self.to(action, self.status))
            }
        }
    }

    fn require(&self, allowed: &[ReferralStatus], verb: &str) -> Result<(), TransitionError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(TransitionError::WrongState(format!(
                "cannot {verb} a referral in status {}",
                self.status
                    .as_str_name()
                    .trim_start_matches("REFERRAL_STATUS_")
            )))
        }
    }

    fn to(&self, action: ReferralAction, to: ReferralStatus) -> Transition {
        Transition {
            action,
            from: self.status,
            to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Command::*;
    use ReferralStatus as S;

    const ALL_STATUSES: [S; 6] = [
        S::Submitted,
        S::Acknowledged,
        S::Accepted,
        S::Declined,
        S::Placed,
        S::Withdrawn,
    ];

    struct Parties {
        sender: Uuid,
        provider: Uuid,
        foster: Uuid,
        stranger: Uuid,
    }

    fn parties() -> Parties {
        Parties {
            sender: Uuid::new_v4(),
            provider: Uuid::new_v4(),
            foster: Uuid::new_v4(),
            stranger: Uuid::new_v4(),
        }
    }

    fn state(p: &Parties, status: S, acked: (bool, bool)) -> ReferralState {
        ReferralState {
            status,
            sender: p.sender,
            receiving_agency: p.provider,
            parties: vec![(p.provider, acked.0), (p.foster, acked.1)],
            escalated: false,
            reminded: false,
            awaiting_court: true,
            court_reminded: false,
        }
    }

    /// Which (command, actor, status) triples are allowed, and where they lead.
    fn expected(p: &Parties, command: Command, actor: Option<Uuid>, status: S) -> Option<S> {
        match (command, status) {
            (Acknowledge, S::Submitted) if actor == Some(p.provider) || actor == Some(p.foster) => {
                Some(S::Submitted)
            }
            (Accept, S::Acknowledged) if actor == Some(p.provider) => Some(S::Accepted),
            (Decline, S::Acknowledged) if actor == Some(p.provider) => Some(S::Declined),
            (Withdraw, S::Submitted | S::Acknowledged | S::Accepted) if actor == Some(p.sender) => {
                Some(S::Withdrawn)
            }
            (ConfirmPlacement, S::Accepted) if actor == Some(p.sender) => Some(S::Placed),
            (Escalate | Remind, S::Submitted) if actor.is_none() => Some(S::Submitted),
            (RemindOfCourt, S::Submitted | S::Acknowledged | S::Accepted | S::Placed)
                if actor.is_none() =>
            {
                Some(status)
            }
            (RecordCourtDecision, S::Submitted | S::Acknowledged | S::Accepted | S::Placed)
                if actor == Some(p.sender) =>
            {
                Some(status)
            }
            _ => None,
        }
    }

    #[test]
    fn every_command_by_every_actor_in_every_status() {
        let p = parties();
        let actors = [
            Some(p.sender),
            Some(p.provider),
            Some(p.foster),
            Some(p.stranger),
            None,
        ];
        let commands = [
            Acknowledge,
            Accept,
            Decline,
            Withdraw,
            ConfirmPlacement,
            Escalate,
            Remind,
            RemindOfCourt,
            RecordCourtDecision,
        ];
        let mut allowed = 0;
        for status in ALL_STATUSES {
            for command in commands {
                for actor in actors {
                    let got = state(&p, status, (false, false)).decide(command, actor);
                    match expected(&p, command, actor, status) {
                        Some(to) => {
                            allowed += 1;
                            let t = got.unwrap_or_else(|e| {
                                panic!("{command:?} by {actor:?} in {status:?} refused: {e}")
                            });
                            assert_eq!((t.from, t.to), (status, to), "{command:?} in {status:?}");
                        }
                        None => assert!(
                            got.is_err(),
                            "{command:?} by {actor:?} in {status:?} should be refused"
                        ),
                    }
                }
            }
        }
        // 2 acknowledgers + accept + decline + 3 withdrawals + confirm + escalate + remind
        // + 4 court reminders + 4 court decisions.
        assert_eq!(allowed, 18);
    }

    #[test]
    fn strangers_are_refused_for_standing_whatever_the_status() {
        let p = parties();
        for status in ALL_STATUSES {
            for command in [Acknowledge, Accept, Decline, Withdraw, ConfirmPlacement] {
                let got = state(&p, status, (false, false)).decide(command, Some(p.stranger));
                assert!(
                    matches!(got, Err(TransitionError::NotAllowed(_))),
                    "{command:?} {status:?}"
                );
            }
        }
        // The sender cannot accept its own referral; the provider cannot withdraw or confirm it.
        let s = state(&p, S::Acknowledged, (true, true));
        assert!(matches!(
            s.decide(Accept, Some(p.sender)),
            Err(TransitionError::NotAllowed(_))
        ));
        assert!(matches!(
            s.decide(Withdraw, Some(p.provider)),
            Err(TransitionError::NotAllowed(_))
        ));
        let s = state(&p, S::Accepted, (true, true));
        assert!(matches!(
            s.decide(ConfirmPlacement, Some(p.provider)),
            Err(TransitionError::NotAllowed(_))
        ));
        // The foster-care team acknowledges but does not accept.
        assert!(matches!(
            state(&p, S::Acknowledged, (true, true)).decide(Accept, Some(p.foster)),
            Err(TransitionError::NotAllowed(_))
        ));
    }

    #[test]
    fn the_last_acknowledgement_moves_to_acknowledged() {
        let p = parties();
        let s = state(&p, S::Submitted, (true, false));
        let t = s.decide(Acknowledge, Some(p.foster)).unwrap();
        assert_eq!(t.to, S::Acknowledged);
        assert_eq!(t.action, ReferralAction::Acknowledged);
        // The first of two leaves the status as it is.
        let s = state(&p, S::Submitted, (false, false));
        assert_eq!(
            s.decide(Acknowledge, Some(p.foster)).unwrap().to,
            S::Submitted
        );
    }

    #[test]
    fn acknowledging_twice_is_refused() {
        let p = parties();
        let s = state(&p, S::Submitted, (true, false));
        assert!(matches!(
            s.decide(Acknowledge, Some(p.provider)),
            Err(TransitionError::WrongState(_))
        ));
    }

    #[test]
    fn one_agency_in_both_roles_acknowledges_once_for_both() {
        let p = parties();
        let s = ReferralState {
            status: S::Submitted,
            sender: p.sender,
            receiving_agency: p.provider,
            parties: vec![(p.provider, false)],
            escalated: false,
            reminded: false,
            awaiting_court: false,
            court_reminded: false,
        };
        assert_eq!(
            s.decide(Acknowledge, Some(p.provider)).unwrap().to,
            S::Acknowledged
        );
    }

    #[test]
    fn escalation_happens_once_and_keeps_the_status() {
        let p = parties();
        let mut s = state(&p, S::Submitted, (true, false));
        let t = s.decide(Escalate, None).unwrap();
        assert_eq!((t.to, t.action), (S::Submitted, ReferralAction::Escalated));
        s.escalated = true;
        assert!(matches!(
            s.decide(Escalate, None),
            Err(TransitionError::WrongState(_))
        ));
        assert!(matches!(
            s.decide(Escalate, Some(p.sender)),
            Err(TransitionError::NotAllowed(_))
        ));
    }

    #[test]
    fn reminders_happen_once_and_keep_the_status() {
        let p = parties();
        let mut s = state(&p, S::Submitted, (true, false));
        assert_eq!(
            s.decide(Remind, None).unwrap().action,
            ReferralAction::Reminded
        );
        s.reminded = true;
        assert!(matches!(
            s.decide(Remind, None),
            Err(TransitionError::WrongState(_))
        ));
        // Once escalated, a late reminder is pointless.
        let mut s = state(&p, S::Submitted, (false, false));
        s.escalated = true;
        assert!(s.decide(Remind, None).is_err());

        let mut s = state(&p, S::Placed, (true, true));
        assert_eq!(
            s.decide(RemindOfCourt, None).unwrap().action,
            ReferralAction::CourtDecisionDue
        );
        s.court_reminded = true;
        assert!(s.decide(RemindOfCourt, None).is_err());
        // Recording the decision is still possible after the reminder, and only while one is awaited.
        assert!(s.decide(RecordCourtDecision, Some(p.sender)).is_ok());
        s.awaiting_court = false;
        assert!(matches!(
            s.decide(RecordCourtDecision, Some(p.sender)),
            Err(TransitionError::WrongState(_))
        ));
        assert!(s.decide(RemindOfCourt, None).is_err());
    }
}
