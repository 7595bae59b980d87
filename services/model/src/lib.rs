//! The exchange's rules, pure: no database, broker or server. The services apply them; the web app and the
//! CLI read them to show what a person may do and what a figure means.

pub mod districts;
pub mod figures;
pub mod reference;
pub mod referral;
pub mod working;
