//! The message catalogues are compiled into the binary (fluent-templates' `static_loader!`), which does not
//! tell cargo about them: this does, so a changed catalogue rebuilds the app.

fn main() {
    println!("cargo:rerun-if-changed=locales");
}
