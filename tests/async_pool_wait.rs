//! `AsyncPool`'s checkout paths on the async mock: waiters served first
//! come first served, timeouts on tokio's clock, a checkout dropped at any
//! point (waiting, granted, resetting), grants passed on to the next
//! waiter, wake-ups from invalidate and detach, recycle and pre-ping by
//! idle time on tokio's clock, and a multi-thread run that loses no
//! wake-up.
#![cfg(all(feature = "tokio", feature = "sqlite"))]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::shells::bare_async_mock_pool as pool;
use dbfault::testing::cancel_at_every_await;
use dbfault::{
    AsyncConnection, AsyncMockDriver, AsyncPool, Clock, ErrorKind, EventKind, Journal, Op, PoolConfig,
    ResetOnReturn,
};

type P = AsyncPool<AsyncMockDriver>;

/// Yields until `n` checkouts wait.
async fn until_waiting(pool: &P, n: usize) {
    while pool.status().waiting < n {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_first_come_first_served() {
    let (_server, pool) = pool(PoolConfig::new().size(1).max_overflow(0));
    let held = pool.get().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (pool2, order) = (pool.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let conn = pool2.get().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::task::yield_now().await;
            drop(conn);
            // Straight back in: behind everyone still waiting.
            let again = pool2.get().await.unwrap();
            order.lock().unwrap().push(10 + i);
            drop(again);
        }));
        until_waiting(&pool, i + 1).await;
    }
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
    assert_eq!(pool.status().checked_in, 1);
    assert_eq!(pool.status().waiting, 0);
    pool.check_counters().unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_checkout_times_out_on_tokios_clock() {
    let journal = Journal::with_clock(Clock::tokio());
    let (_server, pool) = pool(
        PoolConfig::new()
            .size(1)
            .max_overflow(0)
            .timeout(Duration::from_millis(250))
            .journal(journal.clone()),
    );
    let held = pool.get().await.unwrap();
    let start = tokio::time::Instant::now();
    let err = pool.get().await.unwrap_err();
    let waited = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(260),
        "waited {waited:?}"
    );
    assert_eq!(journal.count(EventKind::Timeout), 1);
    assert_eq!(pool.status().waiting, 0);
    assert_eq!(pool.status().checked_out, 1);
    drop(held);
    assert_eq!(pool.status().checked_in, 1);
    pool.check_counters().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_dropped_waiting_checkout_gives_its_place_back() {
    let (_server, pool) = pool(PoolConfig::new().size(1).max_overflow(0));
    let held = pool.get().await.unwrap();
    let id = held.id();
    assert!(
        tokio::time::timeout(Duration::from_millis(10), pool.get())
            .await
            .is_err()
    );
    assert_eq!(pool.status().waiting, 0);
    drop(held);
    assert_eq!(pool.status().checked_in, 1);
    assert_eq!(pool.get().await.unwrap().id(), id);
    pool.check_counters().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_grant_to_a_dropped_checkout_goes_to_the_next_waiter() {
    let (_server, pool) = pool(PoolConfig::new().size(1).max_overflow(0));
    let held = pool.get().await.unwrap();
    let id = held.id();
    let mut first = Box::pin(pool.get());
    // One poll: queued.
    assert!(tokio::time::timeout(Duration::ZERO, &mut first).await.is_err());
    let second = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(|c| c.id()) })
    };
    until_waiting(&pool, 2).await;
    drop(held); // granted to `first`, which never runs again
    assert_eq!(pool.status().waiting, 1);
    assert_eq!(pool.status().checked_out, 1);
    let start = tokio::time::Instant::now();
    drop(first); // passes the grant on, and wakes `second`
    assert_eq!(second.await.unwrap().unwrap(), id);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the next waiter was woken at once"
    );
    assert_eq!(pool.status().checked_in, 1);
    pool.check_counters().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_waiting_checkout_dropped_at_every_await_loses_nothing() {
    let (server, pool) = pool(PoolConfig::new().size(1).max_overflow(0));
    drop(pool.get().await.unwrap());
    let yields = cancel_at_every_await(
        || {
            let pool = pool.clone();
            async move {
                let held = pool.get().await.unwrap();
                let give_back = async move {
                    tokio::task::yield_now().await;
                    drop(held);
                    tokio::task::yield_now().await;
                };
                let (got, ()) = tokio::join!(pool.get(), give_back);
                drop(got.unwrap());
            }
        },
        |k| {
            let pool = pool.clone();
            async move {
                let s = pool.status();
                assert_eq!(
                    (s.checked_in, s.checked_out, s.waiting),
                    (1, 0, 0),
                    "after {k} yields"
                );
                pool.check_counters().unwrap();
            }
        },
    )
    .await;
    assert!(yields >= 1, "the checkout waited");
    assert_eq!(server.open_connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_connection_left_in_a_transaction_is_rolled_back_at_checkout_even_if_dropped() {
    let journal = Journal::with_clock(Clock::tokio());
    let (server, pool) = pool(
        PoolConfig::new()
            .size(1)
            .max_overflow(0)
            .reset_on_return(ResetOnReturn::None)
            .journal(journal.clone()),
    );
    let dirty = || async {
        let mut c = pool.get().await.unwrap();
        if !c.in_transaction() {
            c.begin().await.unwrap();
        }
    };
    dirty().await;
    let yields = cancel_at_every_await(
        || {
            let pool = pool.clone();
            async move {
                let c = pool.get().await.unwrap();
                assert!(!c.in_transaction(), "handed out inside a transaction");
            }
        },
        |k| {
            let pool = pool.clone();
            async move {
                let s = pool.status();
                assert_eq!((s.checked_in, s.checked_out), (1, 0), "after {k} yields");
                pool.check_counters().unwrap();
            }
        },
    )
    .await;
    assert!(yields >= 1, "the rollback awaited");
    dirty().await;
    let c = pool.get().await.unwrap();
    assert!(!c.in_transaction());
    assert!(server.ops_for(c.id()).contains(&Op::Rollback));
    assert!(
        journal
            .events()
            .iter()
            .any(|e| e.kind == EventKind::Reset && e.detail == "rollback at checkout")
    );
}

#[tokio::test(start_paused = true)]
async fn recycle_reads_tokios_clock() {
    let (_server, pool) = pool(PoolConfig::new().size(1).recycle(Duration::from_secs(10)));
    let first = pool.get().await.unwrap().id();
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(pool.get().await.unwrap().id(), first);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_ne!(
        pool.get().await.unwrap().id(),
        first,
        "older than recycle: replaced"
    );
    pool.check_counters().unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_recycle_age_does_not_matter() {
    let (_server, pool) = pool(PoolConfig::new().size(1));
    let first = pool.get().await.unwrap().id();
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    assert_eq!(pool.get().await.unwrap().id(), first);
}

#[tokio::test(start_paused = true)]
async fn pre_ping_idle_pings_only_after_the_idle_time() {
    let (server, pool) = pool(PoolConfig::new().size(1).pre_ping_idle(Duration::from_secs(5)));
    let id = pool.get().await.unwrap().id(); // first checkout: no ping
    let pings = || server.ops_for(id).iter().filter(|op| **op == Op::Ping).count();
    drop(pool.get().await.unwrap());
    tokio::time::advance(Duration::from_secs(4)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(pings(), 0);
    tokio::time::advance(Duration::from_secs(6)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(pings(), 1);
}

#[tokio::test(start_paused = true)]
async fn invalidating_or_detaching_wakes_a_waiter() {
    let (_server, pool) = pool(PoolConfig::new().size(1).max_overflow(0));
    let waiter = |pool: &P| {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(|c| c.id()) })
    };

    let held = pool.get().await.unwrap();
    let old = held.id();
    let w = waiter(&pool);
    until_waiting(&pool, 1).await;
    held.invalidate().await;
    let new = w.await.unwrap().unwrap();
    assert_ne!(new, old);

    let mut held = pool.get().await.unwrap();
    let w = waiter(&pool);
    until_waiting(&pool, 1).await;
    held.detach();
    assert_ne!(w.await.unwrap().unwrap(), held.id());
    drop(held);
    pool.check_counters().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_on_two_threads_lose_no_wake_up() {
    const SIZE: usize = 3;
    let (_server, pool) = pool(PoolConfig::new().size(SIZE).max_overflow(0));
    let out = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..48)
        .map(|t| {
            let (pool, out, peak) = (pool.clone(), Arc::clone(&out), Arc::clone(&peak));
            tokio::spawn(async move {
                for round in 0..40 {
                    let conn = pool.get().await.unwrap();
                    let now_out = out.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now_out, Ordering::SeqCst);
                    if (t + round) % 3 == 0 {
                        tokio::task::yield_now().await;
                    }
                    out.fetch_sub(1, Ordering::SeqCst);
                    drop(conn);
                }
            })
        })
        .collect();
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(25), all)
        .await
        .expect("every checkout was served: no wake-up lost");
    assert!(peak.load(Ordering::SeqCst) <= SIZE);
    let s = pool.status();
    assert_eq!((s.checked_out, s.waiting), (0, 0));
    pool.check_counters().unwrap();
}
