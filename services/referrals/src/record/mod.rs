//! A referral's record: its row, the agencies that must acknowledge it and its history, as stored, read
//! back together and turned into the wire and event forms. Every feature that reads or changes a referral
//! builds on it. (Not the model's `Record`, which is what one transition writes.)

pub mod model;
pub(crate) mod store;
