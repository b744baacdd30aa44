//! The pool's numbered behaviours 1-18 (docs/pool-behaviours.md) and the event orders
//! of its table. Each test body runs through both shells (threads, tokio)
//! and both drivers (mock, real SQLite), all under the fault layer: one
//! body, four runs.

mod common;

use std::time::Duration;

use common::{H, Joiner, Kind, Shell, TestConn, TestEngine, TestEngineConn, TestPool, counts, write_sql};
use dbfault::{ErrorClass, ErrorKind, EventKind as E, Op, PoolConfig, ResetOnReturn, Rule};
use rstest::rstest;

// ----- capacity and checkout -----

/// Joins a checkout that what the body just gave back must have served:
/// a return, an invalidation or a detach grants the first waiter under
/// the pool's lock before it returns, so no checkout may still wait. With
/// a broken capacity rule the test fails here instead of hanging.
async fn served<P: TestPool, T>(h: &H<P>, waiter: Joiner<T>) -> T {
    let s = h.pool.status();
    assert_eq!(
        s.waiting,
        0,
        "a checkout still waits for what was given back: {s:?}\n{}",
        h.journal.timeline()
    );
    waiter.join().await
}

/// Joins a thread or task that needs nothing more from the body (its
/// deadline has passed, or others hand it what it waits for), bounded by
/// the harness's spin limit instead of hanging when it never ends.
async fn finished<P: TestPool, T>(h: &H<P>, waiter: Joiner<T>) -> T {
    h.until(|| waiter.is_finished()).await;
    waiter.join().await
}

/// Checks out on the body's own thread or task. There a wait could end
/// only by the clock moving, which the body itself does, so the pool must
/// have room now: with a broken capacity rule the test fails here instead
/// of hanging.
async fn get<P: TestPool>(h: &H<P>) -> dbfault::Result<P::Conn> {
    let s = h.pool.status();
    let room = s.checked_in > 0 || s.limit().is_none_or(|limit| s.total() < limit);
    assert!(
        s.waiting == 0 && room,
        "a checkout on the test's own thread would wait: {s:?}\n{}",
        h.journal.timeline()
    );
    h.pool.get().await
}

#[rstest]
fn b01_status_counts_size_and_overflow(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        assert_eq!(counts(h.pool.status()), (2, 0, 0, 0));
        let a = get(&h).await.unwrap();
        let b = get(&h).await.unwrap();
        let c = get(&h).await.unwrap();
        assert_eq!(counts(h.pool.status()), (2, 0, 3, 1));
        drop(a);
        assert_eq!(counts(h.pool.status()), (2, 1, 2, 1));
        drop(b);
        drop(c); // idle queue full: closed
        assert_eq!(counts(h.pool.status()), (2, 2, 0, 0));
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(2).max_overflow(1), body)
}

#[rstest]
fn b01_status_stays_consistent_across_dispose_with_connections_out(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let a = get(&h).await.unwrap();
        let b = get(&h).await.unwrap();
        let a_id = a.id();
        drop(a);
        h.pool.dispose().await;
        assert_eq!(counts(h.pool.status()), (2, 0, 1, 0));
        h.assert_consistent();
        drop(b); // belongs to the disposed generation: closed on return
        assert_eq!(counts(h.pool.status()), (2, 0, 0, 0));
        assert_eq!(h.open_connections(), 0);
        let c = get(&h).await.unwrap();
        assert_ne!(c.id(), a_id, "the pool reconnects after dispose");
        assert_eq!(h.journal.count(E::Dispose), 1);
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(2).max_overflow(0), body)
}

#[rstest]
fn b02_exhausted_pool_times_out_with_the_last_connect_error(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        // A refused connect, then a connect that hangs and holds the only slot.
        let refused = h
            .faults
            .arm(
                Rule::on(Op::Connect)
                    .times(1)
                    .error_with(ErrorClass::Disconnect, "57P03", "starting up"),
            )
            .unwrap();
        let first = get(&h).await.unwrap_err();
        assert_eq!(first.code(), Some("57P03"));
        drop(refused);
        let hang = h.faults.arm(Rule::on(Op::Connect).hang()).unwrap();
        let pool = h.pool.clone();
        let slow = h.spawn(async move { pool.get().await.map(|c| c.id()) });
        h.wait_hits(&hang, 1).await;
        let pool = h.pool.clone();
        let waiter = h.spawn(async move { pool.get().await.map(|c| c.id()) });
        h.until(|| h.pool.status().waiting == 1).await;
        h.advance(Duration::from_millis(1500)).await;
        let err = finished(&h, waiter).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        let cause = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<dbfault::Error>())
            .expect("the timeout carries the last connect error");
        assert_eq!(cause.code(), Some("57P03"));
        drop(hang);
        assert!(slow.join().await.is_ok());
        assert_eq!(h.journal.count(E::Timeout), 1);
        h.assert_consistent();
    }
    on!(
        shell,
        kind,
        PoolConfig::new()
            .size(1)
            .max_overflow(0)
            .timeout(Duration::from_millis(1500)),
        body
    )
}

/// Checkouts that time out one after another leave no waiter behind, and
/// the next checkout that waits is served by the next return.
#[rstest]
fn b02_a_timed_out_wait_leaves_nothing_behind_and_the_next_wait_is_served(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let held = get(&h).await.unwrap();
        for n in 1..=3 {
            let pool = h.pool.clone();
            let waiter = h.spawn(async move { pool.get().await.map(|c| c.id()) });
            h.until(|| h.pool.status().waiting == 1).await;
            h.advance(Duration::from_secs(5)).await;
            assert_eq!(finished(&h, waiter).await.unwrap_err().kind(), ErrorKind::Timeout);
            assert_eq!(h.pool.status().waiting, 0, "timeout {n} left its waiter");
            assert_eq!(h.journal.count(E::Timeout), n);
            h.assert_consistent();
        }
        let pool = h.pool.clone();
        let waiter = h.spawn(async move { pool.get().await.map(|c| c.id()) });
        h.until(|| h.pool.status().waiting == 1).await;
        let held_id = held.id();
        drop(held);
        assert_eq!(served(&h, waiter).await.unwrap(), held_id);
        assert_eq!(h.journal.count(E::Timeout), 3);
        assert_eq!(counts(h.pool.status()), (1, 1, 0, 0));
        h.assert_consistent();
    }
    on!(
        shell,
        kind,
        PoolConfig::new()
            .size(1)
            .max_overflow(0)
            .timeout(Duration::from_secs(5)),
        body
    )
}

/// A wait is timed on the pool's clock from the moment it starts, also
/// when no recycle or idle pre-ping makes the pool read its clock at
/// checkout: of two waiters started 4 s apart, only the first has timed
/// out when the clock reaches its deadline, and the journal dates the
/// timeout at that deadline.
#[rstest]
fn b02_each_wait_is_timed_from_its_start_on_the_pools_clock(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let secs = Duration::from_secs;
        let held = get(&h).await.unwrap();
        // The clock has moved on since the pool was built.
        h.advance(secs(100)).await;
        let waiter = || {
            let pool = h.pool.clone();
            h.spawn(async move { pool.get().await.map(|c| c.id()) })
        };
        let first = waiter();
        h.until(|| h.pool.status().waiting == 1).await;
        h.advance(secs(4)).await;
        let second = waiter();
        h.until(|| h.pool.status().waiting == 2).await;
        h.advance(secs(1)).await; // 105 s: the first's deadline, not the second's
        assert_eq!(finished(&h, first).await.unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(h.pool.status().waiting, 1, "the second waits until 109 s");
        assert!(!second.is_finished());
        let timeouts: Vec<_> = h
            .journal
            .events()
            .into_iter()
            .filter(|e| e.kind == E::Timeout)
            .map(|e| e.at)
            .collect();
        assert_eq!(timeouts.len(), 1);
        assert!(
            timeouts[0] >= secs(105) && timeouts[0] < secs(106),
            "timed out at {:?}",
            timeouts[0]
        );
        let held_id = held.id();
        drop(held);
        assert_eq!(served(&h, second).await.unwrap(), held_id);
        assert_eq!(h.journal.count(E::Timeout), 1);
        h.assert_consistent();
    }
    on!(
        shell,
        kind,
        PoolConfig::new()
            .size(1)
            .max_overflow(0)
            .timeout(Duration::from_secs(5)),
        body
    )
}

#[rstest]
fn b03_checked_out_never_exceeds_size_plus_overflow(#[values(Shell::Threads, Shell::Tokio)] shell: Shell) {
    async fn body<P: TestPool>(h: H<P>) {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let pool = h.pool.clone();
                h.spawn(async move {
                    let mut peak = 0;
                    for _ in 0..200 {
                        let conn = pool.get().await.unwrap();
                        peak = peak.max(pool.status().checked_out);
                        tokio::task::yield_now().await;
                        drop(conn);
                    }
                    peak
                })
            })
            .collect();
        for w in workers {
            let peak = finished(&h, w).await;
            assert!(peak <= 3, "{peak} connections out");
        }
        h.assert_consistent();
    }
    on!(shell, Kind::Mock, PoolConfig::new().size(2).max_overflow(1), body)
}

#[rstest]
fn b04_returned_to_a_full_idle_queue_is_closed(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let a = get(&h).await.unwrap();
        let b = get(&h).await.unwrap();
        let b_id = b.id();
        drop(a);
        let since = h.journal.len();
        drop(b);
        assert_eq!(h.kinds_since(since, b_id), [E::Reset, E::Close, E::Checkin]);
        assert_eq!(h.open_connections(), 1);
        assert_eq!(counts(h.pool.status()), (1, 1, 0, 0));
    }
    on!(shell, kind, PoolConfig::new().size(1).max_overflow(1), body)
}

#[rstest]
fn b05_failed_connect_consumes_no_slot(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let before = h.pool.status();
        let guard = h
            .faults
            .arm(Rule::on(Op::Connect).error_with(ErrorClass::Transient, "E_REFUSED", "connection refused"))
            .unwrap();
        let err = get(&h).await.unwrap_err();
        // The driver's error, unchanged.
        assert_eq!(
            (err.kind(), err.class(), err.code()),
            (ErrorKind::Driver, ErrorClass::Transient, Some("E_REFUSED"))
        );
        assert!(err.is_injected());
        assert_eq!(h.pool.status(), before);
        // The re-connect of an invalidated slot, too.
        drop(guard);
        let conn = get(&h).await.unwrap();
        conn.invalidate().await;
        let before = h.pool.status();
        let _guard = h.faults.arm(Rule::on(Op::Connect).disconnect()).unwrap();
        assert!(get(&h).await.unwrap_err().is_disconnect());
        assert_eq!(h.pool.status(), before);
        assert_eq!(h.journal.count(E::ConnectFailed), 2);
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(2).max_overflow(0), body)
}

#[rstest]
fn b06_slow_connect_blocks_no_other_checkout_or_return(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let held = get(&h).await.unwrap();
        let held_id = held.id();
        let hang = h.faults.arm(Rule::on(Op::Connect).hang()).unwrap();
        let pool = h.pool.clone();
        let slow = h.spawn(async move { pool.get().await.map(|c| c.id()) });
        h.wait_hits(&hang, 1).await;
        // While that connect hangs, a return and a checkout go through.
        drop(held);
        let again = get(&h).await.unwrap();
        assert_eq!(again.id(), held_id);
        drop(again);
        assert!(!slow.is_finished());
        drop(hang);
        assert!(slow.join().await.is_ok());
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(3).max_overflow(0), body)
}

#[rstest]
fn b07_invalidating_a_connection_wakes_a_waiter(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let held = get(&h).await.unwrap();
        let held_id = held.id();
        let pool = h.pool.clone();
        let waiter = h.spawn(async move { pool.get().await.map(|c| c.id()) });
        h.until(|| h.pool.status().waiting == 1).await;
        held.invalidate().await;
        let got = served(&h, waiter).await.expect("the waiter gets the freed slot");
        assert_ne!(got, held_id);
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(1).max_overflow(0), body)
}

/// Detaching a connection frees its slot as invalidating does: the first
/// waiter inherits it and opens a new connection, while the detached one
/// stays usable until dropped.
#[rstest]
fn b07_detaching_a_connection_wakes_a_waiter(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let mut held = get(&h).await.unwrap();
        let held_id = held.id();
        let pool = h.pool.clone();
        let waiter = h.spawn(async move { pool.get().await.map(|c| c.id()) });
        h.until(|| h.pool.status().waiting == 1).await;
        held.detach();
        let got = served(&h, waiter).await.expect("the waiter gets the freed slot");
        assert_ne!(got, held_id);
        held.execute("SELECT 1").await.unwrap();
        drop(held);
        assert_eq!(h.kinds_for(held_id).last(), Some(&E::CloseDetached));
        assert_eq!(counts(h.pool.status()), (1, 1, 0, 0));
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(1).max_overflow(0), body)
}

#[rstest]
fn b08_fifo_by_default_lifo_by_option(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(false, true)] lifo: bool,
) {
    async fn body<P: TestPool>(h: H<P>, lifo: bool) {
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(get(&h).await.unwrap());
        }
        let ids: Vec<_> = conns.iter().map(TestConn::id).collect();
        drop(conns); // returned in order
        let expected = if lifo { ids[2] } else { ids[0] };
        assert_eq!(get(&h).await.unwrap().id(), expected);
    }
    on!(
        shell,
        Kind::Mock,
        PoolConfig::new().size(3).max_overflow(0).lifo(lifo),
        |h| body(h, lifo)
    )
}

#[rstest]
fn b08_waiters_are_served_first_come_first_served(#[values(Shell::Threads, Shell::Tokio)] shell: Shell) {
    async fn body<P: TestPool>(h: H<P>) {
        let held = get(&h).await.unwrap();
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for n in 0..3 {
            let (pool, order) = (h.pool.clone(), order.clone());
            waiters.push(h.spawn(async move {
                let conn = pool.get().await.unwrap();
                order.lock().unwrap().push(n);
                drop(conn);
            }));
            h.until(|| h.pool.status().waiting == n + 1).await;
        }
        drop(held);
        for w in waiters {
            finished(&h, w).await;
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    }
    on!(shell, Kind::Mock, PoolConfig::new().size(1).max_overflow(0), body)
}

// ----- reset on return -----

#[rstest]
fn b09_reset_on_return(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
    #[values(ResetOnReturn::Rollback, ResetOnReturn::Commit, ResetOnReturn::None)] reset: ResetOnReturn,
) {
    async fn body<P: TestPool>(h: H<P>, reset: ResetOnReturn) {
        let mut conn = get(&h).await.unwrap();
        let id = conn.id();
        conn.begin().await.unwrap();
        conn.execute(&write_sql("b09")).await.unwrap();
        let since = h.journal.len();
        drop(conn);
        h.wait_out(0).await;
        assert_eq!(
            h.kinds_since(since, id),
            [E::Reset, E::Checkin],
            "the Reset event fires"
        );
        let detail = h.journal.events()[since..]
            .iter()
            .find(|e| e.kind == E::Reset)
            .map(|e| e.detail.clone())
            .unwrap();
        match reset {
            ResetOnReturn::Rollback => assert_eq!(detail, "rollback"),
            ResetOnReturn::Commit => assert_eq!(detail, "commit"),
            ResetOnReturn::None => assert_eq!(detail, "left open"),
        }
        // Even with None, the next checkout gets no open transaction.
        let conn = get(&h).await.unwrap();
        assert!(!conn.in_transaction());
        drop(conn);
        assert_eq!(h.committed("b09"), reset == ResetOnReturn::Commit);
        // A clean return still journals a reset.
        let since = h.journal.len();
        drop(get(&h).await.unwrap());
        assert!(h.kinds_since(since, id).contains(&E::Reset));
    }
    on!(shell, kind, PoolConfig::new().reset_on_return(reset), |h| body(
        h, reset
    ))
}

#[rstest]
fn b10_failed_rollback_on_return_invalidates(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let mut conn = get(&h).await.unwrap();
        let id = conn.id();
        conn.begin().await.unwrap();
        conn.execute(&write_sql("b10")).await.unwrap();
        let _fail = h
            .faults
            .arm(Rule::on(Op::Rollback).error(ErrorClass::Other))
            .unwrap();
        drop(conn); // must not panic
        h.wait_out(0).await;
        assert_eq!(
            h.kinds_for(id),
            [
                E::FirstConnect,
                E::Connect,
                E::Checkout,
                E::ResetFailed,
                E::Invalidate,
                E::Close,
                E::Checkin
            ]
        );
        assert_eq!(
            counts(h.pool.status()),
            (5, 0, 0, 0),
            "never returned to the idle queue"
        );
        assert_eq!(h.open_connections(), 0);
        assert!(!h.committed("b10"));
        assert_ne!(get(&h).await.unwrap().id(), id);
    }
    on!(shell, kind, PoolConfig::new(), body)
}

#[rstest]
fn b11_connection_dropped_in_a_panic_is_invalidated(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let pool = h.pool.clone();
        let panicked = h
            .spawn(async move {
                let mut conn = pool.get().await.unwrap();
                conn.begin().await.unwrap();
                conn.execute(&write_sql("b11")).await.unwrap();
                std::panic::panic_any(conn.id());
            })
            .join_panicked()
            .await;
        let id = *panicked.downcast::<dbfault::ConnId>().unwrap();
        assert!(h.kinds_for(id).ends_with(&[E::Invalidate, E::Close, E::Checkin]));
        assert!(!h.committed("b11"));
        assert_ne!(get(&h).await.unwrap().id(), id, "never reused");
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new(), body)
}

#[rstest]
fn b12_no_connection_is_handed_out_inside_a_transaction(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        for _ in 0..3 {
            let mut conn = get(&h).await.unwrap();
            assert!(!conn.in_transaction());
            conn.begin().await.unwrap();
        }
        // ResetOnReturn::None left each one open; each checkout rolled back.
        let resets = h
            .journal
            .events()
            .into_iter()
            .filter(|e| e.detail == "rollback at checkout")
            .count();
        assert_eq!(resets, 2);
    }
    on!(
        shell,
        kind,
        PoolConfig::new().size(1).reset_on_return(ResetOnReturn::None),
        body
    )
}

// ----- invalidation -----

#[rstest]
fn b13_hard_invalidate_closes_and_returns_the_slot(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let conn = get(&h).await.unwrap();
        let id = conn.id();
        let _close_fails = h
            .faults
            .arm(Rule::on(Op::Close).error(ErrorClass::Other))
            .unwrap();
        let since = h.journal.len();
        conn.invalidate().await; // the close error is swallowed...
        assert_eq!(h.kinds_since(since, id), [E::Invalidate, E::Close, E::Checkin]);
        let close = h
            .journal
            .events()
            .into_iter()
            .find(|e| e.conn == Some(id) && e.kind == E::Close)
            .unwrap();
        assert!(
            close.detail.starts_with("failed"),
            "...and journaled: {}",
            close.detail
        );
        assert_eq!(counts(h.pool.status()), (5, 0, 0, 0));
        let next = get(&h).await.unwrap();
        assert_ne!(next.id(), id);
        assert_eq!(h.kinds_for(next.id()), [E::Connect, E::Checkout]);
    }
    on!(shell, kind, PoolConfig::new(), body)
}

#[rstest]
fn b14_soft_invalidate_replaces_at_next_checkout(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let mut conn = get(&h).await.unwrap();
        let id = conn.id();
        let since = h.journal.len();
        conn.invalidate_soft();
        conn.invalidate_soft(); // twice: no-op
        conn.execute(&write_sql("b14")).await.unwrap(); // still usable
        drop(conn);
        assert_eq!(
            h.kinds_since(since, id),
            [E::SoftInvalidate, E::Reset, E::Checkin]
        );
        let since = h.journal.len();
        let next = get(&h).await.unwrap();
        assert_ne!(next.id(), id);
        assert_eq!(h.kinds_since(since, id), [E::Close]);
        assert_eq!(h.kinds_since(since, next.id()), [E::Connect, E::Checkout]);
        assert!(h.committed("b14"));
    }
    on!(shell, kind, PoolConfig::new(), body)
}

#[rstest]
fn b15_disconnect_invalidates_older_connections(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let engine = h.engine();
        let a = get(&h).await.unwrap();
        let b = get(&h).await.unwrap();
        let (a_id, b_id) = (a.id(), b.id());
        drop((a, b));
        let mut c = engine.connect().await.unwrap();
        let mut d = engine.connect().await.unwrap();
        let (c_id, d_id) = (c.current().await.unwrap().0, d.current().await.unwrap().0);
        assert_eq!([c_id, d_id], [a_id, b_id]);
        // c dies: c and everything opened before it is stale.
        h.faults.kill(c_id);
        assert!(c.execute("SELECT 1").await.unwrap_err().connection_invalidated());
        // A new connection opened after the failure...
        let e = get(&h).await.unwrap();
        let e_id = e.id();
        // ...is not invalidated by an older connection failing in the same burst.
        h.faults.kill(d_id);
        assert!(d.execute("SELECT 1").await.unwrap_err().connection_invalidated());
        drop(e);
        assert_eq!(
            get(&h).await.unwrap().id(),
            e_id,
            "one burst bumps the generation once"
        );
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(3), body)
}

#[rstest]
fn b15_stale_idle_connections_are_replaced_lazily(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let engine = h.engine();
        let old_id = get(&h).await.unwrap().id();
        let mut victim = engine.connect().await.unwrap();
        let victim_id = victim.current().await.unwrap().0;
        assert_eq!(victim_id, old_id);
        let other_id = get(&h).await.unwrap().id(); // opened before the failure
        h.faults.kill(victim_id);
        victim.execute("SELECT 1").await.unwrap_err();
        drop(victim);
        // `other` is idle and stale: replaced at its next checkout, not before.
        assert_eq!(h.kinds_for(other_id).last(), Some(&E::Checkin));
        let since = h.journal.len();
        let fresh = get(&h).await.unwrap();
        assert_ne!(fresh.id(), other_id);
        assert_eq!(h.kinds_since(since, other_id), [E::Invalidate, E::Close]);
    }
    on!(shell, kind, PoolConfig::new(), body)
}

/// Regression: a connection killed by a disconnect, then returned outside a
/// transaction, went back to the idle queue and was handed out again and
/// again. The pool asks `is_broken` on return and at checkout.
#[rstest]
fn b13_a_broken_connection_is_never_handed_out_again(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        // Killed by a disconnect while out, returned outside a transaction.
        let mut a = get(&h).await.unwrap();
        let a_id = a.id();
        let once = h.faults.arm(Rule::on(Op::Execute).times(1).disconnect()).unwrap();
        assert!(a.execute("SELECT 1").await.unwrap_err().is_disconnect());
        drop(once);
        assert!(!a.in_transaction());
        let since = h.journal.len();
        drop(a);
        h.wait_out(0).await;
        assert_eq!(h.kinds_since(since, a_id), [E::Invalidate, E::Close, E::Checkin]);
        assert_eq!(counts(h.pool.status()), (2, 0, 0, 0));
        // Killed while idle: replaced at its next checkout.
        let b = get(&h).await.unwrap();
        let b_id = b.id();
        assert_ne!(b_id, a_id);
        drop(b);
        assert!(h.faults.kill(b_id));
        let since = h.journal.len();
        let mut c = get(&h).await.unwrap();
        let c_id = c.id();
        assert_ne!(c_id, b_id, "the dead connection was handed out again");
        assert_eq!(h.kinds_since(since, b_id), [E::Invalidate, E::Close]);
        assert_eq!(h.kinds_since(since, c_id), [E::Connect, E::Checkout]);
        c.execute("SELECT 1").await.unwrap();
        drop(c);
        assert_eq!(counts(h.pool.status()), (2, 1, 0, 0));
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(2).max_overflow(0), body)
}

/// `invalidate_all` (mutation testing found no test calling it): every
/// connection that existed, idle or out, is replaced at its next checkout;
/// one call bumps the generation once, and connections opened after it
/// are kept.
#[rstest]
fn b15_invalidate_all_replaces_every_existing_connection_once(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let a = get(&h).await.unwrap();
        let b = get(&h).await.unwrap();
        let (a_id, b_id) = (a.id(), b.id());
        drop(a); // idle
        h.pool.invalidate_all();
        drop(b); // out during the call: kept until its next checkout
        h.wait_out(0).await;
        assert_eq!(counts(h.pool.status()), (2, 2, 0, 0));
        let c = get(&h).await.unwrap();
        let d = get(&h).await.unwrap();
        let fresh = [c.id(), d.id()];
        assert!(!fresh.contains(&a_id) && !fresh.contains(&b_id), "{fresh:?}");
        for old in [a_id, b_id] {
            assert_eq!(h.kinds_for(old).last(), Some(&E::Close));
        }
        drop((c, d));
        h.wait_out(0).await;
        // Opened after the call: kept, so the generation moved once.
        let e = get(&h).await.unwrap();
        let f = get(&h).await.unwrap();
        let mut again = [e.id(), f.id()];
        let mut fresh = fresh;
        again.sort();
        fresh.sort();
        assert_eq!(again, fresh);
        let all = h
            .journal
            .events()
            .into_iter()
            .filter(|e| e.kind == E::Invalidate && e.conn.is_none());
        assert_eq!(all.count(), 1);
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(2).max_overflow(0), body)
}

#[rstest]
fn b16_invalidate_twice_is_a_no_op_and_detach_leaves_the_accounting(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let engine = h.engine();
        let mut conn = engine.connect().await.unwrap();
        let id = conn.current().await.unwrap().0;
        conn.invalidate().await;
        conn.invalidate().await;
        assert_eq!(
            h.journal
                .kinds_for(id)
                .iter()
                .filter(|k| **k == E::Invalidate)
                .count(),
            1
        );
        drop(conn);

        let mut detached = get(&h).await.unwrap();
        let did = detached.id();
        detached.detach();
        detached.detach();
        assert_eq!(counts(h.pool.status()), (1, 0, 0, 0), "the slot is free at once");
        let other = get(&h).await.unwrap(); // the freed slot serves someone else
        assert_ne!(other.id(), did);
        detached.execute("SELECT 1").await.unwrap(); // still usable
        drop(detached);
        assert_eq!(h.kinds_for(did).last(), Some(&E::CloseDetached));
        assert_eq!(h.open_connections(), 1);
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(1).max_overflow(0), body)
}

// ----- recycle and pre-ping -----

#[rstest]
fn b17_recycle_replaces_old_connections_at_checkout(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let id = get(&h).await.unwrap().id();
        h.advance(Duration::from_secs(9)).await;
        assert_eq!(get(&h).await.unwrap().id(), id, "younger than the recycle age");
        h.advance(Duration::from_secs(1)).await;
        let since = h.journal.len();
        let fresh = get(&h).await.unwrap();
        assert_ne!(fresh.id(), id);
        assert_eq!(h.kinds_since(since, id), [E::Recycle, E::Close]);
        assert_eq!(h.kinds_since(since, fresh.id()), [E::Connect, E::Checkout]);
    }
    on!(
        shell,
        kind,
        PoolConfig::new().recycle(Duration::from_secs(10)),
        body
    )
}

#[rstest]
fn b18_pre_ping_skips_the_first_checkout_and_pings_later_ones(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let id = get(&h).await.unwrap().id();
        assert_eq!(h.kinds_for(id)[..3], [E::FirstConnect, E::Connect, E::Checkout]);
        let since = h.journal.len();
        drop(get(&h).await.unwrap());
        assert_eq!(h.kinds_since(since, id)[..2], [E::Ping, E::Checkout]);
    }
    on!(shell, kind, PoolConfig::new().pre_ping(true), body)
}

#[rstest]
fn b18_ping_disconnect_reconnects_silently(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let a = get(&h).await.unwrap();
        let b = get(&h).await.unwrap();
        let (a_id, b_id) = (a.id(), b.id());
        drop((a, b));
        // A server gone in a way the connection cannot see locally (a
        // killed connection is `is_broken` and replaced without a ping).
        let _gone = h.faults.arm(Rule::on(Op::Ping).times(1).disconnect()).unwrap();
        let conn = get(&h).await.expect("the caller sees no error");
        assert!(![a_id, b_id].contains(&conn.id()));
        assert_eq!(h.kinds_for(a_id)[5..], [E::PingFailed, E::Invalidate, E::Close]);
        // The whole pool was invalidated: b is replaced without a ping.
        let since = h.journal.len();
        let other = get(&h).await.unwrap();
        assert_ne!(other.id(), b_id);
        assert_eq!(h.kinds_since(since, b_id), [E::Invalidate, E::Close]);
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().pre_ping(true), body)
}

#[rstest]
fn b18_ping_disconnect_then_failed_reconnect_returns_the_error(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        drop(get(&h).await.unwrap());
        let before = h.pool.status();
        h.faults.outage();
        let err = get(&h).await.unwrap_err();
        assert!(err.is_disconnect() && err.is_injected(), "{err}");
        assert_eq!(
            counts(h.pool.status()),
            (before.size, 0, 0, 0),
            "the slot is returned"
        );
        h.faults.restore();
        drop(get(&h).await.unwrap());
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().pre_ping(true), body)
}

#[rstest]
fn b18_ping_failing_otherwise_invalidates_that_connection(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let a = get(&h).await.unwrap();
        let b = get(&h).await.unwrap();
        let (a_id, b_id) = (a.id(), b.id());
        drop((a, b));
        let guard = h
            .faults
            .arm(
                Rule::on(Op::Ping)
                    .times(1)
                    .error_with(ErrorClass::Other, "XX000", "internal error"),
            )
            .unwrap();
        let err = get(&h).await.unwrap_err();
        assert_eq!(err.code(), Some("XX000"));
        assert!(err.connection_invalidated());
        drop(guard);
        assert_eq!(
            h.kinds_for(a_id)[5..],
            [E::PingFailed, E::Invalidate, E::Close, E::Checkin]
        );
        // Only that connection: b is still good.
        assert_eq!(get(&h).await.unwrap().id(), b_id);
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().pre_ping(true), body)
}

#[rstest]
fn b18_pre_ping_idle_pings_only_idle_connections(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let id = get(&h).await.unwrap().id();
        let since = h.journal.len();
        drop(get(&h).await.unwrap());
        h.advance(Duration::from_millis(500)).await;
        drop(get(&h).await.unwrap());
        assert!(
            !h.kinds_since(since, id).contains(&E::Ping),
            "a busy pool skips the round trip"
        );
        h.advance(Duration::from_millis(501)).await;
        let since = h.journal.len();
        drop(get(&h).await.unwrap());
        assert_eq!(h.kinds_since(since, id)[..2], [E::Ping, E::Checkout]);
    }
    on!(
        shell,
        kind,
        PoolConfig::new().pre_ping_idle(Duration::from_millis(500)),
        body
    )
}

// ----- event orders of docs/pool-behaviours.md -----

#[rstest]
fn event_orders_of_the_usual_paths(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        // first checkout
        let conn = get(&h).await.unwrap();
        let id = conn.id();
        assert_eq!(h.journal.kinds(), [E::FirstConnect, E::Connect, E::Checkout]);
        // return
        let since = h.journal.len();
        drop(conn);
        assert_eq!(h.kinds_since(since, id), [E::Reset, E::Checkin]);
        // invalidate while out
        let since = h.journal.len();
        get(&h).await.unwrap().invalidate().await;
        assert_eq!(
            h.kinds_since(since, id),
            [E::Checkout, E::Invalidate, E::Close, E::Checkin]
        );
        // soft invalidate, then return
        let mut conn = get(&h).await.unwrap();
        let id = conn.id();
        let since = h.journal.len();
        conn.invalidate_soft();
        drop(conn);
        assert_eq!(
            h.kinds_since(since, id),
            [E::SoftInvalidate, E::Reset, E::Checkin]
        );
        // next checkout after soft invalidate
        let since = h.journal.len();
        let conn = get(&h).await.unwrap();
        assert_eq!(h.journal.kinds()[since..], [E::Close, E::Connect, E::Checkout]);
        drop(conn);
    }
    on!(shell, kind, PoolConfig::new(), body)
}

// ----- configuration -----

/// Regression: `timeout(Duration::MAX)` passed validation, then a checkout
/// on an exhausted pool panicked on the deadline's overflow (and left its
/// waiter registered). A deadline too far to add means "never", as
/// `wait_forever()`.
#[rstest]
fn b02_a_timeout_too_long_to_add_waits_forever(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
    #[values(false, true)] forever: bool,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let held = get(&h).await.unwrap();
        let held_id = held.id();
        let pool = h.pool.clone();
        let waiter = h.spawn(async move { pool.get().await.map(|c| c.id()) });
        h.until(|| h.pool.status().waiting == 1).await;
        h.advance(Duration::from_secs(100 * 365 * 24 * 3600)).await;
        assert!(!waiter.is_finished(), "a waiter without a deadline gave up");
        assert_eq!(h.pool.status().waiting, 1);
        drop(held);
        assert_eq!(served(&h, waiter).await.unwrap(), held_id);
        assert_eq!(h.journal.count(E::Timeout), 0);
        assert_eq!(h.pool.status().waiting, 0);
        h.assert_consistent();
    }
    let cfg = PoolConfig::new().size(1).max_overflow(0);
    let cfg = if forever {
        cfg.wait_forever()
    } else {
        cfg.timeout(Duration::MAX)
    };
    on!(shell, kind, cfg, body)
}

/// `unlimited_overflow()`: SQLAlchemy's `max_overflow=-1`. No checkout
/// waits; the extra connections are closed on return to a full idle queue.
#[rstest]
fn b01_unlimited_overflow_never_waits(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let mut conns = Vec::new();
        for _ in 0..40 {
            conns.push(get(&h).await.unwrap());
        }
        let status = h.pool.status();
        assert_eq!(counts(status), (2, 0, 40, 38));
        assert_eq!(
            (status.max_overflow, status.limit(), status.total()),
            (usize::MAX, None, 40)
        );
        h.assert_consistent();
        drop(conns);
        h.wait_out(0).await;
        assert_eq!(counts(h.pool.status()), (2, 2, 0, 0));
        assert_eq!(h.open_connections(), 2);
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new().size(2).unlimited_overflow(), body)
}

#[test]
fn limits_and_unlimited_settings_validate() {
    let server = dbfault::MockServer::new();
    for (cfg, ok) in [
        (PoolConfig::new().size(0).unlimited_overflow(), true),
        (PoolConfig::new().size(5).max_overflow(usize::MAX), true),
        (PoolConfig::new().size(5).max_overflow(usize::MAX - 1), false),
        (PoolConfig::new().wait_forever(), true),
        (PoolConfig::new().timeout(Duration::MAX), true),
        (PoolConfig::new().wait_forever().timeout(Duration::ZERO), false),
    ] {
        assert_eq!(cfg.validate().is_ok(), ok, "{cfg:?}");
        assert_eq!(dbfault::Pool::new(server.driver(), cfg.clone()).is_ok(), ok);
        assert_eq!(dbfault::AsyncPool::new(server.async_driver(), cfg).is_ok(), ok);
    }
}

#[rstest]
#[case::zero_timeout(PoolConfig::new().timeout(Duration::ZERO), "timeout")]
#[case::zero_recycle(PoolConfig::new().recycle(Duration::ZERO), "recycle")]
#[case::no_capacity(PoolConfig::new().size(0).max_overflow(0), "size")]
fn impossible_configs_are_config_errors(#[case] cfg: PoolConfig, #[case] field: &str) {
    let server = dbfault::MockServer::new();
    for err in [
        dbfault::Pool::new(server.driver(), cfg.clone()).unwrap_err(),
        dbfault::AsyncPool::new(server.async_driver(), cfg).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
    }
}

#[rstest]
fn defaults_are_sqlalchemys(#[values(Shell::Threads, Shell::Tokio)] shell: Shell) {
    async fn body<P: TestPool>(h: H<P>) {
        let mut conns = Vec::new();
        for _ in 0..15 {
            conns.push(get(&h).await.unwrap());
        }
        assert_eq!(counts(h.pool.status()), (5, 0, 15, 10));
        drop(conns);
        assert_eq!(counts(h.pool.status()), (5, 5, 0, 0));
        assert!(format!("{:?}", PoolConfig::default()).contains("timeout: Some(30s)"));
    }
    on!(shell, Kind::Mock, PoolConfig::new(), body)
}

#[rstest]
fn sub_second_timeout_is_honoured(#[values(Shell::Threads, Shell::Tokio)] shell: Shell) {
    async fn body<P: TestPool>(h: H<P>) {
        let _held = get(&h).await.unwrap();
        let pool = h.pool.clone();
        let waiter = h.spawn(async move { pool.get().await.map(|c| c.id()) });
        h.until(|| h.pool.status().waiting == 1).await;
        h.advance(Duration::from_millis(250)).await;
        assert_eq!(finished(&h, waiter).await.unwrap_err().kind(), ErrorKind::Timeout);
    }
    on!(
        shell,
        Kind::Mock,
        PoolConfig::new()
            .size(1)
            .max_overflow(0)
            .timeout(Duration::from_millis(250)),
        body
    )
}
