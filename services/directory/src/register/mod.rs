//! The national register of social services, in and out: its files read ([`file`](mod@file)), imported
//! into the directory ([`import`]), and the directory exported in Open Referral's HSDS ([`export`]).

pub mod export;
pub mod file;
pub mod import;
