//! Per-binary link arguments: `noop-nolibc` supplies its own `_start` and is
//! linked without the C runtime's start files (see its module comment).

fn main() {
    println!("cargo:rustc-link-arg-bin=noop-nolibc=-nostartfiles");
    println!("cargo:rerun-if-changed=build.rs");
}
