# The notices of the exchange, in English: worded from a notice's facts when it is shown or sent, the same
# in the inbox, the e-mail and the web app. Every message takes the same variables as its Bulgarian twin.

notice-submitted-title = New placement request { $reference }: acknowledge by { $deadline }
notice-submitted-body = Referral { $reference } from { $sender } ({ $from }) asks for { $places ->
        [one] one place
       *[other] { $places } places
    } at { $service } ({ $district }). Please acknowledge it by { $deadline }; then the service accepts or declines it.
notice-acknowledged-title = Referral { $reference } acknowledged
notice-acknowledged-body = { $agency } acknowledged referral { $reference }.
notice-accepted-title = Referral { $reference } accepted
notice-accepted-body = { $service } accepted referral { $reference } and holds { $places ->
        [one] one place
       *[other] { $places } places
    }. Confirm the placement when the children arrive.
notice-declined-title = Referral { $reference } declined
notice-declined-body = { $service } declined referral { $reference }. Reason: { $reason }. You may refer the case to another service.
notice-withdrawn-title = Referral { $reference } withdrawn
notice-withdrawn-body = { $sender } withdrew referral { $reference }. Reason: { $reason }. Any places held are released.
notice-placed-title = Referral { $reference }: children placed
notice-placed-body = { $sender } confirmed the placement of referral { $reference } at { $service }; { $places ->
        [one] one place is
       *[other] { $places } places are
    } now occupied.
notice-escalated-title = Referral { $reference } escalated: { $step } overdue
notice-escalated-body = The time for { $step } on referral { $reference } to { $service } ({ $district }) ran out at { $deadline } without the step being taken.
notice-reminder-title = Reminder: referral { $reference } awaits { $step } by { $deadline }
notice-reminder-body = Half the time for { $step } on referral { $reference } ({ $service }, { $district }) has passed and your agency has not taken this step yet. Deadline: { $deadline }.
notice-court-due-title = Referral { $reference }: apply to the court by { $due }
notice-court-due-body = The director's order of { $order } behind referral { $reference } is three weeks old and no court decision is recorded. The law gives one month to apply to the court: by { $due }. Record the decision on the referral once the court has ruled.
notice-court-recorded-title = Referral { $reference }: court decision recorded
notice-court-recorded-body = { $sender } recorded the court decision on referral { $reference }.
notice-step-title = Referral { $reference }: a new step
notice-step-body = Referral { $reference } has a new step. Open the referral to see it.

# Who or what a notice names when the name is not known (yet): in the middle of a sentence, lower case.
notice-unknown-sender = the sending directorate
notice-unknown-agency = one of the parties
notice-unknown-service = the service

notice-decline-at-capacity = no free places
notice-decline-needs-not-met = the children's needs cannot be met
notice-decline-age-out-of-range = outside the service's age range
notice-decline-siblings-cannot-be-kept-together = the siblings cannot be kept together
notice-withdraw-placed-elsewhere = the children were placed elsewhere
notice-withdraw-reintegrated = the children returned to their family
notice-withdraw-court-decision = the court decided otherwise
notice-withdraw-submitted-in-error = sent by mistake
notice-reason-other = another reason

# At the end of an e-mail, before its link.
notice-open-referral = Open the referral

notice-arrived-title = Referral { $reference }: the children arrived
notice-arrived-body = { $service } recorded the children's arrival on referral { $reference }.
notice-postponed-title = Referral { $reference }: { $step } postponed to { $deadline }
notice-postponed-body = { $agency } postponed { $step } on referral { $reference }. Waiting reason: { $waiting }{ $until ->
        [none] {""}
       *[other] {" "}(until { $until })
    }. New deadline: { $deadline }.

# The steps of a referral, as a sentence names them.
notice-step-acknowledgement = the acknowledgement
notice-step-decision = the decision (accept or decline)
notice-step-confirmation = the confirmation of the placement
notice-step-arrival = the record of the arrival

notice-waiting-assessment-under-way = the children's needs are being assessed
notice-waiting-documents-missing = documents are missing
notice-waiting-place-freeing = a place is freeing
notice-waiting-awaiting-court = waiting for the court

# A district's digest before its coordination mechanism meets (the figures' names come from their own
# catalogue, placement_model::figures, as the figures page shows them).
digest-title = Digest for { $district } before the coordination mechanism meets: { $stalled ->
        [0] no stalled referrals
        [one] { $stalled } stalled referral
       *[other] { $stalled } stalled referrals
    }
digest-period = { $district }, { $start } – { $end }.
digest-as-receiver = To services in the district
digest-as-sender = Sent from the district
digest-durations = median { $median }, 9 in 10 within { $p90 }, slowest { $slowest } ({ $count ->
        [one] { $count } referral
       *[other] { $count } referrals
    })
digest-none-yet = none yet
digest-none-stalled = No referral is stalled.
digest-stalled-heading = Stalled now (a step past its deadline), oldest first:
digest-stalled = { $reference } ({ $from } → { $to }): { $step }, deadline { $deadline }{ $holders ->
        [none] {""}
       *[other] {"; "}waiting for { $holders }
    }
digest-unnamed-agencies = { $count ->
        [one] one agency
       *[other] { $count } agencies
    }
digest-free-elsewhere = free places elsewhere: { $places }
digest-free-place = { $service ->
        [none] { $district }: { $free }
       *[other] { $service } ({ $district }): { $free }
    }
digest-more = { $count } more: see the figures.
# At the end of the digest's e-mail, before its link.
digest-open-figures = Open the district's figures

# A search whose round ran out, named by the references of its referrals.
search-named = { $first ->
        [none] the search
       *[other] { $others ->
            [0] the search for referral { $first }
           *[other] the search for referrals { $first } and { $others } more
        }
    }
search-exhausted-title = { search-named } found no place
search-exhausted-body = Every request of round { $round } of { search-named } was declined, withdrawn or passed its deadline. { $fitting ->
        [0] No service with free places fits the children now.
       *[other] Services that fit the children now: { $fitting }. You can send them a new round of the search in one step.
    }{ $others ->
        [0] {""}
       *[other] {" "}The search's referrals: { $references }.
    }
# At the end of the e-mail, before its link.
search-open-case = Open the case

# One of the agency's e-mail addresses or webhooks kept failing and was disabled.
endpoint-disabled-title = A notification endpoint was disabled: { $address }
endpoint-disabled-body = Deliveries to { $address } kept failing (last error: { $reason }), so it was disabled. Fix it, then enable it again in the directory; an operator can retry the failed deliveries.
