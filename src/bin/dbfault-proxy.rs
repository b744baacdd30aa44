//! `dbfault-proxy`: the fault proxy on its own, for psql, pgbench and
//! clients in any language.
//!
//! ```text
//! dbfault-proxy --upstream 127.0.0.1:5432 [--listen 127.0.0.1:6432] [--plan faults.toml]
//! ```
//!
//! Clients connect to the listening address instead of the server. The
//! fault plan (TOML, as `FaultPlan::from_toml` reads it) is armed at start
//! and again whenever the file changes, so faults can be changed while the
//! proxy runs; a plan that does not read is reported, and the rules armed
//! before it stay. On Ctrl-C (or SIGTERM) the proxy prints the journal's
//! timeline and stops.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use dbfault::{FaultPlan, FaultProxy, Faults, Journal, PlanGuard};

const USAGE: &str = "usage: dbfault-proxy --upstream HOST:PORT [--listen HOST:PORT] [--plan FILE]";

/// What the command line asked for.
#[derive(Debug)]
struct Args {
    upstream: String,
    listen: String,
    plan: Option<PathBuf>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut upstream = None;
    let mut listen = "127.0.0.1:6432".to_owned();
    let mut plan = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--upstream" => upstream = Some(value("--upstream")?),
            "--listen" => listen = value("--listen")?,
            "--plan" => plan = Some(PathBuf::from(value("--plan")?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let upstream = upstream.ok_or_else(|| format!("--upstream is required\n{USAGE}"))?;
    Ok(Args {
        upstream,
        listen,
        plan,
    })
}

/// The plan file, armed whenever it changes.
struct Watched {
    path: PathBuf,
    modified: Option<SystemTime>,
    armed: Option<PlanGuard>,
}

impl Watched {
    /// Re-arms the plan if the file changed since the last look.
    fn refresh(&mut self, faults: &Faults) {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if modified == self.modified {
            return;
        }
        self.modified = modified;
        match FaultPlan::from_file(&self.path).and_then(|plan| faults.load(&plan)) {
            Ok(guard) => {
                // The old rules go as the new ones are armed.
                self.armed = Some(guard);
                eprintln!("dbfault-proxy: armed {}", self.path.display());
            }
            Err(err) => eprintln!(
                "dbfault-proxy: {}: {err}; the rules armed before stay",
                self.path.display()
            ),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let journal = Journal::new();
    let faults = Faults::new().with_journal(journal.clone());
    let proxy = match FaultProxy::start_on(&args.listen, args.upstream.clone(), &faults).await {
        Ok(proxy) => proxy,
        Err(err) => {
            eprintln!("dbfault-proxy: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    eprintln!("dbfault-proxy: {} -> {}", proxy.addr(), proxy.upstream());
    let mut plan = args.plan.map(|path| Watched {
        path,
        modified: None,
        armed: None,
    });
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                if let Some(plan) = &mut plan {
                    plan.refresh(&faults);
                }
            }
        }
    }
    drop(proxy);
    println!("{}", journal.timeline());
    ExitCode::SUCCESS
}

/// Ctrl-C, or SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn the_command_line_reads_and_says_what_is_wrong() {
        let parsed = args("--upstream 10.0.0.1:5432 --plan p.toml").unwrap();
        assert_eq!(parsed.upstream, "10.0.0.1:5432");
        assert_eq!(parsed.listen, "127.0.0.1:6432");
        assert_eq!(parsed.plan, Some(PathBuf::from("p.toml")));
        assert!(
            args("--listen 0.0.0.0:1")
                .unwrap_err()
                .contains("--upstream is required")
        );
        assert!(
            args("--upstream")
                .unwrap_err()
                .contains("--upstream needs a value")
        );
        assert!(
            args("--upstream a:1 --bogus")
                .unwrap_err()
                .contains("unknown argument \"--bogus\"")
        );
    }
}
