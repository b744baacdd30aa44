//! The pools under test, one [`Target`](crate::subject::Target) each.

pub mod dbfault_pools;
pub mod pg;
pub mod sqlite;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use crate::subject::Fail;

/// The payload of the panics the scenarios raise on purpose; the panic
/// hook keeps quiet about them.
pub struct HoldingPanic;

/// Installs a panic hook that says nothing for [`HoldingPanic`].
pub fn quiet_holding_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<HoldingPanic>() {
            default(info);
        }
    }));
}

/// Drops `held` while a panic unwinds.
pub fn panic_while<T>(held: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || {
        let _held = held;
        std::panic::panic_any(HoldingPanic);
    }));
}

/// Waits on the thread's clock until `done` holds (at most 10 s).
pub fn until_blocking(done: &dyn Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits on `rt`'s clock (paused or not) until `done` holds (at most
/// 10 s of it).
pub fn until_async(rt: &tokio::runtime::Runtime, done: &dyn Fn() -> bool) {
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
}

/// A current-thread runtime on a paused clock: the SQLite pools' timeouts
/// and the fault layer's delays pass on it without waiting.
pub fn paused_runtime() -> Result<Arc<tokio::runtime::Runtime>, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map(Arc::new)
        .map_err(|e| format!("no tokio runtime: {e}"))
}

/// rusqlite's error, named by SQLite's result code.
pub fn sqlite_fail(err: &rusqlite::Error) -> Fail {
    let code = match err.sqlite_error() {
        Some(e) => sqlite_code(e.extended_code),
        None => "rusqlite error".to_owned(),
    };
    Fail::of(code, err)
}

fn sqlite_code(extended: i32) -> String {
    let name = match extended {
        1 => "SQLITE_ERROR",
        5 => "SQLITE_BUSY",
        9 => "SQLITE_INTERRUPT",
        10 => "SQLITE_IOERR",
        19 => "SQLITE_CONSTRAINT",
        23 => "SQLITE_AUTH",
        531 => "SQLITE_CONSTRAINT_COMMITHOOK",
        _ => return format!("SQLite code {extended}"),
    };
    name.to_owned()
}

/// dbfault's error, named by its kind (and code, for a driver's).
pub fn dbfault_fail(err: &dbfault::Error) -> Fail {
    let code = match (err.kind(), err.code()) {
        (dbfault::ErrorKind::Driver, Some(code)) => code.to_owned(),
        (kind, _) => format!("{kind:?}"),
    };
    Fail::of(code, err)
}

/// A value that is dropped inside its runtime's context (the async
/// pools spawn tasks, or blocking calls, when dropped).
pub struct InRt<T> {
    value: Option<T>,
    rt: Arc<tokio::runtime::Runtime>,
}

impl<T> InRt<T> {
    pub fn new(value: T, rt: &Arc<tokio::runtime::Runtime>) -> InRt<T> {
        InRt {
            value: Some(value),
            rt: Arc::clone(rt),
        }
    }
}

impl<T> std::ops::Deref for InRt<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.value {
            Some(value) => value,
            None => unreachable!("taken only when dropped"),
        }
    }
}

impl<T> Drop for InRt<T> {
    fn drop(&mut self) {
        let _in = self.rt.enter();
        drop(self.value.take());
    }
}

/// A checkout on a thread of its own: `checkout` waits for a connection,
/// which is journaled as a checkout marked `marker`, then dropped. The
/// joiner waits for the thread.
pub fn checkout_on_thread<C>(
    journal: dbfault::Journal,
    marker: &'static str,
    checkout: impl FnOnce() -> Result<C, Fail> + Send + 'static,
) -> crate::subject::Joiner {
    let thread = std::thread::spawn(move || {
        let conn = checkout()?;
        journal.record(None, dbfault::EventKind::Checkout, marker);
        drop(conn);
        Ok(())
    });
    Box::new(move || {
        thread
            .join()
            .unwrap_or_else(|_| Err(Fail::new("panic", "the checkout thread panicked")))
    })
}

/// [`checkout_on_thread`] as a task on `rt`; the joiner drives `rt` until
/// the task ends.
pub fn checkout_on_task<C: Send + 'static>(
    rt: &Arc<tokio::runtime::Runtime>,
    journal: dbfault::Journal,
    marker: &'static str,
    checkout: impl std::future::Future<Output = Result<C, Fail>> + Send + 'static,
) -> crate::subject::Joiner {
    let task = rt.spawn(async move {
        let conn = checkout.await?;
        journal.record(None, dbfault::EventKind::Checkout, marker);
        drop(conn);
        Ok(())
    });
    let rt = Arc::clone(rt);
    Box::new(move || {
        rt.block_on(task)
            .unwrap_or_else(|_| Err(Fail::new("panic", "the checkout task panicked")))
    })
}
