//! The figures of a district's report, listed once. The CLI, the export, the web page and the digest each
//! walk this catalogue, so they show the same figures under the same names, and a new figure of
//! `DistrictSide` is added here (with its labels) and nowhere else.

use placement_proto::v1::{DistrictSide, DurationFigures, Language, ReferralStatus};

/// Words in both languages the exchange speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Words {
    en: &'static str,
    bg: &'static str,
}

impl Words {
    /// Bulgarian unless English is asked for: the exchange's default, also for an unspecified language.
    fn of(self, language: Language) -> &'static str {
        match language {
            Language::En => self.en,
            Language::Bg | Language::Unspecified => self.bg,
        }
    }
}

/// What a figure measures, and so how it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureKind {
    /// Referrals that took a step in the period (or, for `unanswered`, that have not yet), or searches and
    /// their requests, as the figure's meaning says.
    Count,
    /// Calendar time from the submission, over the referrals submitted in the period it happened to (for
    /// the search figures, over the searches).
    Duration,
    /// The same in working time: Monday to Friday 09:00–17:30 Sofia time, without official holidays.
    WorkingDuration,
}

type CountOf = fn(&DistrictSide) -> u32;
type DurationsOf = fn(&DistrictSide) -> Option<&DurationFigures>;

/// Where a figure's value is in the report, which also fixes its kind: a count cannot be read as times.
#[derive(Clone, Copy)]
enum Source {
    Count(CountOf),
    Duration(DurationsOf),
    WorkingDuration(DurationsOf),
}

/// A figure's value on one side of the report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FigureValue<'a> {
    Count(u32),
    /// A count of 0 means it happened to none of the referrals: there are no times to show.
    Durations(&'a DurationFigures),
}

/// One figure of a side of the district report.
#[derive(Clone, Copy)]
pub struct Figure {
    key: &'static str,
    label_key: &'static str,
    label: Words,
    meaning: Words,
    source: Source,
}

/// The times of a side that has none (the report leaves them out).
const NO_DURATIONS: DurationFigures = DurationFigures {
    count: 0,
    median: None,
    p90: None,
    slowest: None,
};

impl Figure {
    /// Stable and in English: the export's row names (`{key}` for a count; `{key}_count`, `{key}_median_s`
    /// and so on for durations), which other tools read.
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// The web app's Fluent message id for the label (its catalogue takes the text from here).
    pub fn label_key(&self) -> &'static str {
        self.label_key
    }

    /// The figure's name, as a row's heading.
    pub fn label(&self, language: Language) -> &'static str {
        self.label.of(language)
    }

    /// How to read it, in one sentence.
    pub fn meaning(&self, language: Language) -> &'static str {
        self.meaning.of(language)
    }

    pub fn kind(&self) -> FigureKind {
        match self.source {
            Source::Count(_) => FigureKind::Count,
            Source::Duration(_) => FigureKind::Duration,
            Source::WorkingDuration(_) => FigureKind::WorkingDuration,
        }
    }

    /// The figure's value on `side`.
    pub fn value<'a>(&self, side: &'a DistrictSide) -> FigureValue<'a> {
        match self.source {
            Source::Count(of) => FigureValue::Count(of(side)),
            Source::Duration(of) | Source::WorkingDuration(of) => {
                FigureValue::Durations(of(side).unwrap_or(&NO_DURATIONS))
            }
        }
    }
}

const fn figure(
    key: &'static str,
    label_key: &'static str,
    [label_en, label_bg]: [&'static str; 2],
    [meaning_en, meaning_bg]: [&'static str; 2],
    source: Source,
) -> Figure {
    Figure {
        key,
        label_key,
        label: Words {
            en: label_en,
            bg: label_bg,
        },
        meaning: Words {
            en: meaning_en,
            bg: meaning_bg,
        },
        source,
    }
}

/// Every figure of a side, in the order they are shown (the web page's rows: placed is the sixth).
/// Labels and meanings are `[English, Bulgarian]`. The search figures come last: a referral sent alone is
/// not a search (not a search of one), so they count only what was sent with SubmitSearch.
pub const FIGURES: [Figure; 25] = [
    figure(
        "submitted",
        "figures-submitted",
        ["Submitted in the period", "Изпратени през периода"],
        [
            "Referrals submitted in the period.",
            "Направления, изпратени през периода.",
        ],
        Source::Count(|s| s.submitted),
    ),
    figure(
        "acknowledged",
        "figures-acknowledged",
        ["Fully acknowledged", "Потвърдени от всички"],
        [
            "Referrals whose last required acknowledgement came in the period.",
            "Направления, чието последно нужно потвърждение е дошло през периода.",
        ],
        Source::Count(|s| s.acknowledged),
    ),
    figure(
        "accepted",
        "figures-accepted",
        ["Accepted", "Приети"],
        [
            "Referrals the service accepted in the period.",
            "Направления, приети от услугата през периода.",
        ],
        Source::Count(|s| s.accepted),
    ),
    figure(
        "declined",
        "figures-declined",
        ["Declined", "Отказани"],
        [
            "Referrals the service declined in the period (a request closed because another was placed is not a decline).",
            "Направления, отказани от услугата през периода (направление, закрито заради настаняване другаде, не е отказ).",
        ],
        Source::Count(|s| s.declined),
    ),
    figure(
        "withdrawn",
        "figures-withdrawn",
        ["Withdrawn", "Оттеглени"],
        [
            "Referrals their sender withdrew in the period (not those closed as placed elsewhere, counted on their own).",
            "Направления, оттеглени от изпратилия ги през периода (без закритите като настанени другаде, броени отделно).",
        ],
        Source::Count(|s| s.withdrawn),
    ),
    figure(
        "placed",
        "figures-placed",
        ["Placed", "Настанени"],
        [
            "Referrals whose child was placed in the period.",
            "Направления, по които детето е настанено през периода.",
        ],
        Source::Count(|s| s.placed),
    ),
    figure(
        "escalated",
        "figures-escalated",
        ["Escalated (a step late)", "Ескалирани (закъсняла стъпка)"],
        [
            "Escalations in the period, at every step: an acknowledgement, decision, confirmation or arrival past its deadline, or a step postponed a second time.",
            "Ескалации през периода на всяка стъпка: потвърждение, решение, потвърждаване на настаняването или пристигане след срока, или стъпка, отложена втори път.",
        ],
        Source::Count(|s| s.escalated),
    ),
    figure(
        "unanswered",
        "figures-unanswered",
        ["Not answered by anyone", "Без отговор от никого"],
        [
            "Of the referrals submitted in the period, those nobody has answered yet (neither acknowledged nor declined).",
            "От изпратените през периода направления тези, на които още никой не е отговорил (нито потвърждение, нито отказ).",
        ],
        Source::Count(|s| s.unanswered),
    ),
    figure(
        "first_response",
        "figures-first-response",
        ["Time to the first response", "Време до първия отговор"],
        [
            "From the submission to the first answer (an acknowledgement, or a decline made before any), in calendar time.",
            "От изпращането до първия отговор (потвърждение или отказ преди него), в календарно време.",
        ],
        Source::Duration(|s| s.time_to_first_response.as_ref()),
    ),
    figure(
        "all_acknowledgements",
        "figures-all-acknowledgements",
        [
            "Time to every acknowledgement",
            "Време до всички потвърждения",
        ],
        [
            "From the submission to the last acknowledgement needed, in calendar time.",
            "От изпращането до последното нужно потвърждение, в календарно време.",
        ],
        Source::Duration(|s| s.time_to_all_acknowledgements.as_ref()),
    ),
    figure(
        "decision",
        "figures-decision",
        ["Time to the decision", "Време до решението"],
        [
            "From the submission to the acceptance or the decline, in calendar time.",
            "От изпращането до приемането или отказа, в календарно време.",
        ],
        Source::Duration(|s| s.time_to_decision.as_ref()),
    ),
    figure(
        "placement",
        "figures-placement",
        ["Time to the placement", "Време до настаняването"],
        [
            "From the submission to the placement, in calendar time.",
            "От изпращането до настаняването, в календарно време.",
        ],
        Source::Duration(|s| s.time_to_placement.as_ref()),
    ),
    figure(
        "working_first_response",
        "figures-working-first-response",
        [
            "Working time to the first response",
            "Работно време до първия отговор",
        ],
        [
            "From the submission to the first answer (an acknowledgement, or a decline made before any), in working time (weekdays 09:00–17:30, without holidays).",
            "От изпращането до първия отговор (потвърждение или отказ преди него), в работно време (делнични дни 09:00–17:30, без празниците).",
        ],
        Source::WorkingDuration(|s| s.working_time_to_first_response.as_ref()),
    ),
    figure(
        "working_all_acknowledgements",
        "figures-working-all-acknowledgements",
        [
            "Working time to every acknowledgement",
            "Работно време до всички потвърждения",
        ],
        [
            "From the submission to the last acknowledgement needed, in working time.",
            "От изпращането до последното нужно потвърждение, в работно време.",
        ],
        Source::WorkingDuration(|s| s.working_time_to_all_acknowledgements.as_ref()),
    ),
    figure(
        "working_decision",
        "figures-working-decision",
        ["Working time to the decision", "Работно време до решението"],
        [
            "From the submission to the acceptance or the decline, in working time.",
            "От изпращането до приемането или отказа, в работно време.",
        ],
        Source::WorkingDuration(|s| s.working_time_to_decision.as_ref()),
    ),
    figure(
        "working_placement",
        "figures-working-placement",
        [
            "Working time to the placement",
            "Работно време до настаняването",
        ],
        [
            "From the submission to the placement, in working time.",
            "От изпращането до настаняването, в работно време.",
        ],
        Source::WorkingDuration(|s| s.working_time_to_placement.as_ref()),
    ),
    figure(
        "placed_elsewhere",
        "figures-placed-elsewhere",
        [
            "Closed as placed elsewhere",
            "Закрити като настанени другаде",
        ],
        [
            "Requests closed in the period because the children were placed elsewhere (another request of their search, or another way): neither declined nor withdrawn.",
            "Направления, закрити през периода, защото децата са настанени другаде (по друго направление от търсенето им или по друг път): нито отказани, нито оттеглени.",
        ],
        Source::Count(|s| s.placed_elsewhere),
    ),
    figure(
        "searches",
        "figures-searches",
        ["Searches sent", "Изпратени търсения"],
        [
            "Searches (one request sent to several services at once) submitted in the period; a referral sent alone is not counted as a search. On the receiving side, those that asked the district's services.",
            "Търсения (направления за едни и същи деца до няколко услуги наведнъж), изпратени през периода; направление, изпратено само, не се брои за търсене. От страната на получателя: тези, питали услуги в областта.",
        ],
        Source::Count(|s| s.searches),
    ),
    figure(
        "search_services_asked",
        "figures-search-services-asked",
        [
            "Services asked by the searches",
            "Питани услуги в търсенията",
        ],
        [
            "The requests of those searches, one per service asked; divided by the searches, the services asked per search.",
            "Направленията на тези търсения, по едно за всяка питана услуга; разделени на търсенията — питаните услуги на търсене.",
        ],
        Source::Count(|s| s.search_services_asked),
    ),
    figure(
        "search_offers",
        "figures-search-offers",
        ["Offers to the searches", "Оферти по търсенията"],
        [
            "The requests of those searches that a service accepted (an offer), whatever became of them after; divided by the searches, the offers per search.",
            "Направленията на тези търсения, приети от услуга (оферта), каквото и да е станало с тях после; разделени на търсенията — офертите на търсене.",
        ],
        Source::Count(|s| s.search_offers),
    ),
    figure(
        "searches_without_place",
        "figures-searches-without-place",
        [
            "Searches closed without a place",
            "Търсения, закрити без място",
        ],
        [
            "Of those searches, the ones whose every request was declined or withdrawn, none placed and none closed as placed elsewhere.",
            "От тези търсения тези, на които всяко направление е отказано или оттеглено, без настаняване и без закриване като настанени другаде.",
        ],
        Source::Count(|s| s.searches_without_place),
    ),
    figure(
        "first_offer",
        "figures-first-offer",
        [
            "Time to a search's first offer",
            "Време до първата оферта по търсене",
        ],
        [
            "From the search's submission to the first acceptance of any of its requests, in calendar time, over the searches that had one.",
            "От изпращането на търсенето до първото приемане на някое от направленията му, в календарно време, за търсенията с оферта.",
        ],
        Source::Duration(|s| s.time_to_first_offer.as_ref()),
    ),
    figure(
        "chosen_offer",
        "figures-chosen-offer",
        [
            "Time to a search's chosen offer",
            "Време до избраната оферта по търсене",
        ],
        [
            "From the search's submission to the placement the sender confirmed (the offer chosen), in calendar time.",
            "От изпращането на търсенето до потвърденото от изпращача настаняване (избраната оферта), в календарно време.",
        ],
        Source::Duration(|s| s.time_to_chosen_offer.as_ref()),
    ),
    figure(
        "working_first_offer",
        "figures-working-first-offer",
        [
            "Working time to a search's first offer",
            "Работно време до първата оферта по търсене",
        ],
        [
            "From the search's submission to its first offer, in working time.",
            "От изпращането на търсенето до първата оферта, в работно време.",
        ],
        Source::WorkingDuration(|s| s.working_time_to_first_offer.as_ref()),
    ),
    figure(
        "working_chosen_offer",
        "figures-working-chosen-offer",
        [
            "Working time to a search's chosen offer",
            "Работно време до избраната оферта по търсене",
        ],
        [
            "From the search's submission to the placement the sender confirmed, in working time.",
            "От изпращането на търсенето до потвърденото настаняване, в работно време.",
        ],
        Source::WorkingDuration(|s| s.working_time_to_chosen_offer.as_ref()),
    ),
];

/// The statuses a side's referrals are counted by now, in the order of a referral's life.
pub const STATUSES_NOW: [ReferralStatus; 6] = [
    ReferralStatus::Submitted,
    ReferralStatus::Acknowledged,
    ReferralStatus::Accepted,
    ReferralStatus::Declined,
    ReferralStatus::Withdrawn,
    ReferralStatus::Placed,
];

/// The side's referrals in `status` now (the report leaves statuses with none out).
pub fn count_now(side: &DistrictSide, status: ReferralStatus) -> u32 {
    (side.by_status_now.iter())
        .find(|c| c.status == status as i32)
        .map_or(0, |c| c.count)
}

const UNDER_A_MINUTE: Words = Words {
    en: "under a minute",
    bg: "под минута",
};
const DAYS: Words = Words { en: "d", bg: "д" };
const HOURS: Words = Words { en: "h", bg: "ч" };
const MINUTES: Words = Words {
    en: "min",
    bg: "мин",
};

/// A duration as a meeting reads it, in its two largest units: "under a minute", "12 min",
/// "3 h 5 min", "2 d 4 h". Referrals are answered in hours and days, so seconds would only be noise;
/// a negative duration (clocks apart) reads as none.
pub fn duration_text(seconds: i64, language: Language) -> String {
    let minutes = seconds.max(0) / 60;
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let (d, h, m) = (DAYS.of(language), HOURS.of(language), MINUTES.of(language));
    match (days, hours, mins) {
        (0, 0, 0) => UNDER_A_MINUTE.of(language).to_string(),
        (0, 0, _) => format!("{mins} {m}"),
        (0, _, _) => format!("{hours} {h} {mins} {m}"),
        _ => format!("{days} {d} {hours} {h}"),
    }
}

/// The median and the time nine in ten took no longer than, "1 h 30 min / 3 d 2 h"; none when the
/// figure happened to no referral.
pub fn median_and_p90(f: &DurationFigures, language: Language) -> Option<String> {
    let text = |d: Option<&placement_proto::prost_types::Duration>| {
        duration_text(d.map_or(0, |d| d.seconds), language)
    };
    (f.count > 0).then(|| format!("{} / {}", text(f.median.as_ref()), text(f.p90.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::prost_types::Duration;

    #[test]
    fn durations_read_in_their_two_largest_units() {
        let en = |s| duration_text(s, Language::En);
        assert_eq!(en(0), "under a minute");
        assert_eq!(en(59), "under a minute");
        assert_eq!(en(-3600), "under a minute");
        assert_eq!(en(60), "1 min");
        assert_eq!(en(720), "12 min");
        assert_eq!(en(3 * 3600 + 300 + 59), "3 h 5 min");
        assert_eq!(en(2 * 3600), "2 h 0 min");
        assert_eq!(en(2 * 86400 + 4 * 3600 + 1800), "2 d 4 h");
        assert_eq!(en(400 * 86400), "400 d 0 h");
    }

    #[test]
    fn durations_read_in_bulgarian_unless_english_is_asked_for() {
        assert_eq!(duration_text(30, Language::Bg), "под минута");
        assert_eq!(duration_text(5400, Language::Bg), "1 ч 30 мин");
        assert_eq!(
            duration_text(3 * 86400 + 7200, Language::Unspecified),
            "3 д 2 ч"
        );
    }

    #[test]
    fn keys_and_label_keys_are_each_a_figures_own() {
        for (i, f) in FIGURES.iter().enumerate() {
            for other in &FIGURES[i + 1..] {
                assert_ne!(f.key(), other.key());
                assert_ne!(f.label_key(), other.label_key());
                assert_ne!(f.label(Language::En), other.label(Language::En));
                assert_ne!(f.label(Language::Bg), other.label(Language::Bg));
            }
            assert!(f.key().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(f.label_key().starts_with("figures-"), "{}", f.label_key());
            assert!(!f.meaning(Language::En).is_empty() && !f.meaning(Language::Bg).is_empty());
        }
    }

    #[test]
    fn every_figure_of_a_side_is_in_the_catalogue_once() {
        // A side with every number of it different: each figure must read a value no other reads.
        let times = |n: u32| {
            Some(DurationFigures {
                count: n,
                ..Default::default()
            })
        };
        let side = DistrictSide {
            submitted: 1,
            acknowledged: 2,
            accepted: 3,
            declined: 4,
            withdrawn: 5,
            placed: 6,
            escalated: 7,
            unanswered: 8,
            time_to_first_response: times(9),
            time_to_all_acknowledgements: times(10),
            time_to_decision: times(11),
            time_to_placement: times(12),
            working_time_to_first_response: times(13),
            working_time_to_all_acknowledgements: times(14),
            working_time_to_decision: times(15),
            working_time_to_placement: times(16),
            placed_elsewhere: 17,
            searches: 18,
            search_services_asked: 19,
            search_offers: 20,
            searches_without_place: 21,
            time_to_first_offer: times(22),
            time_to_chosen_offer: times(23),
            working_time_to_first_offer: times(24),
            working_time_to_chosen_offer: times(25),
            ..Default::default()
        };
        let read: Vec<u32> = (FIGURES.iter())
            .map(|f| match f.value(&side) {
                FigureValue::Count(n) => n,
                FigureValue::Durations(d) => d.count,
            })
            .collect();
        assert_eq!(read, (1..=25).collect::<Vec<u32>>());
        let kinds = FIGURES.map(|f| f.kind());
        assert_eq!(kinds[..8], [FigureKind::Count; 8]);
        assert_eq!(kinds[8..12], [FigureKind::Duration; 4]);
        assert_eq!(kinds[12..16], [FigureKind::WorkingDuration; 4]);
        assert_eq!(kinds[16..21], [FigureKind::Count; 5]);
        assert_eq!(kinds[21..23], [FigureKind::Duration; 2]);
        assert_eq!(kinds[23..], [FigureKind::WorkingDuration; 2]);
    }

    #[test]
    fn times_of_no_referral_are_not_shown() {
        let seconds = |seconds| Some(Duration { seconds, nanos: 0 });
        let shown = DurationFigures {
            count: 3,
            median: seconds(5400),
            p90: seconds(3 * 86400 + 7200),
            slowest: seconds(4 * 86400),
        };
        assert_eq!(
            median_and_p90(&shown, Language::En).as_deref(),
            Some("1 h 30 min / 3 d 2 h")
        );
        assert_eq!(median_and_p90(&NO_DURATIONS, Language::En), None);
        let absent = DistrictSide::default();
        assert_eq!(
            FIGURES[8].value(&absent),
            FigureValue::Durations(&NO_DURATIONS)
        );
    }
}
