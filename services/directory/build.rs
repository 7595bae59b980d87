//! `sqlx::migrate!` compiles the migrations into the binary without telling cargo about them: this does,
//! so a new migration rebuilds the service.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
