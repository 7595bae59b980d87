//! `sqlx::migrate!` compiles the audit trail's migrations into the binary without telling cargo about them:
//! this does, so a new migration rebuilds what uses it.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
