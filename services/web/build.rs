//! The message catalogues (fluent-templates' `static_loader!`) and the migrations (`sqlx::migrate!`) are
//! compiled into the binary without telling cargo about them: this does, so a change rebuilds the app.

fn main() {
    println!("cargo:rerun-if-changed=locales");
    println!("cargo:rerun-if-changed=migrations");
}
