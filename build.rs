//! Tells the crate which rusqlite it is built with, where their APIs
//! differ: rusqlite 0.40 (libsqlite3-sys 0.38) takes a function pointer
//! for `Connection::wal_hook`, later ones a closure.
//!
//! Cargo hands a build script the metadata of the `links` crates it
//! depends on directly: libsqlite3-sys (`links = "sqlite3"`) reports the
//! directory of the SQLite it bundles, and that path names its version.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(dbfault_rusqlite_wal_fn)");
    println!("cargo::rerun-if-env-changed=DEP_SQLITE3_INCLUDE");
    println!("cargo::rerun-if-changed=build.rs");
    if let Ok(include) = std::env::var("DEP_SQLITE3_INCLUDE") {
        if include.contains("libsqlite3-sys-0.38.") {
            println!("cargo::rustc-cfg=dbfault_rusqlite_wal_fn");
        }
    }
}
