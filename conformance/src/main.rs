//! The pool conformance report: every scenario of [`scenarios::SCENARIOS`]
//! against every pool of [`pools`], written to CONFORMANCE.md at the
//! repository root.
//!
//! `cargo run --manifest-path conformance/Cargo.toml` writes it;
//! `-- --check` writes nothing, and exits non-zero printing the differing
//! lines when the file differs from what this run produces.

mod pools;
mod report;
mod scenarios;
mod subject;

use std::path::PathBuf;
use std::process::ExitCode;

use pools::dbfault_pools::{DbfaultAsyncPool, DbfaultPool};
use pools::pg::{Bb8Postgres, DeadpoolPostgres, PgEnv, R2d2Postgres, SqlxPostgres};
use pools::sqlite::{Bb8Sqlite, DeadpoolSqlite, R2d2Sqlite};
use report::Column;
use subject::Target;

fn column<T: Target>(target: &T) -> Column {
    let start = std::time::Instant::now();
    let cells = scenarios::column(target);
    eprintln!(
        "conformance: {} ({:.1} s)",
        target.name(),
        start.elapsed().as_secs_f64()
    );
    Column {
        name: target.name(),
        crates: target.crates(),
        cells,
    }
}

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("conformance: unknown argument {other:?}; the one argument is --check");
            return ExitCode::from(2);
        }
    };
    pools::quiet_holding_panics();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lock = root.join("Cargo.lock");
    let versions = match report::versions(&lock) {
        Ok(v) => v,
        Err(why) => {
            eprintln!("conformance: {why}");
            return ExitCode::FAILURE;
        }
    };
    let pg = match PgEnv::find() {
        Ok(env) => Some(env),
        Err(why) => {
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                eprintln!("conformance: CI=true and {why}");
                return ExitCode::FAILURE;
            }
            eprintln!("conformance: skipping the PostgreSQL pools: {why}");
            None
        }
    };
    let mut columns = vec![
        column(&DbfaultPool),
        column(&DbfaultAsyncPool),
        column(&R2d2Sqlite),
        column(&Bb8Sqlite),
        column(&DeadpoolSqlite),
    ];
    columns.push(column(&R2d2Postgres(pg.clone())));
    columns.push(column(&Bb8Postgres(pg.clone())));
    columns.push(column(&DeadpoolPostgres(pg.clone())));
    columns.push(column(&SqlxPostgres(pg.clone())));
    if let Some(env) = &pg {
        env.cleanup();
    }
    let text = match report::render(&versions, &columns) {
        Ok(text) => text,
        Err(why) => {
            eprintln!("conformance: {why}");
            return ExitCode::FAILURE;
        }
    };
    let out = root.join("..").join("CONFORMANCE.md");
    if check {
        let old = std::fs::read_to_string(&out).unwrap_or_default();
        if old == text {
            eprintln!("conformance: {} is up to date", out.display());
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "conformance: {} differs from what this run produces \
                 (regenerate it with `cargo run --manifest-path conformance/Cargo.toml`):",
                out.display()
            );
            for line in report::diff(&old, &text) {
                eprintln!("{line}");
            }
            ExitCode::FAILURE
        }
    } else {
        match std::fs::write(&out, text) {
            Ok(()) => {
                eprintln!("conformance: wrote {}", out.display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("conformance: cannot write {}: {err}", out.display());
                ExitCode::FAILURE
            }
        }
    }
}
