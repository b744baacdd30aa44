//! A deadpool-postgres application under faults, through the fault proxy.
//!
//! The application is written the common way: a `deadpool_postgres::Pool`,
//! tokio-postgres's own API, a transfer in a transaction. Only its URL
//! changes: it points at a [`FaultProxy`] in front of the real server, and
//! the proxy's fault layer restarts the server, cuts a commit after the
//! server applied it, and refuses connects during an outage.
//!
//! Run with `cargo run --features proxy --example deadpool_postgres`. It
//! needs a PostgreSQL server: `DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`. Without one it says why and
//! exits (with `CI=true`, it fails instead). It works in a schema of its
//! own, dropped at the end.
//!
//! The pool recycles with `RecyclingMethod::Verified`: a query at each
//! checkout. With `-- --fast` it uses deadpool's default,
//! `RecyclingMethod::Fast`, which only asks whether the client has already
//! seen its connection close; right after the restart it usually has not,
//! so the dead connection is handed out and the transfer after the restart
//! fails.

use std::process::ExitCode;

use dbfault::{FaultProxy, Faults, Journal, Op, Rule};
use deadpool_postgres::{Config, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

type AppResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The application's transfer: one transaction, two updates.
async fn transfer(pool: &Pool, from: i32, to: i32, amount: i64) -> AppResult<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
        &[&amount, &from],
    )
    .await?;
    tx.execute(
        "UPDATE accounts SET balance = balance + $1 WHERE id = $2",
        &[&amount, &to],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The balances of accounts 1 and 2.
async fn balances(pool: &Pool) -> AppResult<(i64, i64)> {
    let client = pool.get().await?;
    let rows = client
        .query("SELECT balance FROM accounts WHERE id IN (1, 2) ORDER BY id", &[])
        .await?;
    Ok((rows[0].get(0), rows[1].get(0)))
}

/// The server's `host:port` and its configuration, or why there is none.
async fn server() -> Result<(String, tokio_postgres::Config), String> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL: {e}"))?;
    let (probe, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("no PostgreSQL at {url}: {e}"))?;
    drop((probe, connection));
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Ok((format!("{host}:{port}"), config))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (upstream, config) = match server().await {
        Ok(found) => found,
        Err(why) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            eprintln!("CI=true, so this example may not skip: {why}");
            return ExitCode::FAILURE;
        }
        Err(why) => {
            eprintln!("skipping the example: {why}; set DATABASE_URL to run it");
            return ExitCode::SUCCESS;
        }
    };
    match run(upstream, &config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("the example failed: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(upstream: String, config: &tokio_postgres::Config) -> AppResult<()> {
    // The proxy journals every fault it applies and every connection it cuts.
    let journal = Journal::new();
    let faults = Faults::new().with_journal(journal.clone());
    let proxy = FaultProxy::start(upstream, &faults).await?;
    let schema = format!("dbfault_example_{}", std::process::id());

    // The application's pool, pointed at the proxy; each connection works
    // in the example's schema.
    let mut cfg = Config::new();
    cfg.url = Some(proxy.url(
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or("test"),
    ));
    cfg.options = Some(format!("-c search_path={schema}"));
    let fast = std::env::args().any(|a| a == "--fast");
    cfg.manager = Some(ManagerConfig {
        recycling_method: if fast {
            RecyclingMethod::Fast
        } else {
            RecyclingMethod::Verified
        },
    });
    let pool = cfg.create_pool(Some(Runtime::Tokio1), NoTls)?;
    pool.get()
        .await?
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL);
             INSERT INTO {schema}.accounts VALUES (1, 100), (2, 0);"
        ))
        .await?;
    let outcome = scenarios(&pool, &faults).await;
    // Whatever happened, the schema goes.
    faults.restore();
    let dropped = pool
        .get()
        .await?
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await;
    outcome?;
    dropped?;
    println!("\n{}", journal.timeline());
    Ok(())
}

async fn scenarios(pool: &Pool, faults: &Faults) -> AppResult<()> {
    transfer(pool, 1, 2, 10).await?;
    println!(
        "a transfer:                   balances {:?}",
        balances(pool).await?
    );

    // 1. The server restarts: the idle connection dies. deadpool's
    // verified recycle finds it dead at the next checkout and opens another.
    faults.restart();
    transfer(pool, 1, 2, 10).await?;
    println!(
        "after a restart:              balances {:?} (the dead connection was replaced)",
        balances(pool).await?
    );

    // 2. The server applies the COMMIT, then the connection drops before
    // the reply: the application sees an error for a transfer that
    // happened. A blind retry would pay twice.
    let cut = faults.arm(Rule::on(Op::Commit).times(1).disconnect_after_apply())?;
    let err = transfer(pool, 1, 2, 10)
        .await
        .expect_err("the commit's reply never arrives");
    drop(cut);
    let after = balances(pool).await?;
    println!("a commit cut after it applied: the application got \"{err}\"");
    println!("                              balances {after:?}: the transfer was applied");
    if after != (70, 30) {
        return Err(format!("expected (70, 30) after three transfers, found {after:?}").into());
    }

    // 3. An outage: every connection dies and connects are refused. The
    // application sees why, and recovers by itself once the server is back.
    faults.outage();
    let err = transfer(pool, 1, 2, 10).await.expect_err("the server is down");
    println!("during an outage:             the application got \"{err}\"");
    faults.restore();
    transfer(pool, 1, 2, 10).await?;
    println!(
        "after the outage:             balances {:?}",
        balances(pool).await?
    );
    Ok(())
}
