//! Pool configuration: plain data, validated when the pool is built.

use std::time::Duration;

use crate::{Clock, Error, Journal, Result};

/// What the pool does to a connection's open transaction when it is
/// returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetOnReturn {
    /// Roll back (the default): nothing a caller left uncommitted survives.
    #[default]
    Rollback,
    /// Commit what the caller left open.
    Commit,
    /// Leave the transaction alone. The pool still never hands out a
    /// connection with a transaction open: it rolls back at the next
    /// checkout instead.
    None,
}

/// How a pool behaves. Build with [`PoolConfig::new`] and the setters; every
/// setter's doc ends with its default. [`Pool::new`](crate::Pool::new)
/// validates it.
#[derive(Debug, Clone)]
#[must_use]
pub struct PoolConfig {
    pub(crate) size: usize,
    pub(crate) max_overflow: usize,
    /// `None`: wait forever.
    pub(crate) timeout: Option<Duration>,
    pub(crate) recycle: Option<Duration>,
    pub(crate) pre_ping: bool,
    pub(crate) pre_ping_idle: Option<Duration>,
    pub(crate) reset_on_return: ResetOnReturn,
    pub(crate) lifo: bool,
    pub(crate) journal: Option<Journal>,
    pub(crate) clock: Option<Clock>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig::new()
    }
}

impl PoolConfig {
    /// The defaults: size 5, max_overflow 10, timeout 30 s, no recycle, no
    /// pre-ping, reset on return by rollback, FIFO, no journal, system clock.
    pub fn new() -> Self {
        PoolConfig {
            size: 5,
            max_overflow: 10,
            timeout: Some(Duration::from_secs(30)),
            recycle: None,
            pre_ping: false,
            pre_ping_idle: None,
            reset_on_return: ResetOnReturn::Rollback,
            lifo: false,
            journal: None,
            clock: None,
        }
    }

    /// How many connections the pool keeps idle at most. Default: 5.
    pub fn size(mut self, n: usize) -> Self {
        self.size = n;
        self
    }

    /// How many connections may exist beyond `size`; they are closed when
    /// returned to a full idle queue. `usize::MAX` means unlimited (see
    /// [`unlimited_overflow`](PoolConfig::unlimited_overflow)). Default: 10.
    pub fn max_overflow(mut self, n: usize) -> Self {
        self.max_overflow = n;
        self
    }

    /// No limit on the connections beyond `size` (SQLAlchemy's
    /// `max_overflow=-1`): a checkout never waits, it opens a connection
    /// when none is idle. [`PoolStatus::max_overflow`](crate::PoolStatus)
    /// then reads `usize::MAX` and [`PoolStatus::limit`](crate::PoolStatus::limit)
    /// `None`. Default: limited, to 10.
    pub fn unlimited_overflow(mut self) -> Self {
        self.max_overflow = usize::MAX;
        self
    }

    /// How long a checkout waits for a connection when the pool is
    /// exhausted; sub-second values are honoured. A timeout too long for
    /// the clock to add (`Duration::MAX`) waits forever, as
    /// [`wait_forever`](PoolConfig::wait_forever). Default: 30 s.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// A checkout on an exhausted pool waits as long as it takes
    /// (SQLAlchemy's `timeout=None`); dropping its future (tokio) is the
    /// only way to give up. Replaces any [`timeout`](PoolConfig::timeout).
    /// Default: off (a 30 s timeout).
    pub fn wait_forever(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// Replace a connection at checkout once it is older than `d`.
    /// Default: never.
    pub fn recycle(mut self, d: Duration) -> Self {
        self.recycle = Some(d);
        self
    }

    /// Ping a pooled connection at checkout (not on its first checkout).
    /// Default: false.
    pub fn pre_ping(mut self, on: bool) -> Self {
        self.pre_ping = on;
        self
    }

    /// Pre-ping only connections idle for longer than `d` (implies
    /// `pre_ping(true)`). Default: unset (with `pre_ping`, ping every
    /// checkout).
    pub fn pre_ping_idle(mut self, d: Duration) -> Self {
        self.pre_ping = true;
        self.pre_ping_idle = Some(d);
        self
    }

    /// What to do with an open transaction on return. Default:
    /// [`ResetOnReturn::Rollback`].
    pub fn reset_on_return(mut self, reset: ResetOnReturn) -> Self {
        self.reset_on_return = reset;
        self
    }

    /// Hand out the most recently returned idle connection first (LIFO)
    /// instead of the least recently returned (FIFO). Default: false.
    pub fn lifo(mut self, on: bool) -> Self {
        self.lifo = on;
        self
    }

    /// Record the pool's events in `journal`; the pool then reads time from
    /// the journal's clock unless [`clock`](PoolConfig::clock) is set.
    /// Default: no journal.
    pub fn journal(mut self, journal: Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The clock for recycle ages, idle times and checkout timeouts. A
    /// manual clock makes them exact in tests (a sync checkout then waits by
    /// polling that clock). Default: the journal's clock, else the system
    /// clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks that the settings are possible.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the field:
    /// a zero timeout, a zero recycle age, size and max_overflow both 0, or
    /// a limited size + max_overflow that overflows `usize`.
    pub fn validate(&self) -> Result<()> {
        if self.size == 0 && self.max_overflow == 0 {
            return Err(Error::config(
                "size",
                "size and max_overflow are both 0: the pool could never hand out a connection",
            ));
        }
        if self.timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::config(
                "timeout",
                "must be greater than zero (a checkout on an exhausted pool would fail without waiting)",
            ));
        }
        if self.recycle.is_some_and(|d| d.is_zero()) {
            return Err(Error::config(
                "recycle",
                "must be greater than zero (every connection would be replaced at every checkout)",
            ));
        }
        if self.max_overflow != usize::MAX && self.size.checked_add(self.max_overflow).is_none() {
            return Err(Error::config(
                "max_overflow",
                "size + max_overflow overflows usize (use unlimited_overflow() for no limit)",
            ));
        }
        Ok(())
    }

    /// The clock the pool uses.
    pub(crate) fn effective_clock(&self) -> Clock {
        self.clock
            .clone()
            .or_else(|| self.journal.as_ref().map(|j| j.clock().clone()))
            .unwrap_or_default()
    }
}
