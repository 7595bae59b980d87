//! The catalogues are compiled into the crate by `static_loader!`: this tells cargo, so an edited
//! message rebuilds it.

fn main() {
    println!("cargo:rerun-if-changed=locales");
    println!("cargo:rerun-if-changed=../directory/municipalities.csv");
}
