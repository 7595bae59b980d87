//! A search: one request for a case's children sent to several services at once, each as a referral of
//! its own. This module holds what the features share of it (its row and its SQL); submitting one is
//! `submission`'s, reading one `reading`'s, and the steps that touch several of its referrals `steps`'.

pub mod model;
pub mod store;
