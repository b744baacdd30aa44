//! r2d2_postgres, bb8-postgres and deadpool-postgres against the
//! machine's PostgreSQL, through dbfault's `FaultProxy`. Their managers
//! are wrapped in a `FaultyManager` whose own fault layer arms nothing:
//! it only journals each validation, so the pings are counted; every
//! fault is the proxy's, on the wire.

use super::{checkout_on_task, checkout_on_thread};
use std::sync::Arc;
use std::time::Duration;

use dbfault::{ConnId, EventKind, FaultProxy, Faults, FaultyManager, Journal};
use tokio::runtime::Runtime;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::{InRt, panic_while, until_async, until_blocking};
use crate::subject::{Fail, Joiner, Setup, Subject, Target};

/// The server, an admin client to it, and the runtime the proxies and
/// the async pools run on.
#[derive(Clone)]
pub struct PgEnv(Arc<Env>);

struct Env {
    admin: tokio_postgres::Client,
    config: tokio_postgres::Config,
    upstream: String,
    table: String,
    rt: Arc<Runtime>,
}

impl PgEnv {
    /// The server at `DATABASE_URL`, else at
    /// postgres://postgres@127.0.0.1:5432/test; `Err` says why there is
    /// none.
    pub fn find() -> Result<PgEnv, String> {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("DATABASE_URL {url:?} is not a PostgreSQL URL: {e}"))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("no tokio runtime: {e}"))?;
        let admin = rt
            .block_on(async {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(connection);
                Ok::<_, tokio_postgres::Error>(client)
            })
            .map_err(|e| format!("no PostgreSQL at {url} ({e}); set DATABASE_URL"))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let table = format!("dbfault_conformance_{}", std::process::id());
        rt.block_on(admin.batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x INTEGER)"
        )))
        .map_err(|e| format!("cannot create table {table}: {e}"))?;
        Ok(PgEnv(Arc::new(Env {
            admin,
            config,
            upstream: format!("{host}:{port}"),
            table,
            rt: Arc::new(rt),
        })))
    }

    /// Drops the scenarios' table.
    pub fn cleanup(&self) {
        let _ = self.0.rt.block_on(
            self.0
                .admin
                .batch_execute(&format!("DROP TABLE IF EXISTS {}", self.0.table)),
        );
    }
}

/// A fresh proxy (with its own fault layer and journal) and the
/// manager's inert fault layer on the same journal.
struct Wire {
    env: PgEnv,
    journal: Journal,
    faults: Faults,
    counting: Faults,
    proxy: FaultProxy,
}

impl Wire {
    fn new(env: &Option<PgEnv>) -> Result<Wire, String> {
        let env = env.clone().ok_or_else(|| "no PostgreSQL server".to_owned())?;
        let e = &env.0;
        e.rt.block_on(e.admin.batch_execute(&format!("TRUNCATE {}", e.table)))
            .map_err(|err| format!("cannot empty {}: {err}", e.table))?;
        let journal = Journal::new();
        let faults = Faults::new().with_journal(journal.clone());
        let counting = Faults::new().with_journal(journal.clone());
        let proxy =
            e.rt.block_on(FaultProxy::start(e.upstream.clone(), &faults))
                .map_err(|err| format!("cannot start the proxy: {err}"))?;
        Ok(Wire {
            env,
            journal,
            faults,
            counting,
            proxy,
        })
    }

    fn rt(&self) -> &Arc<Runtime> {
        &self.env.0.rt
    }

    /// The server's config with the proxy's address.
    fn config(&self) -> tokio_postgres::Config {
        let base = &self.env.0.config;
        let mut via = tokio_postgres::Config::new();
        via.host("127.0.0.1").port(self.proxy.addr().port());
        if let Some(user) = base.get_user() {
            via.user(user);
        }
        if let Some(dbname) = base.get_dbname() {
            via.dbname(dbname);
        }
        if let Some(password) = base.get_password() {
            via.password(password);
        }
        via.connect_timeout(Duration::from_secs(5));
        via
    }

    fn sync_config(&self) -> postgres::Config {
        let base = &self.env.0.config;
        let mut via = postgres::Config::new();
        via.host("127.0.0.1").port(self.proxy.addr().port());
        if let Some(user) = base.get_user() {
            via.user(user);
        }
        if let Some(dbname) = base.get_dbname() {
            via.dbname(dbname);
        }
        if let Some(password) = base.get_password() {
            via.password(password);
        }
        via.connect_timeout(Duration::from_secs(5));
        via
    }

    /// The proxy's id of the connection whose backend is `pid`.
    fn proxy_id(&self, pid: i32) -> Option<ConnId> {
        let detail = format!("backend pid {pid}");
        self.journal
            .events()
            .iter()
            .rev()
            .find(|e| e.kind == EventKind::Connect && e.detail == detail)
            .and_then(|e| e.conn)
    }

    /// Kills the proxy's connection to backend `pid` and waits until the
    /// proxy closed it, and a little more for the client to read it.
    fn kill(&self, pid: Option<i32>) {
        if let Some(id) = pid.and_then(|pid| self.proxy_id(pid)) {
            self.faults.kill(id);
            self.wait_closed(&[id]);
        }
    }

    fn restart(&self) {
        let live = self.faults.live_connections();
        self.faults.restart();
        self.wait_closed(&live);
    }

    fn wait_closed(&self, ids: &[ConnId]) {
        until_blocking(&|| {
            let events = self.journal.events();
            ids.iter().all(|id| {
                events
                    .iter()
                    .any(|e| e.kind == EventKind::Close && e.conn == Some(*id))
            })
        });
        // The async clients' connection tasks read the FATAL the proxy sent.
        std::thread::sleep(Duration::from_millis(50));
    }

    fn rows(&self) -> i64 {
        let e = &self.env.0;
        e.rt.block_on(
            e.admin
                .query_one(&format!("SELECT count(*) FROM {}", e.table), &[]),
        )
        .map(|row| row.get(0))
        .unwrap_or(-1)
    }

    /// What a client's connect through the proxy answers in an outage.
    fn cause(&self) -> String {
        let config = self.config();
        match self.rt().block_on(config.connect(NoTls)) {
            Ok(_) => "(the connect succeeded)".to_owned(),
            Err(err) => err.to_string(),
        }
    }
}

fn pg_fail(err: &tokio_postgres::Error) -> Fail {
    let code = match err.code() {
        Some(state) => state.code().to_owned(),
        None if err.is_closed() => "connection closed".to_owned(),
        None => "client error".to_owned(),
    };
    Fail::of(code, err)
}

fn in_tx_of(messages: Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>) -> Result<bool, Fail> {
    let messages = messages.map_err(|e| pg_fail(&e))?;
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            // now() is the transaction's start: it equals the statement's
            // start only when this statement began the transaction.
            return Ok(row.get(0) == Some("f"));
        }
    }
    Err(Fail::new(
        "no row",
        "SELECT now() = statement_timestamp() gave no row",
    ))
}

const IN_TX: &str = "SELECT now() = statement_timestamp()";

fn pid_of(messages: Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>) -> Option<i32> {
    messages.ok()?.into_iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).and_then(|pid| pid.parse().ok()),
        _ => None,
    })
}

// ---- r2d2_postgres ----

/// r2d2 0.8 with r2d2_postgres's manager.
pub struct R2d2Postgres(pub Option<PgEnv>);

type R2d2Manager = FaultyManager<r2d2_postgres::PostgresConnectionManager<postgres::NoTls>>;

pub struct R2d2PgSubject {
    pool: r2d2::Pool<R2d2Manager>,
    wire: Wire,
}

impl Target for R2d2Postgres {
    type S = R2d2PgSubject;

    fn name(&self) -> &'static str {
        "r2d2_postgres"
    }

    fn crates(&self) -> &'static [&'static str] {
        &["r2d2", "r2d2_postgres"]
    }

    fn build(&self, setup: Setup) -> Result<R2d2PgSubject, String> {
        let wire = Wire::new(&self.0)?;
        let manager = r2d2_postgres::PostgresConnectionManager::new(wire.sync_config(), postgres::NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(setup.size as u32)
            .min_idle(Some(0))
            .test_on_check_out(setup.validate)
            .connection_timeout(setup.timeout)
            .build(FaultyManager::new(manager, &wire.counting))
            .map_err(|e| format!("r2d2 pool: {e}"))?;
        Ok(R2d2PgSubject { pool, wire })
    }
}

fn r2d2_fail(err: &r2d2::Error) -> Fail {
    Fail::of("r2d2::Error (timeout)", err)
}

impl Subject for R2d2PgSubject {
    type Conn = r2d2::PooledConnection<R2d2Manager>;

    fn table(&self) -> &str {
        &self.wire.env.0.table
    }

    fn checkout(&self) -> Result<Self::Conn, Fail> {
        self.pool.get().map_err(|e| r2d2_fail(&e))
    }

    fn exec(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        conn.batch_execute(sql).map_err(|e| pg_fail(&e))
    }

    fn in_tx(&self, conn: &mut Self::Conn) -> Result<bool, Fail> {
        in_tx_of(conn.simple_query(IN_TX))
    }

    fn give_back(&self, conn: Self::Conn) {
        drop(conn);
    }

    fn panic_holding(&self, conn: Self::Conn) {
        panic_while(conn);
    }

    fn kill(&self, conn: &mut Self::Conn) {
        let pid = pid_of(conn.simple_query("SELECT pg_backend_pid()"));
        self.wire.kill(pid);
    }

    fn restart(&self) {
        self.wire.restart();
    }

    fn cancel(&self, _: &mut Self::Conn, _: &str) -> Option<()> {
        None
    }

    fn background_checkout(&self, marker: &'static str) -> Joiner {
        let pool = self.pool.clone();
        checkout_on_thread(self.wire.journal.clone(), marker, move || {
            pool.get().map_err(|e| r2d2_fail(&e))
        })
    }

    fn until(&self, done: &dyn Fn() -> bool) {
        until_blocking(done);
    }

    fn faults(&self) -> &Faults {
        &self.wire.faults
    }

    fn journal(&self) -> &Journal {
        &self.wire.journal
    }

    fn cause(&self) -> String {
        self.wire.cause()
    }

    fn rows(&self) -> i64 {
        self.wire.rows()
    }
}

// ---- bb8-postgres ----

/// bb8 0.9 with bb8-postgres's manager.
pub struct Bb8Postgres(pub Option<PgEnv>);

type Bb8Manager = FaultyManager<bb8_postgres::PostgresConnectionManager<NoTls>>;

pub struct Bb8PgSubject {
    pool: InRt<bb8::Pool<Bb8Manager>>,
    wire: Wire,
}

impl Target for Bb8Postgres {
    type S = Bb8PgSubject;

    fn name(&self) -> &'static str {
        "bb8-postgres"
    }

    fn crates(&self) -> &'static [&'static str] {
        &["bb8", "bb8-postgres"]
    }

    fn build(&self, setup: Setup) -> Result<Bb8PgSubject, String> {
        let wire = Wire::new(&self.0)?;
        let manager = bb8_postgres::PostgresConnectionManager::new(wire.config(), NoTls);
        let pool = wire
            .rt()
            .block_on(
                bb8::Pool::builder()
                    .max_size(setup.size as u32)
                    .test_on_check_out(setup.validate)
                    .connection_timeout(setup.timeout)
                    .build(FaultyManager::new(manager, &wire.counting)),
            )
            .map_err(|e| format!("bb8 pool: {e}"))?;
        Ok(Bb8PgSubject {
            pool: InRt::new(pool, wire.rt()),
            wire,
        })
    }
}

fn bb8_fail<E: std::error::Error + 'static>(err: &bb8::RunError<E>) -> Fail {
    let code = match err {
        bb8::RunError::User(_) => "RunError::User",
        bb8::RunError::TimedOut => "RunError::TimedOut",
    };
    Fail::of(code, err)
}

impl Subject for Bb8PgSubject {
    type Conn = bb8::PooledConnection<'static, Bb8Manager>;

    fn table(&self) -> &str {
        &self.wire.env.0.table
    }

    fn checkout(&self) -> Result<Self::Conn, Fail> {
        self.wire
            .rt()
            .block_on(self.pool.get_owned())
            .map_err(|e| bb8_fail(&e))
    }

    fn exec(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        self.wire
            .rt()
            .block_on(conn.batch_execute(sql))
            .map_err(|e| pg_fail(&e))
    }

    fn in_tx(&self, conn: &mut Self::Conn) -> Result<bool, Fail> {
        in_tx_of(self.wire.rt().block_on(conn.simple_query(IN_TX)))
    }

    fn give_back(&self, conn: Self::Conn) {
        let _in = self.wire.rt().enter();
        drop(conn);
    }

    fn panic_holding(&self, conn: Self::Conn) {
        let _in = self.wire.rt().enter();
        panic_while(conn);
    }

    fn kill(&self, conn: &mut Self::Conn) {
        let pid = pid_of(
            self.wire
                .rt()
                .block_on(conn.simple_query("SELECT pg_backend_pid()")),
        );
        self.wire.kill(pid);
    }

    fn restart(&self) {
        self.wire.restart();
    }

    fn cancel(&self, conn: &mut Self::Conn, sql: &str) -> Option<()> {
        self.wire.rt().block_on(async {
            let _ = tokio::time::timeout(Duration::from_millis(50), conn.batch_execute(sql)).await;
        });
        Some(())
    }

    fn background_checkout(&self, marker: &'static str) -> Joiner {
        let pool = self.pool.clone();
        checkout_on_task(self.wire.rt(), self.wire.journal.clone(), marker, async move {
            pool.get_owned().await.map_err(|e| bb8_fail(&e))
        })
    }

    fn until(&self, done: &dyn Fn() -> bool) {
        until_async(self.wire.rt(), done);
    }

    fn faults(&self) -> &Faults {
        &self.wire.faults
    }

    fn journal(&self) -> &Journal {
        &self.wire.journal
    }

    fn cause(&self) -> String {
        self.wire.cause()
    }

    fn rows(&self) -> i64 {
        self.wire.rows()
    }
}

// ---- deadpool-postgres ----

/// deadpool 0.13 with deadpool-postgres's manager: recycling `Fast`
/// (its default) with validation off, `Verified` with it on.
pub struct DeadpoolPostgres(pub Option<PgEnv>);

type DpManager = FaultyManager<deadpool_postgres::Manager>;

pub struct DeadpoolPgSubject {
    pool: InRt<deadpool::managed::Pool<DpManager>>,
    wire: Wire,
}

impl Target for DeadpoolPostgres {
    type S = DeadpoolPgSubject;

    fn name(&self) -> &'static str {
        "deadpool-postgres"
    }

    fn crates(&self) -> &'static [&'static str] {
        &["deadpool", "deadpool-postgres"]
    }

    fn build(&self, setup: Setup) -> Result<DeadpoolPgSubject, String> {
        let wire = Wire::new(&self.0)?;
        let recycling_method = if setup.validate {
            deadpool_postgres::RecyclingMethod::Verified
        } else {
            deadpool_postgres::RecyclingMethod::Fast
        };
        let manager = deadpool_postgres::Manager::from_config(
            wire.config(),
            NoTls,
            deadpool_postgres::ManagerConfig { recycling_method },
        );
        let pool = deadpool::managed::Pool::builder(FaultyManager::new(manager, &wire.counting))
            .max_size(setup.size)
            .wait_timeout(Some(setup.timeout))
            .create_timeout(Some(Duration::from_secs(5)))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| format!("deadpool pool: {e}"))?;
        Ok(DeadpoolPgSubject {
            pool: InRt::new(pool, wire.rt()),
            wire,
        })
    }
}

fn deadpool_fail<E: std::error::Error + 'static>(err: &deadpool::managed::PoolError<E>) -> Fail {
    use deadpool::managed::PoolError;
    let code = match err {
        PoolError::Timeout(_) => "PoolError::Timeout",
        PoolError::Backend(_) => "PoolError::Backend",
        PoolError::Closed => "PoolError::Closed",
        PoolError::NoRuntimeSpecified => "PoolError::NoRuntimeSpecified",
        PoolError::PostCreateHook(_) => "PoolError::PostCreateHook",
    };
    Fail::of(code, err)
}

impl Subject for DeadpoolPgSubject {
    type Conn = deadpool::managed::Object<DpManager>;

    fn table(&self) -> &str {
        &self.wire.env.0.table
    }

    fn checkout(&self) -> Result<Self::Conn, Fail> {
        self.wire
            .rt()
            .block_on(self.pool.get())
            .map_err(|e| deadpool_fail(&e))
    }

    fn exec(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        self.wire
            .rt()
            .block_on(conn.batch_execute(sql))
            .map_err(|e| pg_fail(&e))
    }

    fn in_tx(&self, conn: &mut Self::Conn) -> Result<bool, Fail> {
        in_tx_of(self.wire.rt().block_on(conn.simple_query(IN_TX)))
    }

    fn give_back(&self, conn: Self::Conn) {
        let _in = self.wire.rt().enter();
        drop(conn);
    }

    fn panic_holding(&self, conn: Self::Conn) {
        let _in = self.wire.rt().enter();
        panic_while(conn);
    }

    fn kill(&self, conn: &mut Self::Conn) {
        let pid = pid_of(
            self.wire
                .rt()
                .block_on(conn.simple_query("SELECT pg_backend_pid()")),
        );
        self.wire.kill(pid);
    }

    fn restart(&self) {
        self.wire.restart();
    }

    fn cancel(&self, conn: &mut Self::Conn, sql: &str) -> Option<()> {
        self.wire.rt().block_on(async {
            let _ = tokio::time::timeout(Duration::from_millis(50), conn.batch_execute(sql)).await;
        });
        Some(())
    }

    fn background_checkout(&self, marker: &'static str) -> Joiner {
        let pool = self.pool.clone();
        checkout_on_task(self.wire.rt(), self.wire.journal.clone(), marker, async move {
            pool.get().await.map_err(|e| deadpool_fail(&e))
        })
    }

    fn until(&self, done: &dyn Fn() -> bool) {
        until_async(self.wire.rt(), done);
    }

    fn faults(&self) -> &Faults {
        &self.wire.faults
    }

    fn journal(&self) -> &Journal {
        &self.wire.journal
    }

    fn cause(&self) -> String {
        self.wire.cause()
    }

    fn rows(&self) -> i64 {
        self.wire.rows()
    }
}

// ---- sqlx ----

/// sqlx 0.8's `PgPool`. Its validation (`test_before_acquire`) sends a
/// protocol `Sync` message, not a statement, and sqlx has no manager to
/// wrap: its pings are not counted.
pub struct SqlxPostgres(pub Option<PgEnv>);

pub struct SqlxSubject {
    pool: InRt<sqlx::PgPool>,
    options: sqlx::postgres::PgConnectOptions,
    wire: Wire,
}

impl Target for SqlxPostgres {
    type S = SqlxSubject;

    fn name(&self) -> &'static str {
        "sqlx"
    }

    fn crates(&self) -> &'static [&'static str] {
        &["sqlx"]
    }

    fn build(&self, setup: Setup) -> Result<SqlxSubject, String> {
        let wire = Wire::new(&self.0)?;
        let base = &wire.env.0.config;
        let mut options = sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(wire.proxy.addr().port());
        if let Some(user) = base.get_user() {
            options = options.username(user);
        }
        if let Some(dbname) = base.get_dbname() {
            options = options.database(dbname);
        }
        if let Some(password) = base.get_password() {
            options = options.password(&String::from_utf8_lossy(password));
        }
        let pool = {
            let _in = wire.rt().enter();
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(setup.size as u32)
                .min_connections(0)
                .test_before_acquire(setup.validate)
                .acquire_timeout(setup.timeout)
                .connect_lazy_with(options.clone())
        };
        Ok(SqlxSubject {
            pool: InRt::new(pool, wire.rt()),
            options,
            wire,
        })
    }
}

fn sqlx_fail(err: &sqlx::Error) -> Fail {
    let code = match err {
        sqlx::Error::Database(db) => db
            .code()
            .map_or_else(|| "Database".to_owned(), |c| c.into_owned()),
        sqlx::Error::PoolTimedOut => "PoolTimedOut".to_owned(),
        sqlx::Error::PoolClosed => "PoolClosed".to_owned(),
        sqlx::Error::Io(_) => "Io".to_owned(),
        sqlx::Error::Protocol(_) => "Protocol".to_owned(),
        _ => "sqlx::Error".to_owned(),
    };
    Fail::of(code, err)
}

type SqlxConn = sqlx::pool::PoolConnection<sqlx::Postgres>;

impl SqlxSubject {
    /// The one text column of `sql`'s first row.
    fn text(&self, conn: &mut SqlxConn, sql: &str) -> Result<String, Fail> {
        use sqlx::Row as _;
        let row = self
            .wire
            .rt()
            .block_on(sqlx::raw_sql(sql).fetch_one(&mut **conn))
            .map_err(|e| sqlx_fail(&e))?;
        row.try_get::<String, _>(0).map_err(|e| sqlx_fail(&e))
    }
}

impl Subject for SqlxSubject {
    type Conn = SqlxConn;

    fn table(&self) -> &str {
        &self.wire.env.0.table
    }

    fn checkout(&self) -> Result<Self::Conn, Fail> {
        self.wire
            .rt()
            .block_on(self.pool.acquire())
            .map_err(|e| sqlx_fail(&e))
    }

    fn exec(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        self.wire
            .rt()
            .block_on(sqlx::raw_sql(sql).execute(&mut **conn))
            .map(drop)
            .map_err(|e| sqlx_fail(&e))
    }

    fn in_tx(&self, conn: &mut Self::Conn) -> Result<bool, Fail> {
        let same = self.text(conn, "SELECT (now() = statement_timestamp())::text")?;
        Ok(same == "false")
    }

    fn give_back(&self, conn: Self::Conn) {
        let _in = self.wire.rt().enter();
        drop(conn);
    }

    fn panic_holding(&self, conn: Self::Conn) {
        let _in = self.wire.rt().enter();
        panic_while(conn);
    }

    fn kill(&self, conn: &mut Self::Conn) {
        let pid = self
            .text(conn, "SELECT pg_backend_pid()::text")
            .ok()
            .and_then(|pid| pid.parse().ok());
        self.wire.kill(pid);
    }

    fn restart(&self) {
        self.wire.restart();
    }

    fn cancel(&self, conn: &mut Self::Conn, sql: &str) -> Option<()> {
        self.wire.rt().block_on(async {
            let _ = tokio::time::timeout(Duration::from_millis(50), sqlx::raw_sql(sql).execute(&mut **conn))
                .await;
        });
        Some(())
    }

    fn background_checkout(&self, marker: &'static str) -> Joiner {
        let pool = (*self.pool).clone();
        checkout_on_task(self.wire.rt(), self.wire.journal.clone(), marker, async move {
            pool.acquire().await.map_err(|e| sqlx_fail(&e))
        })
    }

    fn until(&self, done: &dyn Fn() -> bool) {
        until_async(self.wire.rt(), done);
    }

    fn faults(&self) -> &Faults {
        &self.wire.faults
    }

    fn journal(&self) -> &Journal {
        &self.wire.journal
    }

    fn settle(&self) {
        // sqlx pings each connection given back, on a task of its own,
        // before it is idle again.
        until_async(self.wire.rt(), &|| {
            self.pool.num_idle() == self.pool.size() as usize
        });
    }

    fn pings_counted(&self) -> bool {
        false
    }

    fn cause(&self) -> String {
        use sqlx::Connection as _;
        match self
            .wire
            .rt()
            .block_on(sqlx::PgConnection::connect_with(&self.options))
        {
            Ok(_) => "(the connect succeeded)".to_owned(),
            Err(err) => err.to_string(),
        }
    }

    fn rows(&self) -> i64 {
        self.wire.rows()
    }
}
