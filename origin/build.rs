//! Rebuilds the origin when a migration file is added or changed: they are embedded.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
