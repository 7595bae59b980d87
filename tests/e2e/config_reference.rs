//! Each process's settings as serde reads them (its `Config`'s fields, renames and all) are the ones the
//! configuration reference (`placement_platform::config_reference::OWN`) lists for it, so that no process
//! warns of another's setting. Files only, no stack. The reference against the code, the scripts and
//! `docs/configuration.md` is checked by the platform's unit tests (`config_reference/check.rs`), which read
//! the `Config`s from the source; this reads them from the structs themselves.

use std::collections::BTreeSet;

use placement_platform::config_reference::{fields_of, own};

#[test]
fn each_process_config_is_its_entry_in_the_reference() {
    let configs = [
        ("directory", fields_of::<placement_directory::Config>()),
        ("cases", fields_of::<placement_cases::Config>()),
        ("referrals", fields_of::<placement_referrals::Config>()),
        (
            "notifications",
            fields_of::<placement_notifications::Config>(),
        ),
        ("reports", fields_of::<placement_reports::Config>()),
        ("web", fields_of::<placement_web::Config>()),
    ];
    for (process, fields) in configs {
        assert!(!fields.is_empty(), "{process}'s Config has named fields");
        let fields: BTreeSet<&str> = fields.iter().map(String::as_str).collect();
        let listed: BTreeSet<&str> = own(process).iter().copied().collect();
        assert_eq!(
            fields, listed,
            "{process}: its Config's settings (left) and config_reference::OWN's entry (right)"
        );
    }
}
