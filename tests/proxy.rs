//! The fault proxy in front of the machine's real PostgreSQL, with
//! unchanged clients pointed at it.
//!
//! The server is found at `DATABASE_URL`, else at
//! `postgres://postgres@127.0.0.1:5432/test`. Without one these tests say
//! why and skip; with `CI=true` they fail instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dbfault::{ErrorClass, EventKind, FaultProxy, Faults, Journal, Op, Rule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// The server's address and a URL to reach it directly, if there is one.
async fn server() -> Option<(String, tokio_postgres::Config)> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let config: tokio_postgres::Config = url.parse().expect("DATABASE_URL is not a PostgreSQL URL");
    if let Err(err) = config.connect(NoTls).await {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("CI=true and no PostgreSQL at {url}: {err}");
        }
        eprintln!("skipping: no PostgreSQL at {url} ({err}); set DATABASE_URL to run this test");
        return None;
    }
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Some((format!("{host}:{port}"), config))
}

/// Connects `config` through `proxy` (only the address changes).
async fn through(
    proxy: &FaultProxy,
    config: &tokio_postgres::Config,
) -> Result<Client, tokio_postgres::Error> {
    let mut via = tokio_postgres::Config::new();
    via.host("127.0.0.1").port(proxy.addr().port());
    if let Some(user) = config.get_user() {
        via.user(user);
    }
    if let Some(dbname) = config.get_dbname() {
        via.dbname(dbname);
    }
    if let Some(password) = config.get_password() {
        via.password(password);
    }
    connect(&via).await
}

async fn connect(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A table of its own for each test, dropped by the test's end.
async fn table(direct: &Client) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "dbfault_proxy_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    direct
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (x INTEGER)"
        ))
        .await
        .unwrap();
    name
}

async fn count(direct: &Client, table: &str) -> i64 {
    direct
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

fn code(err: &tokio_postgres::Error) -> Option<&SqlState> {
    err.as_db_error().map(|db| db.code())
}

/// Drops a test's table, on the direct connection.
async fn drop_table(direct: &Client, table: &str) {
    direct
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// Sets up the proxy, a direct client, a client through the proxy and a
/// table; `None` when there is no server.
async fn setup(faults: &Faults) -> Option<(FaultProxy, Client, Client, String)> {
    let (upstream, config) = server().await?;
    let proxy = FaultProxy::start(upstream, faults).await.unwrap();
    let direct = connect(&config).await.unwrap();
    let client = through(&proxy, &config).await.unwrap();
    let table = table(&direct).await;
    Some((proxy, direct, client, table))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_clients_work_through_the_proxy() {
    let faults = Faults::new();
    let Some((_proxy, direct, mut client, table)) = setup(&faults).await else {
        return;
    };
    client
        .batch_execute(&format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {table} VALUES ($1)"), &[&2i32])
        .await
        .unwrap();
    let rows = tx
        .query(&format!("SELECT x FROM {table} ORDER BY x"), &[])
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
        [1, 2]
    );
    tx.commit().await.unwrap();
    assert_eq!(count(&direct, &table).await, 2);
    drop_table(&direct, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_error_fails_the_servers_transaction_too() {
    let faults = Faults::new();
    let Some((_proxy, direct, mut client, table)) = setup(&faults).await else {
        return;
    };
    let rule = faults
        .arm(Rule::on(Op::Execute).matching("INSERT").nth(2).error_with(
            ErrorClass::Transient,
            "40001",
            "could not serialize access",
        ))
        .unwrap();
    let tx = client.transaction().await.unwrap();
    // Extended protocol (a prepared statement with a parameter).
    tx.execute(&format!("INSERT INTO {table} VALUES ($1)"), &[&1i32])
        .await
        .unwrap();
    let err = tx
        .execute(&format!("INSERT INTO {table} VALUES ($1)"), &[&2i32])
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::T_R_SERIALIZATION_FAILURE), "{err}");
    assert_eq!(rule.hits(), 1);
    // The server's transaction failed as the client was told: the next
    // statement is refused, and the COMMIT answers ROLLBACK.
    let err = tx
        .query(&format!("SELECT x FROM {table}"), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::IN_FAILED_SQL_TRANSACTION), "{err}");
    tx.commit().await.unwrap();
    assert_eq!(count(&direct, &table).await, 0, "nothing applied");
    drop_table(&direct, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_error_on_a_simple_query_names_the_rules_sqlstate() {
    let faults = Faults::new();
    let Some((_proxy, direct, client, table)) = setup(&faults).await else {
        return;
    };
    let _rule = faults
        .arm(Rule::on(Op::Execute).error_with(ErrorClass::Constraint, "23505", "duplicate key"))
        .unwrap();
    let err = client
        .batch_execute(&format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::UNIQUE_VIOLATION), "{err}");
    assert_eq!(err.as_db_error().unwrap().message(), "duplicate key");
    assert_eq!(count(&direct, &table).await, 0);
    drop_table(&direct, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_after_the_server_applied_it_is_in_the_database() {
    let faults = Faults::new();
    let Some((_proxy, direct, mut client, table)) = setup(&faults).await else {
        return;
    };
    let _cut = faults.arm(Rule::on(Op::Commit).disconnect_after_apply()).unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {table} VALUES ($1)"), &[&7i32])
        .await
        .unwrap();
    let err = tx.commit().await.unwrap_err();
    assert!(err.is_closed() || err.as_db_error().is_none(), "{err}");
    assert!(client.is_closed());
    assert_eq!(count(&direct, &table).await, 1, "applied");
    drop_table(&direct, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_is_a_terminated_backend_and_rolls_back() {
    let faults = Faults::new();
    let Some((_proxy, direct, mut client, table)) = setup(&faults).await else {
        return;
    };
    let _rule = faults.arm(Rule::on(Op::Query).disconnect()).unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .await
        .unwrap();
    let err = tx
        .query(&format!("SELECT x FROM {table}"), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::ADMIN_SHUTDOWN), "{err}");
    drop(tx);
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "the connection is gone"
    );
    // The server saw the socket close and rolled back.
    assert_eq!(count(&direct, &table).await, 0);
    drop_table(&direct, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_outage_and_restore_reach_proxied_connections() {
    let journal = Journal::new();
    let faults = Faults::new().with_journal(journal.clone());
    let Some((proxy, direct, client, table)) = setup(&faults).await else {
        return;
    };
    let (_, config) = server().await.unwrap();
    let live = faults.live_connections();
    assert_eq!(live.len(), 1);
    assert!(faults.kill(live[0]));
    let err = client.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        code(&err) == Some(&SqlState::ADMIN_SHUTDOWN) || err.is_closed(),
        "{err}"
    );

    faults.outage();
    assert!(through(&proxy, &config).await.is_err(), "refused in an outage");
    faults.restore();
    let again = through(&proxy, &config).await.unwrap();
    again.simple_query("SELECT 1").await.unwrap();
    let text = journal.to_text();
    assert!(text.contains("backend pid"), "{text}");
    assert!(text.contains("refused: outage"), "{text}");
    drop_table(&direct, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_refused_with_a_fatal_sqlstate() {
    let faults = Faults::new();
    let Some((upstream, config)) = server().await else {
        return;
    };
    let proxy = FaultProxy::start(upstream, &faults).await.unwrap();
    let _full = faults
        .arm(Rule::on(Op::Connect).times(1).error_with(
            ErrorClass::Transient,
            "53300",
            "sorry, too many clients already",
        ))
        .unwrap();
    let err = through(&proxy, &config).await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err}");
    assert!(through(&proxy, &config).await.is_ok(), "only once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_holds_the_statement_on_the_fault_clock() {
    let clock = dbfault::Clock::manual();
    let faults = Faults::new().with_clock(clock.clone());
    let Some((_proxy, direct, client, table)) = setup(&faults).await else {
        return;
    };
    let before = clock.now();
    let _slow = faults
        .arm(Rule::on(Op::Execute).delay(Duration::from_secs(30)))
        .unwrap();
    client
        .batch_execute(&format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    assert_eq!(clock.now() - before, Duration::from_secs(30));
    drop_table(&direct, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_client_closes_that_connection_alone() {
    let journal = Journal::new();
    let faults = Faults::new().with_journal(journal.clone());
    let Some((proxy, direct, client, table)) = setup(&faults).await else {
        return;
    };
    let mut raw = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    // An SSLRequest is answered N.
    raw.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).await.unwrap();
    let mut answer = [0u8; 1];
    raw.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"N");
    // A startup packet that declares an absurd length.
    raw.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0])
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "closed: {read:?}");
    // The other connection goes on.
    client
        .batch_execute(&format!("INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    assert_eq!(count(&direct, &table).await, 1);
    let closes: Vec<_> = journal
        .events()
        .into_iter()
        .filter(|e| e.kind == EventKind::Close)
        .collect();
    assert!(
        closes.iter().any(|e| e
            .detail
            .contains("malformed message from the client: startup packet length")),
        "{closes:?}"
    );
    drop_table(&direct, &table).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_fatal_error_that_names_it() {
    let faults = Faults::new();
    let Some((_, config)) = server().await else {
        return;
    };
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = closed.local_addr().unwrap().to_string();
    drop(closed);
    let proxy = FaultProxy::start(upstream.clone(), &faults).await.unwrap();
    let err = through(&proxy, &config).await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::CONNECTION_FAILURE), "{err}");
    let message = err.as_db_error().unwrap().message();
    assert!(message.contains(&upstream), "{message}");
}

/// The proxy's URL for `config`'s user and database.
fn proxy_url(proxy: &FaultProxy, config: &tokio_postgres::Config) -> String {
    proxy.url(
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or("test"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_postgres_client_and_r2d2_postgres_work_and_recover_from_a_restart() {
    let faults = Faults::new();
    let Some((upstream, config)) = server().await else {
        return;
    };
    let proxy = FaultProxy::start(upstream, &faults).await.unwrap();
    let url = proxy_url(&proxy, &config);
    let restarts = faults.clone();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let one: i32 = client.query_one("SELECT $1::INT4", &[&1i32]).unwrap().get(0);
        assert_eq!(one, 1);

        let manager = r2d2_postgres::PostgresConnectionManager::new(url.parse().unwrap(), postgres::NoTls);
        let pool = r2d2::Pool::builder().max_size(2).build(manager).unwrap();
        pool.get().unwrap().simple_query("SELECT 1").unwrap();
        restarts.restart();
        assert!(client.simple_query("SELECT 1").is_err(), "killed by the restart");
        // r2d2_postgres validates at checkout and replaces the dead ones.
        pool.get().unwrap().simple_query("SELECT 1").unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bb8_postgres_and_deadpool_postgres_work_and_recover_from_a_restart() {
    let faults = Faults::new();
    let Some((upstream, config)) = server().await else {
        return;
    };
    let proxy = FaultProxy::start(upstream, &faults).await.unwrap();
    let url = proxy_url(&proxy, &config);

    let manager = bb8_postgres::PostgresConnectionManager::new_from_stringlike(&url, NoTls).unwrap();
    let bb8 = bb8::Pool::builder().max_size(2).build(manager).await.unwrap();
    bb8.get().await.unwrap().simple_query("SELECT 1").await.unwrap();

    let mut cfg = deadpool_postgres::Config::new();
    cfg.url = Some(url.clone());
    let deadpool = cfg
        .create_pool(Some(deadpool_postgres::Runtime::Tokio1), NoTls)
        .unwrap();
    deadpool
        .get()
        .await
        .unwrap()
        .simple_query("SELECT 1")
        .await
        .unwrap();

    faults.restart();
    // Both validate (or recycle) at checkout: the dead connections go.
    bb8.get().await.unwrap().simple_query("SELECT 1").await.unwrap();
    deadpool
        .get()
        .await
        .unwrap()
        .simple_query("SELECT 1")
        .await
        .unwrap();
}
